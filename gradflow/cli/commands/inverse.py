"""``gradflow restore`` and ``gradflow train-prior``: CLI layer over the inverse-problem solvers."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["register"]


def _restore(args) -> int:
    import torch

    from ...inverse import psnr, read_image, ssim, write_image
    from ...inverse._tasks import degraded_view, make_prior, make_task, restore
    from ...train._checkpoint import atomic_write_text

    torch.manual_seed(args.seed)
    image = read_image(args.image, gray=None, max_pixels=args.max_pixels)  # colour stays colour
    prior = make_prior(args.prior)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sigma = args.sigma / 255 if args.sigma is not None else None
    if args.simulate:
        truth = image
        task = make_task(args.task, tuple(truth.shape[-2:]), sigma=sigma, seed=args.seed)
        y = task.operator.measure(truth, task.sigma, generator=torch.Generator().manual_seed(args.seed))
    else:
        truth = None
        shape = tuple(image.shape[-2:])
        if args.task == "sr":
            shape = (shape[0] * args.factor, shape[1] * args.factor)
        if args.task == "inpaint" and not args.mask:
            raise ValueError("--task inpaint on a real image needs --mask (white = observed pixels), or use --simulate")
        mask = (read_image(args.mask, max_pixels=args.max_pixels)[0, 0] > 0.5).float() if args.mask else None
        task = make_task(args.task, shape, sigma=sigma, seed=args.seed, mask=mask, factor=args.factor)
        y = image
    result = restore(y, task, prior, lam=args.lam, max_iter=args.max_iter, tile=args.tile)
    write_image(out / "restored.png", result.x.clamp(0, 1))
    if not y.is_complex():
        write_image(out / "degraded.png", degraded_view(y, task))
    metrics = {"task": args.task, "prior": args.prior, "method": result.method, "lam": result.lam,
               "iterations": result.n_iter, "converged": result.converged, "certified_convex": result.convex,
               "tiles": result.tiles}
    if truth is not None:
        write_image(out / "truth.png", truth)
        metrics["psnr_degraded"] = float(psnr(degraded_view(y, task), truth))
        metrics["psnr"] = float(psnr(result.x.clamp(0, 1), truth))
        metrics["ssim"] = float(ssim(result.x.clamp(0, 1), truth))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    summary = f", PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}" if truth is not None else ""
    convexity = "" if result.convex else ", objective NOT certified convex (weakly convex prior)"
    tiles = f", {result.tiles} tiles" if result.tiles > 1 else ""
    print(f"{args.task} with {args.prior} ({result.method}, lam={result.lam:.3g}, {result.n_iter} iterations"
          f"{', converged' if result.converged else ', NOT converged'}{convexity}{tiles}){summary}; written to {out}")
    return 0


def _train_prior(args) -> int:
    from ...inverse._pretrained import train_pretrained

    path, result = train_pretrained(args.name, args.out, device=args.device, seed=args.seed,
                                    max_time=args.max_time, progress=True)
    print(f"{args.name}: {result.steps} steps ({result.stop_reason}), final loss "
          f"{result.history[-1]['loss']:.3g}; weights in {path}")
    return 0


def _tile(text: str):
    """argparse type of --tile: "auto", "none" (None) or a side >= 1."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    from .. import positive_int

    return positive_int(text)


def register(commands, common_options) -> None:
    from ...inverse import TRAIN_IMAGES, list_pretrained
    from ...inverse._tasks import PRIOR_CHOICES, TASKS
    from .. import positive_int

    trained_on = ", ".join(TRAIN_IMAGES)
    restore = commands.add_parser(
        "restore", help="restore a degraded image with a learned convex prior",
        description="Restore a degraded image. The shipped learned priors were trained on patches of the "
                    f"scikit-image images {trained_on}: a result on one of those overstates what a prior does on "
                    "new photographs.")
    common_options(restore, "restore-out")
    restore.add_argument("image", help="PNG/JPEG file (0-1; a colour image is restored channel by channel "
                                       "in RGB, a grey one stays grey)")
    restore.add_argument("--task", choices=TASKS, required=True)
    restore.add_argument("--prior", choices=PRIOR_CHOICES, default="learned",
                         help="learned (the default pretrained convex prior), a pretrained name, tv or tikhonov")
    restore.add_argument("--simulate", action="store_true",
                         help="treat IMAGE as the clean truth: degrade it, restore it and report PSNR/SSIM")
    restore.add_argument("--sigma", type=float, default=None, help="noise std on a 0-255 scale (task default)")
    restore.add_argument("--lam", type=float, default=None, help="regularisation weight (calibrated default)")
    restore.add_argument("--mask", default=None, help="inpaint: image of the observed pixels (white = observed)")
    restore.add_argument("--factor", type=positive_int, default=2, help="sr: upsampling factor (default 2)")
    restore.add_argument("--max-iter", type=positive_int, default=600)
    restore.add_argument("--tile", type=_tile, default="auto",
                         help="solve in overlapping tiles of this side (bounded memory): auto (default: tiles of 512 "
                         "above 1024 x 1024 pixels), none, or a side in pixels")
    restore.set_defaults(run=_restore)

    train = commands.add_parser("train-prior", help="train a shipped prior from its recipe (reproduces the file)")
    common_options(train, "train-prior-out")  # never the package's own pretrained/ folder
    train.add_argument("name", choices=list_pretrained())
    train.set_defaults(run=_train_prior)
