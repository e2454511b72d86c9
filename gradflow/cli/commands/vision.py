"""``gradflow sr train|apply``, ``gradflow classify train|predict``, ``gradflow segment train|predict``: CLI
layer over :mod:`gradflow.vision`.

Each ``train`` writes ``model.pt`` (weights and the backbone's name and arguments, so ``sr apply`` and the
``predict`` commands can rebuild it), ``metrics.json`` and ``report.md`` (the model's score beside its baseline:
bicubic, logistic regression or a threshold segmenter; the steps done against the recipe's; the gates'
trajectory) to ``--out``; training checkpoints go to ``OUT/checkpoints`` (``--resume`` continues from them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["register"]


#: what each training command's defaults do (``{steps}``: the default steps)
_RECIPES = {
    "sr": "sedsr with the convex gradient residual, x2, {steps} steps of batch 16, Adam 2e-4",
    "classify": "resnet20 with the convex gradient residual, {steps} steps (5 epochs of batch 32, Adam 3e-3 with "
                "warm-up and cosine decay)",
    "segment": "unet (width 16) with the convex gradient residual, {steps} steps (6 epochs of 1000 canvases, batch "
               "16, Adam 3e-3 with warm-up and cosine decay)",
}
#: command -> (default steps, CPU seconds of the default run, its score), measured by
#: benchmarks/bench_vision_defaults.py (results/vision_defaults.md) on the 2-core reference machine
_MEASURED = {
    "sr": (1000, 171, "33.84 dB Y-PSNR on the bundled test pictures, +1.41 dB over bicubic (seed 0)"),
    "classify": (225, 12, "test accuracy 0.989, logistic regression 0.969 (seed 0)"),
    "segment": (378, 51, "test mIoU 0.168, threshold segmenter 0.098 (seed 0)"),
}


def _recipe_help(command: str) -> str:
    """The --help epilog of a training command: its default recipe, run time and score."""
    steps, seconds, score = _MEASURED[command]
    text = f"Default recipe: {_RECIPES[command].format(steps=steps)}"
    if seconds is not None:
        duration = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
        text += (f"; training takes about {duration} of CPU time on the 2-core reference machine (one torch thread; "
                 "longer when the cores are shared)")
    if score is not None:
        text += f", reaching {score}"
    return text + " (benchmarks/results/vision_defaults.md)."


def _budget_note(command: str, done: int, recipe: int, stop_reason: str) -> str:
    """'stopped at 33 of 225 recipe steps by --max-time: ...' for runs stopped early, else ''."""
    if done >= recipe or stop_reason == "completed":
        return ""
    by = {"max_time": "--max-time", "early_stopping": "early stopping"}.get(stop_reason, stop_reason)
    score = _MEASURED[command][2]
    expect = f" (the default recipe reaches {score})" if score is not None else ""
    return (f"stopped at {done} of {recipe} recipe steps by {by}: the score is not the recipe's{expect}; "
            "run without --max-time for the full recipe")


def _backbone_config(args, task_kwargs: dict) -> dict:
    config = {"residual": args.residual, **task_kwargs}
    if args.alpha_init is not None:
        config["alpha_init"] = args.alpha_init
    return config


def _fit_options(args, out: Path) -> dict:
    return {"seed": args.seed, "device": args.device, "max_time": args.max_time, "resume": args.resume,
            "checkpoint_dir": out / "checkpoints", "history_path": out / "history.jsonl", "gate_lr": args.gate_lr}


def _gate_rows(history: list[dict], points: int = 8) -> list[list]:
    """Rows (step, mean, min, max of s(a) over the gated blocks) at about ``points`` logged steps."""
    entries = [h for h in history if h.get("gates")]
    if not entries:
        return []
    picked = entries[::max(1, len(entries) // points)]
    if picked[-1] is not entries[-1]:
        picked.append(entries[-1])
    return [[h["step"], sum(h["gates"]) / len(h["gates"]), min(h["gates"]), max(h["gates"])] for h in picked]


def _finish(out: Path, title: str, name: str, config: dict, result, metrics: dict, summary: str, *,
            command: str, recipe_steps: int, comparison: tuple, initial_gates: list[float],
            extra: dict | None = None) -> int:
    """Write model.pt, metrics.json and report.md (the model against its baseline, the step budget, the
    gates' trajectory) and print the summary line. ``comparison`` is (task, metric, ours, baseline,
    baseline_value, margin)."""
    from ...train import save_checkpoint
    from ...train._checkpoint import atomic_write_text
    from ..report import Report

    note = _budget_note(command, result.steps, recipe_steps, result.stop_reason)
    metrics = {**metrics, "recipe_steps": recipe_steps, "stop_reason": result.stop_reason}
    gate_rows = _gate_rows(result.history)
    if gate_rows:
        metrics["gates_initial_mean"] = sum(initial_gates) / len(initial_gates)
        metrics["gates_final"] = result.history[-1].get("gates", [])
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "model.pt", state_dict=result.model.cpu().state_dict(), name=name, config=config,
                    **(extra or {}))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    report = Report(out, title)
    task, metric, ours, baseline, baseline_value, margin = comparison
    if margin == "ratio" and min(metrics[ours], baseline_value) <= 0:  # no ratio of a zero score
        report.text(f"{metric}: {name} {metrics[ours]:.4g}, {baseline} {baseline_value:.4g}.")
    else:
        report.compare(command, task, metric, name, metrics[ours], baseline, baseline_value, lower_is_better=False,
                       margin=margin, failure=None if not note else f"run stopped early ({note.split(':')[0]})")
    report.text(f"{result.steps} of {recipe_steps} recipe steps ({result.stop_reason}). {note}".strip())
    report.table(list(metrics), [[str(v) if isinstance(v, list) else v for v in metrics.values()]])
    if gate_rows:
        report.text("Gate s(a) of the gradient-residual blocks (the weight of the gradient term) during training; "
                    f"at step 0 the mean was {metrics['gates_initial_mean']:.4f}.")
        report.table(["step", "mean s(a)", "min s(a)", "max s(a)"], gate_rows)
    report.write()
    print(f"{summary}; {result.steps} of {recipe_steps} recipe steps; model, metrics and report in {out}")
    if note:
        print(note)
    return 0


def _sr_train(args) -> int:
    import torch

    from ...potentials import count_parameters
    from ...vision import create_backbone, evaluate_sr, train_sr
    from ...vision import data as D

    out = Path(args.out)
    images = D.load_image_folder(args.images) if args.images else D.load_sr_images("train")
    train_set = D.SRPatchDataset(images, args.scale, args.patch_size, args.n_patches, seed=args.seed)
    test_pairs = D.sr_pairs(D.load_image_folder(args.test_images) if args.test_images else D.load_sr_images("test"),
                            args.scale)
    config = _backbone_config(args, {"scale": args.scale, "bicubic_skip": True})
    torch.manual_seed(args.seed)
    model = create_backbone(args.model, **config)
    initial_gates = model.gates()
    result = train_sr(model, train_set, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      **_fit_options(args, out))
    scores, floor = evaluate_sr(result.model, test_pairs, args.scale), evaluate_sr(None, test_pairs, args.scale)
    metrics = {"model": args.model, **config, "params": count_parameters(model), "steps": result.steps,
               "psnr_y": scores["psnr"], "ssim_y": scores["ssim"],
               "bicubic_psnr_y": floor["psnr"], "bicubic_ssim_y": floor["ssim"]}
    return _finish(out, f"sr train: {args.model} ({args.residual}) x{args.scale}", args.model, config, result,
                   metrics, f"{args.model} x{args.scale}: {scores['psnr']:.2f} dB Y-PSNR on the test images "
                            f"(bicubic {floor['psnr']:.2f} dB) after {result.steps} steps",
                   command="sr", recipe_steps=args.steps, initial_gates=initial_gates,
                   comparison=(f"x{args.scale} super-resolution", "PSNR-Y (dB)", "psnr_y", "bicubic",
                               floor["psnr"], "db"))


def _load_model(checkpoint, command: str, task: str):
    """(model in eval mode, the file's state) from a model.pt written by ``gradflow <command> train``;
    ValueError naming the file otherwise."""
    from ...train import CheckpointError, load_checkpoint
    from ...vision import create_backbone

    not_ours = f"{checkpoint} is not a model file written by 'gradflow {command} train'"
    try:
        state = load_checkpoint(checkpoint)
    except CheckpointError as err:
        raise ValueError(f"{not_ours} ({str(err).splitlines()[0][:200]})") from err
    if not isinstance(state, dict) or not {"state_dict", "name", "config"} <= set(state):
        raise ValueError(not_ours)
    # SR model files written before the bicubic start (bicubic_skip became the default) did not store it
    defaults = {"bicubic_skip": False} if task == "sr" else {}
    try:
        model = create_backbone(state["name"], **{**defaults, **state["config"]})
    except ValueError as err:
        raise ValueError(f"{not_ours} ({err})") from err
    if model.task != task:
        raise ValueError(f"{checkpoint} holds a {model.task} model; 'gradflow {command}' needs a {task} model")
    model.load_state_dict(state["state_dict"])
    return model.eval(), state


def _input_images(source: Path) -> list[Path]:
    """The image files of ``source`` (a file, or a folder: its images sorted by name); OSError if none."""
    from ...vision import data as D

    inputs = sorted(p for p in source.iterdir() if p.suffix.lower() in D.IMAGE_EXTENSIONS) if source.is_dir() \
        else [source]
    if not inputs:
        raise OSError(f"no images in {source}")
    for path in inputs:
        if not path.is_file():
            raise OSError(f"input image {path} does not exist")
    return inputs


def _sr_apply(args) -> int:
    from ...vision import data as D
    from ...vision import super_resolve

    model, _ = _load_model(args.checkpoint, "sr", "sr")
    inputs = _input_images(Path(args.input))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in inputs:
        sr = super_resolve(model, D.read_image(path, model.in_channels, max_pixels=args.max_pixels), tile=args.tile)
        D.save_image(sr, out / f"{path.stem}_x{model.scale}.png")
    print(f"super-resolved {len(inputs)} image(s) x{model.scale} into {out}")
    return 0


def _classify_predict(args) -> int:
    import torch

    from ...train._checkpoint import atomic_write_text
    from ...vision import data as D

    model, state = _load_model(args.checkpoint, "classify", "classification")
    size = tuple(state.get("image_size") or (8, 8))
    inputs = _input_images(Path(args.input))
    images = torch.stack([D.bicubic_resize(D.read_image(path, model.in_channels, max_pixels=args.max_pixels), size)
                          for path in inputs])
    if args.invert:
        images = 1.0 - images
    with torch.no_grad():
        probabilities = torch.softmax(model(images.to(next(model.parameters()).dtype)), dim=1)
    confidence, label = probabilities.max(dim=1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = state.get("classes") or [str(k) for k in range(model.num_classes)]
    lines = ["file,class,probability"] + [f"{path.name},{names[int(k)]},{float(c):.4f}"
                                            for path, k, c in zip(inputs, label, confidence)]
    atomic_write_text(out / "predictions.csv", "\n".join(lines) + "\n")
    print(f"classified {len(inputs)} image(s) (resized to {size[0]}x{size[1]}) into {out / 'predictions.csv'}")
    return 0


def _segment_predict(args) -> int:
    import torch

    from ...vision import data as D

    model, _ = _load_model(args.checkpoint, "segment", "segmentation")
    if model.num_classes > 256:
        raise ValueError(f"masks are written as 8-bit images; the model has {model.num_classes} classes (> 256)")
    inputs = _input_images(Path(args.input))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in inputs:
        image = D.read_image(path, model.in_channels, max_pixels=args.max_pixels)
        if args.invert:
            image = 1.0 - image
        with torch.no_grad():
            labels = model(image[None].to(next(model.parameters()).dtype))[0].argmax(0)
        D.save_image((labels.float() / 255.0)[None], out / f"{path.stem}_mask.png")
    print(f"segmented {len(inputs)} image(s) into {out} (<name>_mask.png: the class index of each pixel as its "
          "8-bit grey value)")
    return 0


def _classify_train(args) -> int:
    import torch

    from ...potentials import count_parameters
    from ...vision import create_backbone, evaluate_classifier, linear_classifier_baseline, train_classifier
    from ...vision import data as D

    out = Path(args.out)
    if args.images:
        size = (args.image_size, args.image_size)
        train, test, classes = D.image_folder_classification(args.images, size=size, channels=args.channels,
                                                             seed=args.seed, max_pixels=args.max_pixels)
        if len(test[1]) == 0:
            raise ValueError(f"--images {args.images}: no class has two images, so there is no test split")
        data_name = f"the images of {args.images}"
    else:
        train, test = D.digits_classification("train"), D.digits_classification("test")
        classes, data_name = [str(k) for k in range(10)], "digits"
    config = _backbone_config(args, {"num_classes": len(classes), "in_channels": train[0].shape[1]})
    torch.manual_seed(args.seed)
    model = create_backbone(args.model, **config)
    initial_gates = model.gates()
    # no val_data: the test split must not pick the weights whose test score is reported
    result = train_classifier(model, train, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, warmup=args.warmup, **_fit_options(args, out))
    score = evaluate_classifier(result.model, test)["accuracy"]
    linear = linear_classifier_baseline(train, test)["accuracy"]
    metrics = {"model": args.model, **config, "params": count_parameters(model), "steps": result.steps,
               "test_accuracy": score, "logistic_regression_test_accuracy": linear}
    return _finish(out, f"classify train: {args.model} ({args.residual}) on {data_name}", args.model, config, result,
                   metrics, f"{args.model} on {data_name}: test accuracy {score:.4f} (logistic regression "
                            f"{linear:.4f}) after {result.steps} steps",
                   command="classify", recipe_steps=args.epochs * math.ceil(len(train[1]) / args.batch_size),
                   initial_gates=initial_gates, extra={"image_size": list(train[0].shape[-2:]), "classes": classes},
                   comparison=(data_name, "test accuracy", "test_accuracy", "logistic regression", linear, "ratio"))


def _segment_train(args) -> int:
    import torch

    from ...potentials import count_parameters
    from ...vision import create_backbone, evaluate_segmenter, threshold_segmenter_baseline, train_segmenter
    from ...vision import data as D

    out = Path(args.out)
    train = D.digit_segmentation(args.n_train, "train", seed=args.seed)
    test = D.digit_segmentation(max(1, args.n_train // 4), "test", seed=args.seed + 1)
    config = _backbone_config(args, {"num_classes": 11, "in_channels": 1, "width": args.width})
    torch.manual_seed(args.seed)
    model = create_backbone(args.model, **config)
    initial_gates = model.gates()
    # no val_data: the test split must not pick the weights whose test score is reported
    result = train_segmenter(model, train, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, warmup=args.warmup, **_fit_options(args, out))
    scores = evaluate_segmenter(result.model, test)
    trivial = threshold_segmenter_baseline(train, test, num_classes=11)
    metrics = {"model": args.model, **config, "params": count_parameters(model), "steps": result.steps,
               "test_miou": scores["miou"], "test_pixel_accuracy": scores["pixel_accuracy"],
               "threshold_segmenter_test_miou": trivial["miou"],
               "threshold_segmenter_test_pixel_accuracy": trivial["pixel_accuracy"],
               "majority_class_test_miou": trivial["majority_miou"]}
    return _finish(out, f"segment train: {args.model} ({args.residual}) on digit canvases", args.model, config,
                   result, metrics, f"{args.model} on digit canvases: test mIoU {scores['miou']:.4f} (threshold "
                                    f"segmenter {trivial['miou']:.4f}) after {result.steps} steps",
                   command="segment", recipe_steps=args.epochs * math.ceil(args.n_train / args.batch_size),
                   initial_gates=initial_gates,
                   comparison=("digit canvases", "test mIoU", "test_miou", "threshold segmenter", trivial["miou"],
                               "ratio"))


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def _common_training(parser, models, default_model, positive_int, batch_size: int) -> None:
    from ...vision import RESIDUALS

    parser.add_argument("--model", choices=models, default=default_model)
    parser.add_argument("--residual", choices=RESIDUALS, default="convex",
                        help="identity = the baseline, convex = the gradient residual (default), gradnet, ...")
    parser.add_argument("--alpha-init", type=float, default=None, help="gate init a (default: the backbone's)")
    parser.add_argument("--gate-lr", type=_positive_float, default=None,
                        help="learning rate of the gate logits a (default: --lr divided by the RMS of the branch "
                        "weights, so that the gates move at the speed of the weights)")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help=f"(default: {batch_size})")
    parser.add_argument("--resume", action="store_true", help="resume from OUT/checkpoints if present")


def register(commands, common_options) -> None:
    from ...vision import SR_SCALES, list_backbones
    from .. import _Parser, positive_int

    sr = commands.add_parser("sr", help="super-resolution: train a backbone, apply a trained one")
    sr_commands = sr.add_subparsers(dest="sr_command", metavar="SR_COMMAND", parser_class=_Parser, required=True)
    train = sr_commands.add_parser("train", help="train on bundled (or your) HR images, report PSNR/SSIM",
                                   description="Train an SR backbone (it starts at the bicubic upsampling) and "
                                   "report its Y-PSNR on held-out images beside bicubic's.",
                                   epilog=_recipe_help("sr"))
    common_options(train, "sr-out")
    _common_training(train, list_backbones("sr"), "sedsr", positive_int, 16)
    train.add_argument("--scale", type=int, choices=SR_SCALES, default=2)
    train.add_argument("--steps", type=positive_int, default=_MEASURED["sr"][0],
                       help=f"optimizer steps (default: {_MEASURED['sr'][0]})")
    train.add_argument("--lr", type=_positive_float, default=2e-4, help="(default: 2e-4, constant)")
    train.add_argument("--patch-size", type=positive_int, default=24, help="LR patch side (default: 24)")
    train.add_argument("--n-patches", type=positive_int, default=8192)
    train.add_argument("--images", default=None, help="folder of HR training images (default: bundled)")
    train.add_argument("--test-images", default=None, help="folder of HR test images (default: bundled)")
    train.set_defaults(run=_sr_train)
    apply = sr_commands.add_parser("apply", help="super-resolve an image or a folder with a trained model")
    common_options(apply, "sr-apply-out")
    apply.add_argument("--checkpoint", required=True, help="model.pt written by 'gradflow sr train'")
    apply.add_argument("--input", required=True, help="an image file or a folder of images")
    apply.add_argument("--tile", type=positive_int, default=256,
                       help="process images in TILE x TILE blocks (with the model's receptive radius as overlap) "
                       "to bound memory (default: 256)")
    apply.set_defaults(run=_sr_apply)

    for command, task, default, runner, epochs, batch_size, lr, baseline in (
        ("classify", "classification", "resnet20", _classify_train, 5, 32, 3e-3, "logistic regression"),
        ("segment", "segmentation", "unet", _segment_train, 6, 16, 3e-3, "a threshold segmenter"),
    ):
        parser = commands.add_parser(command, help=f"{task} on digits (scikit-learn)")
        sub = parser.add_subparsers(dest=f"{command}_command", metavar="COMMAND", parser_class=_Parser, required=True)
        train = sub.add_parser("train", help=f"train a {task} backbone and report its test score",
                               description=f"Train a {task} backbone and report its test score beside {baseline}'s "
                               "on the same split.", epilog=_recipe_help(command))
        common_options(train, f"{command}-out")
        _common_training(train, list_backbones(task), default, positive_int, batch_size)
        train.add_argument("--epochs", type=positive_int, default=epochs, help=f"(default: {epochs})")
        train.add_argument("--lr", type=_positive_float, default=lr,
                           help=f"peak learning rate (default: {lr:g})")
        train.add_argument("--warmup", type=_fraction, default=0.05,
                           help="linear warm-up over this fraction of the steps, then cosine decay (default: 0.05)")
        if command == "classify":
            train.add_argument("--images", default=None,
                               help="a folder with one sub-folder of images per class (default: the bundled digits); "
                               "20%% of each class is held out for the test score")
            train.add_argument("--image-size", type=positive_int, default=32,
                               help="side the --images are resized to (default: 32)")
            train.add_argument("--channels", type=int, choices=(1, 3), default=3,
                               help="channels the --images are read in (default: 3)")
        if command == "segment":
            train.add_argument("--n-train", type=positive_int, default=1000, help="training canvases (default: 1000)")
            train.add_argument("--width", type=positive_int, default=16,
                               help="channels of the U-Net's first level (default: 16)")
        train.set_defaults(run=runner)
        predict = sub.add_parser("predict", help=f"apply a model written by '{command} train' to images")
        common_options(predict, f"{command}-predict-out")
        predict.add_argument("--checkpoint", required=True, help=f"model.pt written by 'gradflow {command} train'")
        predict.add_argument("--input", required=True, help="an image file or a folder of images")
        predict.add_argument("--invert", action="store_true",
                             help="use 1 - intensity (the digits models expect bright ink on a dark background)")
        if command == "classify":
            predict.set_defaults(run=_classify_predict)
            predict.description = ("Classify images: each is read in the model's channels, resized (bicubic) to "
                                   "the training images' size and written to OUT/predictions.csv.")
        else:
            predict.set_defaults(run=_segment_predict)
            predict.description = ("Segment images at their own size into OUT/<name>_mask.png (class index = grey "
                                   "value).")
