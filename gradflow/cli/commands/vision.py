"""``gradflow sr train|apply``, ``gradflow classify train``, ``gradflow segment train``: CLI layer over
:mod:`gradflow.vision`.

Each ``train`` writes ``model.pt`` (weights and the backbone's name and arguments, so ``sr apply`` can
rebuild it), ``metrics.json`` and ``report.md`` to ``--out``; training checkpoints go to
``OUT/checkpoints`` (``--resume`` continues from them).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["register"]


def _backbone_config(args, task_kwargs: dict) -> dict:
    config = {"residual": args.residual, **task_kwargs}
    if args.alpha_init is not None:
        config["alpha_init"] = args.alpha_init
    return config


def _fit_options(args, out: Path) -> dict:
    return {"seed": args.seed, "device": args.device, "max_time": args.max_time, "resume": args.resume,
            "checkpoint_dir": out / "checkpoints", "history_path": out / "history.jsonl"}


def _finish(out: Path, title: str, name: str, config: dict, model, metrics: dict, summary: str) -> int:
    from ...train import save_checkpoint
    from ...train._checkpoint import atomic_write_text
    from ..report import Report

    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out / "model.pt", state_dict=model.cpu().state_dict(), name=name, config=config)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    report = Report(out, title)
    report.table(list(metrics), [[str(v) if isinstance(v, list) else v for v in metrics.values()]])
    report.write()
    print(f"{summary}; model, metrics and report in {out}")
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
    config = _backbone_config(args, {"scale": args.scale})
    torch.manual_seed(args.seed)
    model = create_backbone(args.model, **config)
    result = train_sr(model, train_set, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      **_fit_options(args, out))
    scores, floor = evaluate_sr(result.model, test_pairs, args.scale), evaluate_sr(None, test_pairs, args.scale)
    metrics = {"model": args.model, **config, "params": count_parameters(model), "steps": result.steps,
               "stop_reason": result.stop_reason, "psnr_y": scores["psnr"], "ssim_y": scores["ssim"],
               "bicubic_psnr_y": floor["psnr"], "bicubic_ssim_y": floor["ssim"]}
    return _finish(out, f"sr train: {args.model} ({args.residual}) x{args.scale}", args.model, config, result.model,
                   metrics, f"{args.model} x{args.scale}: {scores['psnr']:.2f} dB Y-PSNR on the test images "
                            f"(bicubic {floor['psnr']:.2f} dB) after {result.steps} steps")


def _sr_apply(args) -> int:
    from ...train import CheckpointError, load_checkpoint
    from ...vision import create_backbone, super_resolve
    from ...vision import data as D

    not_ours = f"{args.checkpoint} is not a model file written by 'gradflow sr train'"
    try:
        state = load_checkpoint(args.checkpoint)
    except CheckpointError as err:
        raise ValueError(f"{not_ours} ({str(err).splitlines()[0][:200]})") from err
    if not isinstance(state, dict) or not {"state_dict", "name", "config"} <= set(state):
        raise ValueError(not_ours)
    model = create_backbone(state["name"], **state["config"])
    model.load_state_dict(state["state_dict"])
    source = Path(args.input)
    inputs = sorted(p for p in source.iterdir() if p.suffix.lower() in D.IMAGE_EXTENSIONS) if source.is_dir() \
        else [source]
    if not inputs:
        raise OSError(f"no images in {source}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in inputs:
        if not path.is_file():
            raise OSError(f"input image {path} does not exist")
        sr = super_resolve(model, D.read_image(path, model.in_channels, max_pixels=args.max_pixels), tile=args.tile)
        D.save_image(sr, out / f"{path.stem}_x{model.scale}.png")
    print(f"super-resolved {len(inputs)} image(s) x{model.scale} into {out}")
    return 0


def _classify_train(args) -> int:
    import torch

    from ...potentials import count_parameters
    from ...vision import create_backbone, evaluate_classifier, train_classifier
    from ...vision import data as D

    out = Path(args.out)
    train, test = D.digits_classification("train"), D.digits_classification("test")
    config = _backbone_config(args, {"num_classes": 10, "in_channels": 1})
    torch.manual_seed(args.seed)
    model = create_backbone(args.model, **config)
    result = train_classifier(model, train, val_data=test, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, **_fit_options(args, out))
    score = evaluate_classifier(result.model, test)["accuracy"]
    metrics = {"model": args.model, **config, "params": count_parameters(model), "steps": result.steps,
               "test_accuracy": score}
    return _finish(out, f"classify train: {args.model} ({args.residual}) on digits", args.model, config, result.model,
                   metrics, f"{args.model} on digits: test accuracy {score:.4f} after {result.steps} steps")


def _segment_train(args) -> int:
    import torch

    from ...potentials import count_parameters
    from ...vision import create_backbone, evaluate_segmenter, train_segmenter
    from ...vision import data as D

    out = Path(args.out)
    train = D.digit_segmentation(args.n_train, "train", seed=args.seed)
    test = D.digit_segmentation(max(1, args.n_train // 4), "test", seed=args.seed + 1)
    config = _backbone_config(args, {"num_classes": 11, "in_channels": 1})
    torch.manual_seed(args.seed)
    model = create_backbone(args.model, **config)
    result = train_segmenter(model, train, val_data=test, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, **_fit_options(args, out))
    scores = evaluate_segmenter(result.model, test)
    metrics = {"model": args.model, **config, "params": count_parameters(model), "steps": result.steps,
               "test_miou": scores["miou"], "test_pixel_accuracy": scores["pixel_accuracy"]}
    return _finish(out, f"segment train: {args.model} ({args.residual}) on digit canvases", args.model, config,
                   result.model, metrics, f"{args.model} on digit canvases: test mIoU {scores['miou']:.4f}")


def _common_training(parser, models, default_model, positive_int) -> None:
    from ...vision import RESIDUALS

    parser.add_argument("--model", choices=models, default=default_model)
    parser.add_argument("--residual", choices=RESIDUALS, default="convex",
                        help="identity = the baseline, convex = the gradient residual (default), gradnet, ...")
    parser.add_argument("--alpha-init", type=float, default=None, help="gate init a (default: the backbone's)")
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--resume", action="store_true", help="resume from OUT/checkpoints if present")


def register(commands, common_options) -> None:
    from ...vision import SR_SCALES, list_backbones
    from .. import _Parser, positive_int

    sr = commands.add_parser("sr", help="super-resolution: train a backbone, apply a trained one")
    sr_commands = sr.add_subparsers(dest="sr_command", metavar="SR_COMMAND", parser_class=_Parser, required=True)
    train = sr_commands.add_parser("train", help="train on bundled (or your) HR images, report PSNR/SSIM")
    common_options(train, "sr-out")
    _common_training(train, list_backbones("sr"), "sedsr", positive_int)
    train.add_argument("--scale", type=int, choices=SR_SCALES, default=2)
    train.add_argument("--steps", type=positive_int, default=2000)
    train.add_argument("--lr", type=float, default=2e-4)
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

    for command, task, default, runner, epochs, extra in (
        ("classify", "classification", "resnet20", _classify_train, 10, None),
        ("segment", "segmentation", "unet", _segment_train, 10, "n_train"),
    ):
        parser = commands.add_parser(command, help=f"{task} on digits (scikit-learn)")
        sub = parser.add_subparsers(dest=f"{command}_command", metavar="COMMAND", parser_class=_Parser, required=True)
        train = sub.add_parser("train", help=f"train a {task} backbone and report its test score")
        common_options(train, f"{command}-out")
        _common_training(train, list_backbones(task), default, positive_int)
        train.add_argument("--epochs", type=positive_int, default=epochs)
        train.add_argument("--lr", type=float, default=1e-3)
        if extra:
            train.add_argument("--n-train", type=positive_int, default=2000, help="training canvases")
        train.set_defaults(run=runner)
