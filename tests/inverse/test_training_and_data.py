import pytest
import torch

from gradflow.inverse import GradNetPrior, GradStepPrior, psnr, ssim
from gradflow.inverse._data import (
    TEST_IMAGES,
    TRAIN_IMAGES,
    VALIDATION_IMAGES,
    load_image,
    patch_dataset,
    read_image,
    write_image,
)
from gradflow.inverse._training import denoise, minimiser_loss, train_prior

pytest.importorskip("skimage")


def _heldout_mse(prior, clean, noisy, steps, warm):
    with torch.no_grad():
        return float((denoise(prior, noisy, steps, warm_steps=warm) - clean).square().mean())


@pytest.mark.parametrize(("cls", "warm"), [(GradNetPrior, 0), (GradNetPrior, 8), (GradStepPrior, 0)])
def test_training_a_tiny_prior_lowers_heldout_denoising_error(cls, warm):
    sigma, t = 0.1, 4
    train = patch_dataset(["brick", "moon"], patch_size=16, n_patches=256, seed=0)
    clean = patch_dataset(["camera"], patch_size=16, n_patches=64, seed=1)  # a held-out image
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    prior = cls(n_filters=6, kernel_size=3)
    before = _heldout_mse(prior, clean, noisy, t, warm)
    result = train_prior(prior, train, sigma=sigma, unrolled_steps=t, warm_steps=warm, val_images=clean[:16], steps=60,
                         batch_size=16, lr=2e-2, device="cpu")
    after = _heldout_mse(prior, clean, noisy, t, warm)
    assert result.steps == 60 and result.best_val_loss is not None
    assert after < 0.8 * before, (before, after)
    assert after < float((noisy - clean).square().mean())  # and it beats doing nothing
    if cls is GradNetPrior:
        assert prior.is_convex  # training cannot break convexity: it is structural


def test_minimiser_loss_has_the_implicit_gradient_of_the_exact_denoiser():
    torch.manual_seed(0)
    prior = GradNetPrior(n_filters=3, kernel_size=3, depth=2).double()
    gen = torch.Generator().manual_seed(3)
    clean = torch.rand(2, 1, 7, 7, generator=gen, dtype=torch.float64)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=gen, dtype=torch.float64)

    def loss():
        return minimiser_loss(prior, clean, noisy, 0.7, tol=1e-12, max_iter=20000)

    value = loss()
    grads = dict(zip([n for n, _ in prior.named_parameters()],
                     torch.autograd.grad(value, list(prior.parameters()))))
    for name, par in prior.named_parameters():  # central differences of the exact minimiser's error
        idx = (0,) * par.ndim
        with torch.no_grad():
            old = par[idx].item()
            par[idx] = old + 1e-6
            up = loss()
            par[idx] = old - 1e-6
            down = loss()
            par[idx] = old
        fd = float(up - down) / 2e-6
        assert abs(float(grads[name][idx]) - fd) <= 1e-6 * max(abs(fd), 1e-3), name
    with pytest.raises(ValueError, match="convex"):
        minimiser_loss(GradStepPrior(n_filters=2, kernel_size=3), clean.float(), noisy.float())


def test_training_the_minimiser_lowers_the_error_of_the_exact_denoiser():
    sigma = 0.1
    train = patch_dataset(["brick", "moon"], patch_size=16, n_patches=128, seed=0)
    clean = patch_dataset(["camera"], patch_size=16, n_patches=32, seed=1)
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    prior = GradNetPrior(n_filters=4, kernel_size=3)
    with torch.no_grad():
        before = float(minimiser_loss(prior, clean, noisy))
    train_prior(prior, train, sigma=sigma, objective="minimiser", steps=25, batch_size=16, lr=3e-2, device="cpu")
    with torch.no_grad():
        after = float(minimiser_loss(prior, clean, noisy))
    assert after < 0.8 * before, (before, after)
    with pytest.raises(ValueError, match="convex"):
        train_prior(GradStepPrior(n_filters=2, kernel_size=3), train, objective="minimiser", steps=1)


def test_train_prior_rejects_bad_input():
    prior = GradNetPrior(n_filters=2, kernel_size=3)
    with pytest.raises(ValueError, match="sigma"):
        train_prior(prior, torch.rand(4, 1, 8, 8), sigma=0.0)
    with pytest.raises(ValueError, match="1 channel"):
        train_prior(prior, torch.rand(4, 3, 8, 8))
    with pytest.raises(ValueError, match="Prior"):
        train_prior(torch.nn.Linear(2, 2), torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="integer"):
        train_prior(prior, torch.rand(4, 1, 8, 8), unrolled_steps=0)
    with pytest.raises(ValueError, match="objective"):
        train_prior(prior, torch.rand(4, 1, 8, 8), objective="bilevel")


def test_split_is_disjoint_and_photographs_are_test_only():
    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)
    assert not set(VALIDATION_IMAGES) & (set(TRAIN_IMAGES) | set(TEST_IMAGES))
    assert load_image(VALIDATION_IMAGES[0], size=32).shape == (1, 1, 32, 32)
    assert {"china", "flower"} <= set(TEST_IMAGES)
    with pytest.raises(ValueError, match="test image"):
        patch_dataset(["brick", "china"])
    with pytest.raises(ValueError, match="unknown image"):
        load_image("lena")


def test_patches_are_deterministic_and_in_range():
    a = patch_dataset(["brick", "moon", "text"], patch_size=12, n_patches=10, seed=3)
    b = patch_dataset(["brick", "moon", "text"], patch_size=12, n_patches=10, seed=3)
    assert a.shape == (10, 1, 12, 12) and torch.equal(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert load_image("china", size=(40, 60)).shape == (1, 1, 40, 60)
    assert load_image("astronaut", gray=False, size=16).shape == (1, 3, 16, 16)


def test_image_files_round_trip(tmp_path):
    x = load_image("camera", size=24)
    path = write_image(tmp_path / "x.png", x)
    assert torch.allclose(read_image(path), x, atol=0.5 / 255 + 1e-6)
    with pytest.raises(OSError, match="no such image"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(OSError, match="cannot read"):
        read_image(tmp_path / "bad.png")


def test_metrics():
    ref = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    noisy = ref + 0.1
    assert torch.allclose(psnr(noisy, ref), torch.full((2,), 20.0), atol=1e-4)
    assert torch.allclose(ssim(ref, ref), torch.ones(2, dtype=torch.float64))
    assert bool((ssim(noisy + 0.1 * torch.randn(ref.shape), ref) < 0.99).all())
    with pytest.raises(ValueError, match="same shape"):
        psnr(ref, ref[:1])
