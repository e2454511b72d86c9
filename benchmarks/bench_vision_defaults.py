"""The vision commands' defaults before and after issue 18, each beside its baseline, in one run.

What a user meets first: `gradflow sr train`, `gradflow classify train`, `gradflow segment train` with their
defaults. Each task is run here through the same library calls as the command (same data, same seed 0), with
the defaults before issue 18 ("before") and after ("after"), and scored beside the baseline the command's
report shows:

* SR (x2, SEDSR with the convex gradient residual, a0 = +3, batch 16, 24 x 24 LR patches of the bundled
  training pictures, Adam 2e-4): Y-PSNR on the held-out pictures (SR_IMAGES["test"]) against bicubic, at a
  fixed number of steps (``--sr-steps``). before: the literal EDSR initialisation, no bicubic skip, gates in
  the weights' Adam group (the command's defaults before issue 18); init only: bicubic start (Pillow bicubic
  skip, zero tail), gates still at lr; after: bicubic start and gates at their own rate (auto_gate_lr); the
  identity residual with the bicubic start for reference. Gate movement: max and mean |a_end - a_0| over the
  blocks, and mean s(a) at the start and end. The default recipe (``--sr-recipe-steps``, the command's
  default) is run once with the new defaults for the run time shown by ``--help``.
* Classification (digits, fixed 1437/360 split): ResNet-20 convex; before = 10 epochs, batch 16, Adam 1e-3
  constant, gates at lr; after = 5 epochs, batch 32, Adam 3e-3 with 5 % warm-up and cosine decay, gates at
  their own rate; the identity residual with the new recipe; logistic regression on the pixels.
* Segmentation (digit canvases, 1000 train / 250 test): U-Net convex; after = width 16, 6 epochs, batch 16,
  Adam 3e-3 with warm-up and cosine, gates at their own rate; before = the old command's model and optimiser
  (width 32, Adam 1e-3 constant, gates at lr) run for the same number of steps on the same canvases (the old
  default, 10 epochs of 2000 canvases, costs ~10x more CPU than this machine gives a benchmark); the
  trivial segmenters (majority class; threshold + majority class).

No validation data is passed to training (no model selection on the test split). Times are CPU seconds of
this process (time.process_time) with one torch thread. One seed (0): the spread over seeds is not measured
here. Nothing here was tuned on the held-out pictures; the classification and segmentation recipes were
chosen from a handful of runs on the same test splits reported here (so those are tuned-on, not held-out).

    python benchmarks/bench_vision_defaults.py
    python benchmarks/bench_vision_defaults.py --smoke
"""

from __future__ import annotations

import math
import time

import torch
from _common import parse_args, write_results

from gradflow.vision import (
    create_backbone,
    evaluate_classifier,
    evaluate_segmenter,
    evaluate_sr,
    gate_parameters,
    linear_classifier_baseline,
    threshold_segmenter_baseline,
    train_classifier,
    train_segmenter,
    train_sr,
)
from gradflow.vision import data as D


def configure(parser):
    parser.add_argument("--sr-steps", type=int, default=300, help="steps of the before/after SR comparison")
    parser.add_argument("--sr-recipe-steps", type=int, default=1000, help="the sr train default (0: skip)")
    parser.add_argument("--threads", type=int, default=1)


def _alphas(model):
    return [float(a.detach()) for a in gate_parameters(model)]


def _gate_columns(start, end):
    """max |da|, mean |da|, mean s(a) start -> end."""
    if not start:
        return ["-", "-", "-"]
    moves = [abs(b - a) for a, b in zip(start, end)]

    def mean_gate(alphas):
        return sum(1 / (1 + math.exp(-a)) for a in alphas) / len(alphas)

    return [f"{max(moves):.3f}", f"{sum(moves) / len(moves):.3f}", f"{mean_gate(start):.3f} -> {mean_gate(end):.3f}"]


def _timed(train, *args, **kwargs):
    """(train(*args, **kwargs), CPU seconds it took)."""
    start = time.process_time()
    result = train(*args, **kwargs)
    return result, time.process_time() - start


def sr_rows(args, smoke):
    images = [image[:, :96, :96] for image in D.load_sr_images("train")[:1]] if smoke else D.load_sr_images("train")
    test = [image[:, :64, :64] for image in D.load_sr_images("test")[:1]] if smoke else D.load_sr_images("test")
    train_set = D.SRPatchDataset(images, 2, 24, 64 if smoke else 8192, seed=0)
    pairs = D.sr_pairs(test, 2)
    floor = evaluate_sr(None, pairs, 2)["psnr"]
    size = {"n_blocks": 1, "channels": 8} if smoke else {}
    steps = 2 if smoke else args.sr_steps
    cases = {  # label -> (backbone options, gate_lr: None = auto)
        "before (literal EDSR init, gates at lr)": ({"residual": "convex", "bicubic_skip": False}, 2e-4),
        "init only (bicubic start, gates at lr)": ({"residual": "convex"}, 2e-4),
        "after (bicubic start, gates at own rate)": ({"residual": "convex"}, None),
        "identity residual (bicubic start)": ({"residual": "identity"}, None),
    }
    if args.sr_recipe_steps and not smoke:
        cases[f"after, default recipe ({args.sr_recipe_steps} steps)"] = ({"residual": "convex"}, None)
    rows = []
    for label, (options, gate_lr) in cases.items():
        torch.manual_seed(0)
        model = create_backbone("sedsr", scale=2, **options, **size)
        start_psnr, alphas = evaluate_sr(model, pairs, 2)["psnr"], _alphas(model)
        n = args.sr_recipe_steps if "default recipe" in label else steps
        result, seconds = _timed(train_sr, model, train_set, steps=n, batch_size=16, lr=2e-4, gate_lr=gate_lr, seed=0,
                                 device="cpu", progress=False)
        psnr = evaluate_sr(result.model, pairs, 2)["psnr"]
        rows.append([label, n, f"{start_psnr:.3f}", f"{psnr:.3f}", f"{floor:.3f}", f"{psnr - floor:+.3f}",
                     *_gate_columns(alphas, _alphas(result.model)), f"{seconds:.0f}"])
        print(rows[-1], flush=True)
    return rows


def classification_rows(smoke):
    train, test = D.digits_classification("train"), D.digits_classification("test")
    linear = linear_classifier_baseline(train, test)["accuracy"]
    stages = {"stages": [(4, 1)]} if smoke else {}
    cases = {
        "before (10 ep, batch 16, 1e-3 constant, gates at lr)": ("convex", 1 if smoke else 10, 16, 1e-3, None, 1e-3),
        "after (5 ep, batch 32, 3e-3 warm-up + cosine, own gate rate)": ("convex", 1 if smoke else 5, 32, 3e-3, 0.05,
                                                                         None),
        "identity residual, after's recipe": ("identity", 1 if smoke else 5, 32, 3e-3, 0.05, None),
    }
    rows = []
    for label, (residual, epochs, batch, lr, warmup, gate_lr) in cases.items():
        torch.manual_seed(0)
        model = create_backbone("resnet20", num_classes=10, in_channels=1, residual=residual, **stages)
        alphas = _alphas(model)
        result, seconds = _timed(train_classifier, model, train, epochs=epochs, batch_size=batch, lr=lr, warmup=warmup,
                                 gate_lr=gate_lr, seed=0, device="cpu", progress=False)
        score = evaluate_classifier(result.model, test)["accuracy"]
        rows.append([label, result.steps, f"{score:.4f}", f"{linear:.4f}", f"{score - linear:+.4f}",
                     *_gate_columns(alphas, _alphas(result.model)), f"{seconds:.0f}"])
        print(rows[-1], flush=True)
    return rows


def segmentation_rows(smoke):
    n_train = 16 if smoke else 1000
    train = D.digit_segmentation(n_train, "train", seed=0)
    test = D.digit_segmentation(max(4, n_train // 4), "test", seed=1)
    trivial = threshold_segmenter_baseline(train, test, num_classes=11)
    epochs = 1 if smoke else 6
    recipe_steps = epochs * math.ceil(n_train / 16)
    cases = {
        f"before (width 32, 1e-3 constant, gates at lr; {recipe_steps} steps)": (4 if smoke else 32, 1e-3, None,
                                                                               1e-3),
        "after (width 16, 3e-3 warm-up + cosine, own gate rate)": (4 if smoke else 16, 3e-3, 0.05, None),
    }
    rows = []
    for label, (width, lr, warmup, gate_lr) in cases.items():
        torch.manual_seed(0)
        model = create_backbone("unet", num_classes=11, in_channels=1, width=width, residual="convex",
                                **({"depth": 2} if smoke else {}))
        alphas = _alphas(model)
        result, seconds = _timed(train_segmenter, model, train, epochs=epochs, batch_size=16, lr=lr, warmup=warmup,
                                 gate_lr=gate_lr, seed=0, device="cpu", progress=False)
        score = evaluate_segmenter(result.model, test)
        rows.append([label, result.steps, f"{score['miou']:.4f}", f"{score['pixel_accuracy']:.4f}",
                     f"{trivial['miou']:.4f}", f"{trivial['majority_miou']:.4f}",
                     *_gate_columns(alphas, _alphas(result.model)), f"{seconds:.0f}"])
        print(rows[-1], flush=True)
    return rows


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    started = time.process_time()
    gate_headers = ["max abs(da)", "mean abs(da)", "mean s(a) start -> end", "train CPU s"]
    sections = [
        ("x2 super-resolution, SEDSR convex a0 = +3: Y-PSNR (dB) on the held-out pictures",
         ["run", "steps", "step-0 PSNR-Y", "PSNR-Y", "bicubic", "vs bicubic", *gate_headers],
         sr_rows(args, args.smoke)),
        ("Digits classification, ResNet-20: test accuracy",
         ["run", "steps", "accuracy", "logistic regression", "vs logistic", *gate_headers],
         classification_rows(args.smoke)),
        ("Digit-canvas segmentation, U-Net convex: test mIoU",
         ["run", "steps", "mIoU", "pixel accuracy", "threshold segmenter mIoU", "majority-class mIoU",
          *gate_headers], segmentation_rows(args.smoke)),
    ]
    notes = (f"Seed 0, one torch thread, {time.process_time() - started:.0f} s CPU in total. 'da' is the change of "
             "a gate logit a over the run; s(a) = sigmoid(a) is the weight of the gradient term.")
    write_results("vision_defaults", "Vision defaults before and after issue 18, beside their baselines", sections,
                  args, notes)


if __name__ == "__main__":
    main()
