"""Classification (digits) and segmentation (digits on canvases): gradient residual vs identity residual.

The paper claims the gradient residual is "comparable to standard residual networks" on CIFAR-10 and
Pascal VOC; offline, the same question on scikit-learn's digits: ResNet-20 classifiers (1 input channel,
8 x 8 images, fixed 1437/360 split) and residual U-Nets segmenting 32 x 32 canvases with up to 3 pasted
digits into 11 classes (background + 10 digits; train canvases from train digits, test canvases from test
digits). Each residual (identity; convex gradient residual, alpha_init 0; GradNet residual) is trained
with the same seeds through gradflow.train.fit (Adam, lr 1e-3, cosine schedule) and scored on the test
set: accuracy, and mean IoU over classes. Reported: mean +- std over seeds and the paired difference to
the identity residual; parity means the difference is within the seed spread.

    python benchmarks/bench_vision_parity.py --seeds 3
    python benchmarks/bench_vision_parity.py --smoke
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import parse_args, write_results

from gradflow.vision import (
    create_backbone,
    evaluate_classifier,
    evaluate_segmenter,
    train_classifier,
    train_segmenter,
)
from gradflow.vision import data as D

CONFIGS = {"identity": {"residual": "identity"}, "convex": {"residual": "convex"},
           "convex a0=-3": {"residual": "convex", "alpha_init": -3.0}, "gradnet": {"residual": "gradnet"}}


def configure(parser):
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cls-epochs", type=int, default=15)
    parser.add_argument("--seg-epochs", type=int, default=15)
    parser.add_argument("--seg-train", type=int, default=1024, help="training canvases")
    parser.add_argument("--seg-width", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--residuals", nargs="*", default=["identity", "convex", "gradnet"],
                        help=f"subset of {', '.join(CONFIGS)} (identity is always run: the reference)")
    parser.add_argument("--tasks", nargs="*", default=["classification", "segmentation"])


def _mean_std(values):
    return f"{statistics.fmean(values):.4f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    seeds = 1 if args.smoke else args.seeds
    cls_epochs, seg_epochs, seg_train = (1, 1, 32) if args.smoke else (args.cls_epochs, args.seg_epochs, args.seg_train)
    cls_train, cls_test = D.digits_classification("train"), D.digits_classification("test")
    seg_train_set = D.digit_segmentation(seg_train, "train", seed=0)
    seg_test_set = D.digit_segmentation(max(16, seg_train // 4), "test", seed=1)
    # gate_lr = lr: the gates in one Adam group with the weights, as when results/vision_parity.md was measured
    # (the library's default since issue 18 gives them their own rate, see bench_vision_defaults.py)
    options = {"lr": 1e-3, "gate_lr": 1e-3, "scheduler": "cosine", "device": "cpu", "progress": False}
    rows, started = [], time.process_time()
    configs = {k: v for k, v in CONFIGS.items() if k == "identity" or k in args.residuals}
    tasks = {
        "classification (resnet20, accuracy)": (
            lambda cfg: create_backbone("resnet20", num_classes=10, in_channels=1,
                                        **({"stages": [(4, 1)]} if args.smoke else {}), **cfg),
            lambda model, seed: train_classifier(model, cls_train, epochs=cls_epochs, batch_size=64, seed=seed,
                                                 **options),
            lambda model: evaluate_classifier(model, cls_test)["accuracy"]),
        "segmentation (unet, mIoU)": (
            lambda cfg: create_backbone("unet", num_classes=11, in_channels=1,
                                        width=4 if args.smoke else args.seg_width, depth=2 if args.smoke else 3,
                                        **cfg),
            lambda model, seed: train_segmenter(model, seg_train_set, epochs=seg_epochs, batch_size=32, seed=seed,
                                                **options),
            lambda model: evaluate_segmenter(model, seg_test_set)["miou"]),
    }
    for task, (build, train, score) in tasks.items():
        if task.split()[0] not in args.tasks:
            continue
        results = {}
        for label, cfg in configs.items():
            results[label] = []
            for seed in range(seeds):
                torch.manual_seed(seed)
                model = build(cfg)
                results[label].append(score(train(model, seed).model))
            print(f"{task} {label}: {results[label]}", flush=True)
        for label, values in results.items():
            diff = [v - b for v, b in zip(values, results["identity"])]
            rows.append([task, label, _mean_std(values), "-" if label == "identity" else _mean_std(diff), seeds])
    notes = (
        f"classification: {cls_epochs} epochs, batch 64; segmentation: {seg_train} training and "
        f"{max(16, seg_train // 4)} test canvases of 32 x 32, {seg_epochs} epochs, batch 32, U-Net width "
        f"{args.seg_width}, depth 3. Adam lr 1e-3 with a cosine schedule; {time.process_time() - started:.0f} s "
        "CPU in total. 'convex' is alpha_init 0 (s(a) = 0.5) unless stated. 'difference' is the score minus the "
        "identity residual's of the same seed."
    )
    write_results("vision_parity", "Classification and segmentation parity with the identity residual",
                  [("Test scores (mean +- std over seeds)", ["task", "residual", "score", "difference vs identity",
                                                              "seeds"], rows)], args, notes)


if __name__ == "__main__":
    main()
