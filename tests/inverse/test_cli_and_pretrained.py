import json

import pytest
import torch

from gradflow.cli import main
from gradflow.inverse import GradNetPrior, GradStepPrior, WeaklyConvexPrior, psnr
from gradflow.inverse._data import load_image, write_image
from gradflow.inverse._pretrained import DEFAULT_PRETRAINED, PRETRAINED, list_pretrained, load_pretrained
from gradflow.inverse._tasks import make_task, restore

pytest.importorskip("skimage")


@pytest.fixture
def image_file(tmp_path):
    return write_image(tmp_path / "camera.png", load_image("camera", size=32))


def test_restore_simulated_denoising_improves_psnr(image_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["restore", str(image_file), "--task", "denoise", "--prior", "tv", "--simulate", "--out", str(out),
                 "--max-iter", "20"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["psnr"] > metrics["psnr_degraded"] + 2
    assert {"restored.png", "degraded.png", "truth.png"} <= {p.name for p in out.iterdir()}
    assert "PSNR" in capsys.readouterr().out


def test_restore_tiles_on_request_and_reports_convexity(image_file, tmp_path, capsys):
    out = tmp_path / "tiled"
    assert main(["restore", str(image_file), "--task", "denoise", "--prior", "wcrr-s25", "--simulate", "--tile", "16",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tiles"] == 4 and metrics["certified_convex"] is True  # lam rho < 1 for denoising
    assert "4 tiles" in capsys.readouterr().out
    assert main(["restore", str(image_file), "--task", "denoise", "--tile", "none", "--out", str(tmp_path / "one"),
                 "--max-iter", "5"]) == 0
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["tiles"] == 1
    with pytest.raises(SystemExit):  # argparse: one line, status 2
        main(["restore", str(image_file), "--task", "denoise", "--tile", "0"])
    assert "--tile: expected an integer >= 1, got 0" in capsys.readouterr().err


def test_restore_super_resolution_of_a_real_image_doubles_its_size(image_file, tmp_path):
    from gradflow.inverse._data import read_image

    out = tmp_path / "sr"
    assert main(["restore", str(image_file), "--task", "sr", "--prior", "tikhonov", "--out", str(out),
                 "--max-iter", "10"]) == 0
    assert read_image(out / "restored.png").shape == (1, 1, 64, 64)


def test_restore_user_errors_are_one_line(image_file, tmp_path, capsys):
    assert main(["restore", str(tmp_path / "missing.png"), "--task", "denoise", "--prior", "tv"]) == 2
    assert "no such image" in capsys.readouterr().err
    assert main(["restore", str(image_file), "--task", "inpaint", "--prior", "tv", "--out",
                 str(tmp_path / "inpaint")]) == 2
    assert "--mask" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["restore", str(image_file), "--task", "dehaze"])


def test_every_recipe_builds_and_the_split_is_respected():
    assert list_pretrained() == sorted(PRETRAINED) and DEFAULT_PRETRAINED in PRETRAINED
    with pytest.raises(ValueError, match="unknown pretrained prior"):
        GradNetPrior.pretrained("bm3d")


def test_missing_weights_name_the_command(tmp_path):
    with pytest.raises(OSError, match="gradflow train-prior"):
        load_pretrained(DEFAULT_PRETRAINED, directory=tmp_path)


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_priors_load_and_denoise_a_heldout_image(name):
    cls = {"GradStepPrior": GradStepPrior, "WeaklyConvexPrior": WeaklyConvexPrior}.get(PRETRAINED[name]["cls"],
                                                                                      GradNetPrior)
    prior = cls.pretrained(name)
    assert prior.is_convex == (cls is GradNetPrior) and prior.sigma == pytest.approx(PRETRAINED[name]["sigma"])
    other = GradNetPrior if cls is GradStepPrior else GradStepPrior
    with pytest.raises(ValueError, match="pretrained"):
        other.pretrained(name)
    truth = load_image("coins", size=48)
    task = make_task("denoise", (48, 48), sigma=prior.sigma)
    y = task.operator.measure(truth, task.sigma, generator=torch.Generator().manual_seed(0))
    result = restore(y, task, prior, max_iter=100)
    assert float(psnr(result.x, truth)) > float(psnr(y, truth)) + 3.0


def test_default_pretrained_prior_is_the_convex_denoising_prior():
    prior = GradNetPrior.pretrained()
    assert prior.pretrained_name == DEFAULT_PRETRAINED and prior.is_convex and prior.channels == 1


def test_demo_section_quick(tmp_path):
    from gradflow.cli.demo import run_demo

    path = run_demo(tmp_path, quick=True, device="cpu", sections=["inverse problems"])
    text = path.read_text()
    assert (tmp_path / "figures" / "inverse-restorations.png").is_file()
    noisy_db = 20 * torch.log10(torch.tensor(255 / 25)).item()
    for line in text.splitlines():
        if line.startswith("| inverse problems | denoise PSNR"):
            assert float(line.split("|")[3]) > noisy_db + 2  # both priors clearly denoise


def test_train_pretrained_follows_the_recipe_and_deepens(tmp_path, monkeypatch):
    from gradflow.inverse import _pretrained

    tiny = {"cls": "GradNetPrior", "batch_size": 4, "patch_size": 12, "n_patches": 16, "sigma": 25 / 255}
    minimiser = {"objective": "minimiser", "solve_tol": 1e-2, "steps": 2, "lr": 1e-3}
    monkeypatch.setitem(PRETRAINED, "ridge-s25", {
        **tiny, "arch": {"n_filters": 3, "kernel_size": 3, "depth": 1},
        "phases": ({"objective": "unrolled", "unrolled_steps": 2, "steps": 2, "lr": 1e-2},
                   {**minimiser, "batch_size": 8})})
    monkeypatch.setitem(PRETRAINED, "cascade-s25", {
        **tiny, "arch": {"n_filters": 3, "kernel_size": 3, "depth": 2}, "deepen": "ridge-s25", "phases": (minimiser,)})
    from gradflow.inverse import _training

    batches, original = [], _training.train_prior

    def spy(prior, images, **options):  # what each phase trains (train_pretrained imports it per call)
        batches.append((prior.depth, options["objective"], options["batch_size"]))
        return original(prior, images, **options)

    monkeypatch.setattr(_training, "train_prior", spy)
    path, result = _pretrained.train_pretrained("cascade-s25", tmp_path, device="cpu")
    assert batches == [(1, "unrolled", 4), (1, "minimiser", 8), (2, "minimiser", 4)]
    assert result.steps == 2 and path == tmp_path / "cascade-s25.pt"
    prior = load_pretrained("cascade-s25", directory=tmp_path)
    assert prior.depth == 2 and prior.sigma == pytest.approx(25 / 255)
    assert not (tmp_path / "ridge-s25.pt").exists()  # the one-layer start is not saved


def test_restore_keeps_a_colour_image_in_colour(tmp_path):
    from gradflow.inverse._data import read_image

    colour = load_image("chelsea", size=32, gray=False)
    noisy = write_image(tmp_path / "noisy.png", (colour + 0.1 * torch.randn_like(colour)).clamp(0, 1))
    out = tmp_path / "out"
    assert main(["restore", str(noisy), "--task", "denoise", "--prior", "tv", "--out", str(out),
                 "--max-iter", "20"]) == 0
    restored = read_image(out / "restored.png", gray=False)
    assert restored.shape == (1, 3, 32, 32)
    assert (restored[0, 0] - restored[0, 2]).abs().max() > 0.05  # not a grey image copied to three channels
    grey = write_image(tmp_path / "grey.png", load_image("camera", size=32))
    assert read_image(grey, gray=None).shape == (1, 1, 32, 32)  # a grey file stays grey


def test_colour_restore_is_the_per_channel_restore(generator):
    prior = load_pretrained(DEFAULT_PRETRAINED)
    y = torch.rand(1, 3, 24, 24, generator=generator)
    task = make_task("denoise", (24, 24))
    colour = restore(y, task, prior).x  # converged: the joint solve and the separate ones agree to a grey level
    assert colour.shape == (1, 3, 24, 24)
    for c in range(3):
        alone = restore(y[:, c:c + 1], task, prior).x
        assert torch.allclose(colour[:, c:c + 1], alone, atol=2 / 255)


def test_restore_help_names_the_training_images_and_train_prior_writes_outside_the_package(capsys):
    from gradflow.cli import _parser
    from gradflow.inverse._data import TRAIN_IMAGES

    with pytest.raises(SystemExit):
        main(["restore", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in TRAIN_IMAGES)
    args = _parser().parse_args(["train-prior", "ridge-s25"])
    assert "pretrained" not in args.out


@pytest.mark.slow
def test_restore_denoises_with_lbfgs_to_the_minimiser_in_fewer_iterations(generator):
    from gradflow.inverse import solve

    prior = load_pretrained(DEFAULT_PRETRAINED)
    truth = load_image("camera", size=32)
    task = make_task("denoise", (32, 32))
    y = task.operator.measure(truth, task.sigma, generator=generator)
    fast = restore(y, task, prior)
    with torch.no_grad():
        reference = solve(y, task.operator, prior, fast.lam, "agd", max_iter=2000, tol=1e-6)
    assert fast.method == "lbfgs" and fast.converged and reference.converged
    assert fast.n_iter * 3 < reference.n_iter
    assert float((fast.x - reference.x).abs().max()) < 2 / 255


def test_restore_refuses_an_image_above_max_pixels(image_file, tmp_path, capsys):
    out = tmp_path / "big"
    assert main(["restore", str(image_file), "--task", "denoise", "--prior", "tv", "--max-pixels", "1023",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "32x32 = 1024 pixels, above max_pixels=1023" in err and len(err.strip().splitlines()) == 1
    assert main(["restore", str(image_file), "--task", "denoise", "--prior", "tv", "--max-pixels", "1024",
                 "--max-iter", "2", "--out", str(out)]) == 0
