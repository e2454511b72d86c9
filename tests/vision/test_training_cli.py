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


def test_sr_training_starts_at_bicubic_and_improves_on_it():
    image = D.load_image("astronaut")[:, :128, :128]
    data = D.SRPatchDataset([image], scale=2, patch_size=12, n_patches=256, seed=0)
    pairs = D.sr_pairs([D.load_image("chelsea")[:, 100:164, 150:214]], 2)  # held out
    torch.manual_seed(0)
    model = create_backbone("sedsr", scale=2, residual="convex", n_blocks=2, channels=16)
    before, floor = evaluate_sr(model, pairs, 2)["psnr"], evaluate_sr(None, pairs, 2)["psnr"]
    assert before == pytest.approx(floor, abs=1e-4)
    result = train_sr(model, data, steps=40, batch_size=8, lr=2e-3, progress=False, device="cpu")
    losses = [h["loss"] for h in result.history]
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:5])
    assert evaluate_sr(result.model, pairs, 2)["psnr"] > floor + 0.03


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
    assert metrics["recipe_steps"] == 3 and metrics["bicubic_skip"] is True
    assert "| sr | x2 super-resolution | PSNR-Y (dB) (higher is better) | sedsr" in (out / "report.md").read_text()
    assert main(["sr", "apply", "--checkpoint", str(out / "model.pt"), "--input", str(test_dir),
                 "--out", str(tmp_path / "applied")]) == 0
    with Image.open(tmp_path / "applied" / "img0_x2.png") as result:
        assert result.size == (60, 64)


def test_classify_and_segment_commands(tmp_path):
    assert main(["classify", "train", "--model", "resnet20", "--residual", "identity", "--epochs", "1",
                 "--batch-size", "512", "--out", str(tmp_path / "c"), "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["logistic_regression_test_accuracy"] > 0.9
    assert "logistic regression: 0.9" in (tmp_path / "c" / "report.md").read_text()
    assert main(["segment", "train", "--n-train", "16", "--epochs", "1", "--batch-size", "8", "--width", "4",
                 "--out", str(tmp_path / "s"), "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert 0 <= metrics["test_miou"] <= 1 and 0 < metrics["threshold_segmenter_test_miou"] <= 1
    report = (tmp_path / "s" / "report.md").read_text()
    assert "threshold segmenter" in report and "mean s(a)" in report  # the gates' trajectory
    images = _write_images(tmp_path / "images", [(20, 16), (8, 8)])
    assert main(["classify", "predict", "--checkpoint", str(tmp_path / "c" / "model.pt"), "--input", str(images),
                 "--out", str(tmp_path / "cp"), "--device", "cpu"]) == 0
    rows = (tmp_path / "cp" / "predictions.csv").read_text().splitlines()
    assert rows[0] == "file,class,probability" and [r.split(",")[0] for r in rows[1:]] == ["img0.png", "img1.png"]
    assert all(0 <= int(r.split(",")[1]) <= 9 and 0 < float(r.split(",")[2]) <= 1 for r in rows[1:])
    assert main(["segment", "predict", "--checkpoint", str(tmp_path / "s" / "model.pt"), "--input",
                 str(images / "img0.png"), "--out", str(tmp_path / "sp"), "--device", "cpu"]) == 0
    with Image.open(tmp_path / "sp" / "img0_mask.png") as mask:
        assert mask.size == (16, 20) and int(np.asarray(mask).max()) <= 10
    # a model of the other task is refused with one line
    assert main(["segment", "predict", "--checkpoint", str(tmp_path / "c" / "model.pt"), "--input",
                 str(images), "--out", str(tmp_path / "x")]) == 2


def test_a_run_stopped_early_says_so(tmp_path, capsys):
    assert main(["classify", "train", "--residual", "identity", "--epochs", "1", "--batch-size", "64",
                 "--max-time", "1e-6", "--out", str(tmp_path / "c"), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "stopped at 1 of 23 recipe steps by --max-time: the score is not the recipe's" in printed
    assert "FAILED: run stopped early" in (tmp_path / "c" / "report.md").read_text()


def test_training_help_shows_the_default_recipe(capsys):
    for command in (["sr", "train"], ["classify", "train"], ["segment", "train"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "Default recipe:" in text and "steps" in text and "(default: " in text


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


def test_classify_train_and_predict_on_an_image_folder(tmp_path):
    root = tmp_path / "classes"
    root.mkdir()
    for name, offset in (("dark", 0), ("light", 1)):
        folder = root / name
        folder.mkdir()
        for i in range(4):
            value = np.uint8(40 + 160 * offset + 5 * i)
            Image.fromarray(np.full((10, 12, 3), value, dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "c"
    assert main(["classify", "train", "--images", str(root), "--image-size", "8", "--residual", "identity",
                 "--epochs", "2", "--batch-size", "4", "--out", str(out), "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_classes"] == 2 and metrics["in_channels"] == 3 and metrics["recipe_steps"] == 4
    assert main(["classify", "predict", "--checkpoint", str(out / "model.pt"), "--input", str(root / "light"),
                 "--out", str(tmp_path / "p"), "--device", "cpu"]) == 0
    rows = (tmp_path / "p" / "predictions.csv").read_text().splitlines()[1:]
    assert len(rows) == 4 and all(r.split(",")[1] in ("dark", "light") for r in rows)


def test_image_folder_classification_splits_each_class_and_checks_the_folder(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        D.image_folder_classification(tmp_path / "missing")
    (tmp_path / "only").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "only" / "a.png")
    with pytest.raises(OSError, match="two sub-folders"):
        D.image_folder_classification(tmp_path)
    (tmp_path / "other").mkdir()
    for i in range(5):
        Image.fromarray(np.full((4, 6, 3), 255, dtype=np.uint8)).save(tmp_path / "other" / f"{i}.png")
    (train_x, train_y), (_, test_y), classes = D.image_folder_classification(tmp_path, size=(3, 3), channels=1)
    assert classes == ["only", "other"] and train_x.shape == (5, 1, 3, 3) and test_y.tolist() == [1]
    assert train_y.tolist().count(0) == 1  # a class of one image stays in train
    with pytest.raises(ValueError, match="test_fraction"):
        D.image_folder_classification(tmp_path, test_fraction=1.0)
