"""The vision section of ``gradflow demo``: x2 super-resolution with the small EDSR, identity residual vs
gradient residual, against bicubic upsampling, on the held-out bundled images."""

from __future__ import annotations

import time

import torch

from ...vision import create_backbone, evaluate_sr, super_resolve, train_sr
from ...vision import data as D
from ..report import Report, require_matplotlib

__all__ = ["vision_section"]

_BASELINE, _OURS = "baseline (identity residual)", "gradient residual (convex, a0 = +3)"
_MODELS = {_BASELINE: {"residual": "identity"}, _OURS: {"residual": "convex", "alpha_init": 3.0}}
_QUICK_IMAGES = ("astronaut",)


def _crop_figure(plt, panels, box):
    top, left, size = box
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.7))
    for ax, (title, image) in zip(axes, panels.items()):
        ax.imshow(image[:, top:top + size, left:left + size].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


def vision_section(report: Report, *, quick: bool = False, device: str = "auto", seed: int = 0,
                   max_time: float | None = None) -> None:
    """Train two small EDSRs (identity vs gradient residual) for x2 SR on patches of the bundled training
    images and add PSNR/SSIM on the held-out images, crops and loss curves to ``report``."""
    plt = require_matplotlib()
    scale = 2
    steps, n_patches, test_names = (3, 64, ("chelsea",)) if quick else (120, 1920, D.SR_IMAGES["test"])
    train_names = _QUICK_IMAGES if quick else D.SR_IMAGES["train"]
    report.heading("Vision: gradient residual connections (x2 super-resolution)")
    report.text(
        f"SEDSR (4 blocks x 32 channels) trained for {steps} steps (batch 16, 24 x 24 LR patches from "
        f"{len(train_names)} bundled scikit-image pictures, L1, Adam 2e-4), with the identity residual "
        "and with the gradient residual h = F(x) + (1 - s(a)) x + s(a) g/||g|| (g = J_F^T 1 in closed form). "
        f"PSNR/SSIM on the Y channel with a {scale}-pixel border crop, on held-out pictures "
        f"({', '.join(test_names)}). A CPU-sized run, far from converged: the networks add their output to the "
        "bicubic upsampling and their last convolution starts at zero (the SR backbones' default, not in EDSR), so "
        "that the untrained network is exactly bicubic; the benchmarks in benchmarks/bench_vision_*.py hold the "
        "longer comparisons. The gates a train in their own Adam group (learning rate lr / RMS of the branch "
        "weights), so s(a) can move within the run. gradflow's model is the gradient residual, the baselines "
        "the identity residual and bicubic upsampling (higher PSNR is better); a model whose PSNR is not above "
        "bicubic's (its starting point) failed."
    )
    train_set = D.SRPatchDataset([D.load_image(name) for name in train_names], scale, 24, n_patches, seed=seed)
    test_images = [D.load_image(name) for name in test_names]
    if quick:
        test_images = [image[:, 100:228, 150:278] for image in test_images]
    pairs = D.sr_pairs(test_images, scale)
    floor = evaluate_sr(None, pairs, scale)
    rows = [["bicubic", "-", floor["psnr"], floor["ssim"], 0.0]]
    lr_image, hr = pairs[0]
    panels = {"HR": hr, "bicubic": D.bicubic_resize(lr_image, tuple(hr.shape[-2:]))}
    curves, psnrs, gate_curve = {}, {}, []  # gate_curve: (step, mean s(a)) of the gated model
    for label, options in _MODELS.items():
        torch.manual_seed(seed)
        model = create_backbone("sedsr", scale=scale, **options)
        initial_gates = model.gates()
        start = time.perf_counter()
        result = train_sr(model, train_set, steps=steps, batch_size=16, lr=2e-4, seed=seed, device=device,
                          max_time=max_time, progress=False)
        seconds = time.perf_counter() - start
        model = result.model.cpu()
        scores = evaluate_sr(model, pairs, scale)
        gates = model.gates()
        rows.append([label, f"{sum(gates) / len(gates):.3f}" if gates else "-", scores["psnr"], scores["ssim"],
                     seconds])
        psnrs[label] = scores["psnr"]
        panels[label.split(" (")[0]] = super_resolve(model, lr_image)
        curves[label] = [(h["step"], h["loss"]) for h in result.history]
        if initial_gates:
            gate_curve = [(0, sum(initial_gates) / len(initial_gates))]
            gate_curve += [(h["step"], sum(h["gates"]) / len(h["gates"])) for h in result.history if "gates" in h]
    ours = psnrs[_OURS]
    # the untrained network is exactly bicubic, so a score not above bicubic's means training did not help
    # (the per-batch training loss starts near its final level and is too noisy to judge)
    failure = None if ours > floor["psnr"] else (
        f"PSNR-Y {ours:.2f} dB is not above bicubic's {floor['psnr']:.2f} dB, the untrained network's score")
    report.compare("vision", "x2 super-resolution", "PSNR-Y (dB)", "gradient residual", ours,
                   "identity residual", psnrs[_BASELINE], lower_is_better=False, margin="db", failure=failure)
    report.compare("vision", "x2 super-resolution against bicubic", "PSNR-Y (dB)", "gradient residual", ours,
                   "bicubic", floor["psnr"], lower_is_better=False, margin="db", failure=failure)
    report.metric("vision", "x2 PSNR-Y bicubic", floor["psnr"])
    report.table(["method", "mean gate s(a)", "PSNR-Y (dB)", "SSIM-Y", "train s"], rows)
    size = min(96, *hr.shape[-2:])
    box = ((hr.shape[-2] - size) // 2, (hr.shape[-1] - size) // 2, size)
    report.figure(_crop_figure(plt, panels, box), "vision-sr-crops",
                  f"x2 super-resolution of {test_names[0]} (held out): centre crops")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for colour, (label, points) in zip(("C0", "C1"), curves.items()):
        ax.plot(*zip(*points), label=label, color=colour)
    ax.set_xlabel("step")
    ax.set_ylabel("training L1 loss")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    report.figure(fig, "vision-sr-loss", "training loss")
    if gate_curve:
        shown = [*gate_curve[:-1:max(1, len(gate_curve) // 6)], gate_curve[-1]]
        report.text("Mean gate s(a) of the gradient residual's blocks (the weight of the gradient term) during "
                    "training: " + ", ".join(f"step {step}: {value:.3f}" for step, value in shown) + ".")
        fig, ax = plt.subplots(figsize=(5, 2.8))
        ax.plot(*zip(*gate_curve), color="C1")
        ax.set_xlabel("step")
        ax.set_ylabel("mean gate s(a)")
        fig.tight_layout()
        report.figure(fig, "vision-sr-gates", "gate trajectory of the gradient residual")
