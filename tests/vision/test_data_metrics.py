"""Vision data (splits, downsampling, patches, folders, digits) and metrics against references."""

import numpy as np
import pytest
import torch

from gradflow.vision import accuracy, mean_iou, psnr, rgb_to_y, ssim
from gradflow.vision import data as D


def test_sr_split_is_by_image_and_disjoint():
    train, test = set(D.SR_IMAGES["train"]), set(D.SR_IMAGES["test"])
    assert train and test and not train & test
    assert "cat" not in train | test  # a copy of chelsea


def test_bicubic_downsampling_is_antialiased():
    # a one-pixel checkerboard averages to flat grey; point sampling would alias to 0 or 1
    board = (torch.arange(64)[:, None] + torch.arange(64)[None, :]).remainder(2).float()[None]
    small = D.bicubic_resize(board, (16, 16))
    assert small.shape == (1, 16, 16)
    assert (small - 0.5).abs().max() < 0.01


def test_sr_pairs_and_patches_are_aligned():
    image = torch.rand(3, 41, 50, generator=torch.Generator().manual_seed(0))
    (lr, hr), = D.sr_pairs([image], 3)
    assert hr.shape == (3, 39, 48) and lr.shape == (3, 13, 16)
    data = D.SRPatchDataset([image], scale=3, patch_size=5, n_patches=20, seed=1, augment=False)
    for i in range(len(data)):
        lr_patch, hr_patch = data[i]
        _, top, left, _ = data.index[i]
        assert torch.equal(lr_patch, lr[:, top:top + 5, left:left + 5])
        assert torch.equal(hr_patch, hr[:, 3 * top:3 * top + 15, 3 * left:3 * left + 15])
    # augmentation applies the same dihedral transform to both
    augmented = D.SRPatchDataset([image], scale=3, patch_size=5, n_patches=20, seed=1)
    for i in range(len(augmented)):
        lr_patch, hr_patch = augmented[i]
        down = D.bicubic_resize(hr_patch, (5, 5))
        assert (down - lr_patch).abs().mean() < (down - lr_patch.flip(-1)).abs().mean() + 1e-6
    assert D.SRPatchDataset([image], 3, 5, 20, seed=1).index == augmented.index  # positions fixed by the seed
    assert D.SRPatchDataset([image], 3, 5, 20, seed=2).index != augmented.index


def test_bundled_sr_images_load():
    images = D.load_sr_images("test")
    assert len(images) == len(D.SR_IMAGES["test"])
    assert all(im.shape[0] == 3 and im.dtype == torch.float32 and 0 <= im.min() and im.max() <= 1 for im in images)
    assert D.load_image("camera", channels=1).shape == (1, 512, 512)


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images = D.load_image_folder(tmp_path)
    assert [im.shape for im in images] == [(3, 10, 12), (3, 20, 30)]
    assert torch.equal(images[0][0], images[0][1])  # gray replicated
    (tmp_path / "c.png").write_text("broken")
    with pytest.raises(OSError, match="cannot read"):
        D.load_image_folder(tmp_path)
    with pytest.raises(OSError, match="does not exist"):
        D.load_image_folder(tmp_path / "missing")


def test_digits_split_and_segmentation_labels():
    x_train, y_train = D.digits_classification("train")
    x_test, _ = D.digits_classification("test")
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert set(y_train.tolist()) == set(range(10))
    x, y = D.digit_segmentation(16, "test", canvas=24, digit_size=10, seed=3)
    assert x.shape == (16, 1, 24, 24) and y.shape == (16, 24, 24)
    assert torch.equal((y > 0), (y > 0) & (x[:, 0] > 0.3))  # labelled pixels carry ink
    assert (y > 0).any(dim=(1, 2)).all()
    again = D.digit_segmentation(16, "test", canvas=24, digit_size=10, seed=3)
    assert torch.equal(again[0], x) and torch.equal(again[1], y)


def test_psnr_against_numpy_and_border_crop():
    gen = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 20, 20, generator=gen)
    sr = (hr + 0.05 * torch.randn(2, 3, 20, 20, generator=gen)).clamp(0, 1)
    y_sr, y_hr = rgb_to_y(sr)[..., 2:-2, 2:-2].numpy(), rgb_to_y(hr)[..., 2:-2, 2:-2].numpy()
    mse = ((y_sr.astype(np.float64) - y_hr) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(psnr(sr, hr, crop=2, channel="y").numpy(), 10 * np.log10(1 / mse), rtol=1e-5)
    # errors only in the border do not count
    spoiled = hr.clone()
    spoiled[..., :2, :] = 0
    assert torch.isinf(psnr(spoiled, hr, crop=2, channel="y")).all()
    # Y of white is 235/255
    assert rgb_to_y(torch.ones(1, 3, 1, 1)).item() == pytest.approx(235 / 255)


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    gen = torch.Generator().manual_seed(1)
    a = torch.rand(1, 1, 32, 32, generator=gen)
    b = (a + 0.1 * torch.randn(1, 1, 32, 32, generator=gen)).clamp(0, 1)
    ref = structural_similarity(a[0, 0].double().numpy(), b[0, 0].double().numpy(), data_range=1.0,
                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    # skimage averages over the image minus a (window-1)/2 border; we use the valid region: same thing
    assert float(ssim(b, a)) == pytest.approx(ref, abs=1e-6)
    assert float(ssim(a, a)) == pytest.approx(1.0)


def test_accuracy_and_miou():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    labels = torch.tensor([[[0, 0], [1, 2]]])
    pred = torch.tensor([[[0, 1], [1, 2]]])
    seg_logits = torch.nn.functional.one_hot(pred, 4).permute(0, 3, 1, 2).float()
    # class 0: 1/2, class 1: 1/2, class 2: 1, class 3 absent
    assert mean_iou(seg_logits, labels) == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    with pytest.raises(ValueError, match="shape"):
        accuracy(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels must lie"):
        mean_iou(seg_logits, labels + 3)
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="border crop"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), crop=4)
    with pytest.raises(ValueError, match="empty"):
        mean_iou(torch.zeros(1, 2, 0, 3), torch.zeros(1, 0, 3, dtype=torch.long))
