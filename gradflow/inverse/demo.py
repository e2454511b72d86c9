"""The inverse-problems section of ``gradflow demo``: degraded / TV / learned convex prior / truth."""

from __future__ import annotations

import time

import torch

from ..report import Report, require_matplotlib
from ._data import TRAIN_IMAGES, load_image, patch_dataset
from ._metrics import psnr, ssim
from ._tasks import degraded_view, make_task, restore
from ._training import train_prior
from .priors import GradNetPrior, TotalVariation

__all__ = ["inverse_section"]


def _learned_prior(quick: bool, device: str, seed: int, max_time: float | None):
    """The shipped default prior, or (if its weights are missing) a small one trained here."""
    try:
        return GradNetPrior.pretrained(), "the shipped default prior (`GradNetPrior.pretrained()`)"
    except OSError:
        pass
    torch.manual_seed(seed)
    prior = GradNetPrior(n_filters=8 if quick else 16, kernel_size=5)
    patches = patch_dataset(TRAIN_IMAGES, patch_size=24 if quick else 32, n_patches=64 if quick else 1000, seed=seed)
    steps = 3 if quick else 150
    train_prior(prior, patches, unrolled_steps=5 if quick else 20, steps=steps, lr=1e-2, seed=seed, device=device,
                max_time=max_time)
    return prior.cpu().eval(), f"a small convex ridge prior trained here for {steps} steps (no shipped weights)"


def inverse_section(report: Report, *, quick: bool = False, device: str = "auto", seed: int = 0,
                    max_time: float | None = None) -> None:
    """Restore a held-out image (camera) in four tasks with total variation and the learned convex prior
    and add the images side by side, a PSNR/SSIM table and summary metrics to ``report``."""
    plt = require_matplotlib()
    report.heading("Inverse problems: learned convex priors")
    size, max_iter = (32, 15) if quick else (128, 600)
    truth = load_image("camera", size=size)
    prior, source = _learned_prior(quick, device, seed, max_time)
    report.text(
        f"The held-out image `camera` ({size}x{size}, never trained on) is degraded four ways and restored by "
        "minimising 1/2 ||Ax - y||^2 + lam R(x) with total variation (FISTA, exact prox) and with "
        f"{source}, whose gradient is a convolutional monotone gradient network (R convex by construction; "
        f"accelerated gradient descent with the certified step 1/(L_A + lam L_R)); at most {max_iter} iterations, "
        "lam from the calibrated defaults. The full comparison is `benchmarks/bench_inverse.py`."
    )
    tasks = ("denoise", "deblur", "inpaint", "sr")
    fig, axes = plt.subplots(len(tasks), 4, figsize=(8, 2.1 * len(tasks)), squeeze=False)
    rows = []
    for i, name in enumerate(tasks):
        task = make_task(name, (size, size), seed=seed)
        y = task.operator.measure(truth, task.sigma, generator=torch.Generator().manual_seed(seed))
        panels = [("degraded", degraded_view(y, task))]
        for label, p in (("TV", TotalVariation()), ("learned", prior)):
            start = time.perf_counter()
            result = restore(y, task, p, max_iter=max_iter)
            seconds = time.perf_counter() - start
            x = result.x.clamp(0, 1)
            value, structure = float(psnr(x, truth)), float(ssim(x, truth))
            rows.append([name, label, value, structure, result.n_iter, result.converged, seconds])
            panels.append((f"{label} {value:.1f} dB", x))
            report.metric("inverse problems", f"{name} PSNR {label} (dB)", value)
        panels.append(("truth", truth))
        for j, (title, image) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(image[0, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{name}: {title}" if j == 0 else title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    report.figure(fig, "inverse_restorations", "degraded / total variation / learned convex prior / truth")
    report.table(["task", "prior", "PSNR (dB)", "SSIM", "iterations", "converged", "seconds"], rows)
