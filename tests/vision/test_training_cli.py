"""Training through gradflow.train.fit, the sr/classify/segment commands and the demo section."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gradflow.cli import main
from gradflow.cli.demo import run_demo
from gradflow.vision import (
    create_backbone,
    evaluate_classifier,
    evaluate_segmenter,
    evaluate_sr,
    train_classifier,
    train_segmenter,
    train_sr,
)
from gradflow.vision import data as D


@pytest.mark.slow
def test_classifier_learns_digits():
    train, test = D.digits_classification("train"), D.digits_classification("test")
    torch.manual_seed(0)
    model = create_backbone("resnet20", stages=[(8, 1), (16, 1)], num_classes=10, in_channels=1, residual="convex")
    before = evaluate_classifier(model, test)["accuracy"]
    result = train_classifier(model, train, val_data=test, epochs=3, batch_size=64, lr=3e-3, progress=False,
                              device="cpu")
    after = evaluate_classifier(result.model, test)["accuracy"]
    assert result.stop_reason == "completed" and result.steps == 3 * 23
    assert before < 0.25 and after > 0.8, (before, after)


@pytest.mark.slow
def test_segmenter_learns_background_from_digits():
    train = D.digit_segmentation(128, "train", canvas=16, digit_size=8, max_digits=2, seed=0)
    test = D.digit_segmentation(32, "test", canvas=16, digit_size=8, max_digits=2, seed=1)
    torch.manual_seed(0)
    model = create_backbone("unet", num_classes=11, in_channels=1, width=8, depth=2, residual="convex")
    before = evaluate_segmenter(model, test)
    result = train_segmenter(model, train, epochs=10, batch_size=16, lr=1e-2, progress=False, device="cpu")
    after = evaluate_segmenter(result.model, test)
    # background is ~85% of the pixels: a trained model gets at least that, an untrained one does not
    assert after["pixel_accuracy"] > 0.8 and after["pixel_accuracy"] > before["pixel_accuracy"] + 0.3


def test_sr_training_reduces_the_loss_and_beats_the_untrained_model():
    image = D.load_image("astronaut")[:, :96, :96]
    data = D.SRPatchDataset([image], scale=2, patch_size=12, n_patches=128, seed=0)
    pairs = D.sr_pairs([D.load_image("chelsea")[:, :64, :64]], 2)
    torch.manual_seed(0)
    model = create_backbone("sedsr", scale=2, residual="convex", n_blocks=2, channels=16)
    before = evaluate_sr(model, pairs, 2)["psnr"]
    result = train_sr(model, data, steps=30, batch_size=8, lr=2e-3, progress=False, device="cpu")
    losses = [h["loss"] for h in result.history]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert evaluate_sr(result.model, pairs, 2)["psnr"] > before + 5


def test_training_functions_reject_the_wrong_backbone():
    with pytest.raises(ValueError, match="sr backbone"):
        train_sr(create_backbone("resnet20"), D.digits_classification(), steps=1)


def _write_images(folder, sizes):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        smooth = rng.random((h // 4 + 1, w // 4 + 1, 3))
        image = np.kron(smooth, np.ones((4, 4, 1)))[:h, :w]
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def test_sr_train_and_apply(tmp_path):
    train_dir = _write_images(tmp_path / "train", [(40, 48), (36, 36)])
    test_dir = _write_images(tmp_path / "test", [(32, 30)])
    out = tmp_path / "run"
    args = ["sr", "train", "--steps", "3", "--n-patches", "16", "--patch-size", "8", "--batch-size", "4",
            "--images", str(train_dir), "--test-images", str(test_dir), "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["residual"] == "convex" and metrics["bicubic_psnr_y"] > 20
    assert main(["sr", "apply", "--checkpoint", str(out / "model.pt"), "--input", str(test_dir),
                 "--out", str(tmp_path / "applied")]) == 0
    with Image.open(tmp_path / "applied" / "img0_x2.png") as result:
        assert result.size == (60, 64)


def test_classify_and_segment_commands(tmp_path):
    assert main(["classify", "train", "--model", "resnet20", "--residual", "identity", "--epochs", "1",
                 "--batch-size", "512", "--out", str(tmp_path / "c"), "--device", "cpu"]) == 0
    assert 0 <= json.loads((tmp_path / "c" / "metrics.json").read_text())["test_accuracy"] <= 1
    assert main(["segment", "train", "--n-train", "16", "--epochs", "1", "--batch-size", "8",
                 "--out", str(tmp_path / "s"), "--device", "cpu"]) == 0
    assert 0 <= json.loads((tmp_path / "s" / "metrics.json").read_text())["test_miou"] <= 1


def test_user_errors_print_one_line(tmp_path, capsys):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    code = main(["sr", "apply", "--checkpoint", str(tmp_path / "bad.pt"), "--input", "x.png"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("gradflow: error:") and err.count("\n") == 1
    assert main(["sr", "train", "--images", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


def test_demo_section_quick(tmp_path):
    path = run_demo(tmp_path, quick=True, device="cpu", sections=["vision"])
    report = path.read_text()
    assert "x2 PSNR-Y bicubic" in report and "gradient residual" in report
    assert (tmp_path / "figures" / "vision-sr-crops.png").read_bytes()[:4] == b"\x89PNG"
