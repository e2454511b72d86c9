"""Classification (digits) and segmentation (digits on canvases): gradient residual vs identity residual.

The paper claims the gradient residual is "comparable to standard residual networks" on CIFAR-10 and
Pascal VOC; offline, the same question on scikit-learn's digits: ResNet-20 classifiers (1 input channel,
8 x 8 images, fixed 1437/360 split) and residual U-Nets segmenting 32 x 32 canvases with up to 3 pasted
digits into 11 classes (background + 10 digits; train canvases from train digits, test canvases from test
digits). Each residual (identity; convex gradient residual, alpha_init 0; GradNet residual) is trained
with the same seeds through gradflow.train.fit (Adam, lr 1e-3, cosine schedule) and scored on the test
set: accuracy, and mean IoU over classes. Reported: mean +- std over seeds and the paired difference to
the identity residual; parity means the difference is within the seed spread.

The defaults reproduce results/vision_parity.md (before issue 18: the gates in the weights' Adam group,
``--gate-lr lr``; Adam 1e-3 with a plain cosine schedule, ``--recipe old``). ``--recipe new`` takes the
library's recipes since issue 18 (linear warm-up over 5 % of the steps + cosine, lr 3e-3; classification
5 epochs at batch 32; segmentation 6 epochs of 1000 canvases at batch 16, U-Net width 16) and ``--gate-lr auto``
the gates' own Adam group at lr / RMS(branch weights) (gradflow.vision.auto_gate_lr). Residuals named
"... frozen" keep s(a) at its initial value (learn_alpha=False), "... gate@lr" put the gates in the weights'
group whatever ``--gate-lr`` says, "... norm=X" normalise the gradient term by X instead of per sample.

    python benchmarks/bench_vision_parity.py --seeds 3
    python benchmarks/bench_vision_parity.py --recipe new --gate-lr auto --seeds 6 --tag gates \
        --residuals identity convex 'convex frozen' 'convex norm=none' gradnet --tasks classification
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
           "convex a0=-3": {"residual": "convex", "alpha_init": -3.0}, "gradnet": {"residual": "gradnet"},
           "convex frozen": {"residual": "convex", "learn_alpha": False},
           "convex gate@lr": {"residual": "convex", "gate_lr": "lr"},
           "convex norm=none": {"residual": "convex", "normalize": None},
           "convex norm=position": {"residual": "convex", "normalize": "position"},
           "gradnet frozen": {"residual": "gradnet", "learn_alpha": False}}
#: the recipes: (classification epochs, batch), (segmentation epochs, batch, training canvases), lr, warm-up
RECIPES = {"old": {"cls": (15, 64), "seg": (15, 32, 1024), "lr": 1e-3, "warmup": None},
           "new": {"cls": (5, 32), "seg": (6, 16, 1000), "lr": 3e-3, "warmup": 0.05}}


def configure(parser):
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--recipe", choices=list(RECIPES), default="old",
                        help="old: Adam 1e-3 + cosine (results/vision_parity.md); new: the library's since issue 18")
    parser.add_argument("--gate-lr", default="lr",
                        help="'lr': gates in the weights' Adam group (as in vision_parity.md); 'auto': their own "
                             "group at auto_gate_lr; or a number")
    parser.add_argument("--cls-epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seg-epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--seg-train", type=int, default=None, help="training canvases (default: the recipe's)")
    parser.add_argument("--tag", default=None, help="write results/vision_parity_<tag>.md instead")
    parser.add_argument("--seg-width", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--residuals", nargs="*", default=["identity", "convex", "gradnet"],
                        help=f"subset of {', '.join(CONFIGS)} (identity is always run: the reference)")
    parser.add_argument("--tasks", nargs="*", default=["classification", "segmentation"])


def _gate_lr(value, lr):
    if value == "lr":
        return lr
    return None if value == "auto" else float(value)


def _mean_std(values):
    return f"{statistics.fmean(values):.4f} +- {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def main():
    args = parse_args(__doc__.splitlines()[0], configure)
    torch.set_num_threads(args.threads)
    seeds = 1 if args.smoke else args.seeds
    recipe = RECIPES[args.recipe]
    cls_epochs, cls_batch = recipe["cls"]
    seg_epochs, seg_batch, seg_train = recipe["seg"]
    cls_epochs = args.cls_epochs or cls_epochs
    seg_epochs = args.seg_epochs or seg_epochs
    seg_train = args.seg_train or seg_train
    if args.smoke:
        cls_epochs, seg_epochs, seg_train = 1, 1, 32
    cls_train, cls_test = D.digits_classification("train"), D.digits_classification("test")
    seg_train_set = D.digit_segmentation(seg_train, "train", seed=0)
    seg_test_set = D.digit_segmentation(max(16, seg_train // 4), "test", seed=1)
    lr = recipe["lr"]
    # recipe "old" with gate_lr = lr is the setting of results/vision_parity.md (one Adam group, plain cosine)
    options = {"lr": lr, "device": "cpu", "progress": False}
    if recipe["warmup"] is None:
        options["scheduler"] = "cosine"
    else:
        options["warmup"] = recipe["warmup"]
    rows, gate_rows, started = [], [], time.process_time()
    configs = {k: v for k, v in CONFIGS.items() if k == "identity" or k in args.residuals}
    tasks = {
        "classification (resnet20, accuracy)": (
            lambda cfg: create_backbone("resnet20", num_classes=10, in_channels=1,
                                        **({"stages": [(4, 1)]} if args.smoke else {}), **cfg),
            lambda model, seed, opts: train_classifier(model, cls_train, epochs=cls_epochs, batch_size=cls_batch,
                                                       seed=seed, **opts),
            lambda model: evaluate_classifier(model, cls_test)["accuracy"]),
        "segmentation (unet, mIoU)": (
            lambda cfg: create_backbone("unet", num_classes=11, in_channels=1,
                                        width=4 if args.smoke else args.seg_width, depth=2 if args.smoke else 3,
                                        **cfg),
            lambda model, seed, opts: train_segmenter(model, seg_train_set, epochs=seg_epochs, batch_size=seg_batch,
                                                      seed=seed, **opts),
            lambda model: evaluate_segmenter(model, seg_test_set)["miou"]),
    }
    for task, (build, train, score) in tasks.items():
        if task.split()[0] not in args.tasks:
            continue
        results = {}
        for label, cfg in configs.items():
            results[label] = []
            cfg = dict(cfg)
            opts = dict(options, gate_lr=_gate_lr(cfg.pop("gate_lr", args.gate_lr), lr))
            gates, cpu = [], time.process_time()
            for seed in range(seeds):
                torch.manual_seed(seed)
                model = build(cfg)
                result = train(model, seed, opts)
                results[label].append(score(result.model))
                logged = [e["gates"] for e in result.history if "gates" in e]
                if logged:
                    gates.append((statistics.fmean(logged[0]), statistics.fmean(logged[-1]), min(logged[-1]),
                                  max(logged[-1])))
            cpu = (time.process_time() - cpu) / seeds
            print(f"{task} {label}: {results[label]} ({cpu:.1f} s CPU per run)", flush=True)
            if gates:
                gate_rows.append([task, label, f"{statistics.fmean(g[0] for g in gates):.3f}",
                                  f"{statistics.fmean(g[1] for g in gates):.3f}", f"{min(g[2] for g in gates):.3f}",
                                  f"{max(g[3] for g in gates):.3f}"])
            results[label] = (results[label], cpu)
        for label, (values, cpu) in results.items():
            diff = [v - b for v, b in zip(values, results["identity"][0])]
            per_seed = " ".join(f"{100 * d:+.2f}" for d in diff)
            rows.append([task, label, _mean_std(values), "-" if label == "identity" else _mean_std(diff),
                         "-" if label == "identity" else f"{sum(d > 0 for d in diff)}/{sum(d < 0 for d in diff)}",
                         "-" if label == "identity" else per_seed, seeds, f"{cpu:.1f}"])
    schedule = ("a cosine schedule" if recipe["warmup"] is None
                else f"a linear warm-up over {recipe['warmup']:.0%} of the steps, then cosine")
    notes = (
        f"Recipe '{args.recipe}', gates '{args.gate_lr}'. classification: {cls_epochs} epochs, batch {cls_batch}; "
        f"segmentation: {seg_train} training and {max(16, seg_train // 4)} test canvases of 32 x 32, {seg_epochs} "
        f"epochs, batch {seg_batch}, U-Net width {args.seg_width}, depth 3. Adam lr {lr:g} with {schedule}; "
        f"{time.process_time() - started:.0f} s CPU in total. 'convex' is alpha_init 0 (s(a) = 0.5) unless "
        "stated. 'difference' is the score minus the identity residual's of the same seed (mean +- std over "
        "seeds); 'better/worse' counts the seeds where it is > 0 / < 0; 'per seed' lists it in points (x 100)."
    )
    sections = [("Test scores (mean +- std over seeds)",
                 ["task", "residual", "score", "difference vs identity", "better/worse", "per seed (points)",
                  "seeds", "CPU s per run"], rows)]
    if gate_rows:
        sections.append(("Gates: s(a) averaged over blocks, after the first logged step and at the end (mean over "
                         "seeds); min and max over blocks and seeds at the end",
                         ["task", "residual", "mean s(a) start", "mean s(a) end", "min s(a) end", "max s(a) end"],
                         gate_rows))
    write_results("vision_parity" + (f"_{args.tag}" if args.tag else ""),
                  "Classification and segmentation parity with the identity residual", sections, args, notes)


if __name__ == "__main__":
    main()
