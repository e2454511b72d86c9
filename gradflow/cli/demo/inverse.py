"""The inverse-problems section of ``gradflow demo``: degraded / TV / learned convex prior / truth."""

from __future__ import annotations

import time

import torch

from ...inverse import TRAIN_IMAGES, GradNetPrior, TotalVariation, load_image, patch_dataset, psnr, ssim, train_prior
from ...inverse._tasks import degraded_view, make_task, restore
from ..report import Report, require_matplotlib

__all__ = ["inverse_section"]

_BLUR_SIGMA, _MISSING, _SR_FACTOR = 1.6, 0.5, 2  # the degradations (make_task's defaults, stated in the figure)


def _degradation(task) -> str:
    """The degradation of ``task`` in words: operator parameters and noise level."""
    noise = f"noise sigma {task.sigma:.3g}"
    if task.name == "deblur":
        kh, kw = task.operator.kernel.shape
        return f"Gaussian blur, std {_BLUR_SIGMA:g} ({kh}x{kw} kernel); {noise}"
    if task.name == "inpaint":
        return f"{1 - float(task.operator.mask.mean()):.0%} of pixels hidden (random mask); {noise}"
    if task.name == "sr":
        return f"x{task.operator.factor} downsampling (Gaussian anti-alias std {task.operator.factor / 2:g}); {noise}"
    return f"additive Gaussian {noise} (= {task.sigma * 255:.0f}/255)"


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
        "lam from the calibrated defaults. gradflow's model is the learned prior, the baseline TV (higher PSNR is "
        "better); a restoration no better in PSNR than the degraded input failed. The full comparison is "
        "`benchmarks/bench_inverse.py`."
    )
    tasks = ("denoise", "deblur", "inpaint", "sr")
    fig, axes = plt.subplots(len(tasks), 4, figsize=(10, 2.7 * len(tasks)), squeeze=False)
    rows = []
    for i, name in enumerate(tasks):
        task = make_task(name, (size, size), seed=seed, blur_sigma=_BLUR_SIGMA, missing=_MISSING, factor=_SR_FACTOR)
        y = task.operator.measure(truth, task.sigma, generator=torch.Generator().manual_seed(seed))
        degraded = degraded_view(y, task)
        degraded_psnr = float(psnr(degraded.clamp(0, 1), truth))
        panels = [(f"degraded {degraded_psnr:.1f} dB\n{_degradation(task)}", degraded)]
        values = {}
        for label, p in (("TV", TotalVariation()), ("learned", prior)):
            start = time.perf_counter()
            result = restore(y, task, p, max_iter=max_iter)
            seconds = time.perf_counter() - start
            x = result.x.clamp(0, 1)
            value, structure = float(psnr(x, truth)), float(ssim(x, truth))
            rows.append([name, label, value, structure, result.n_iter, result.converged, seconds])
            panels.append((f"{label} {value:.1f} dB", x))
            values[label] = value
        report.compare("inverse problems", name, "PSNR (dB)", "learned convex prior", values["learned"], "TV",
                       values["TV"], lower_is_better=False, margin="db",
                       failure=f"PSNR {values['learned']:.2f} dB is no higher than the degraded input's "
                       f"{degraded_psnr:.2f} dB" if not values["learned"] > degraded_psnr else None)
        panels.append(("truth", truth))
        for j, (title, image) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(image[0, 0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{name}: {title}" if j == 0 else title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    report.figure(fig, "inverse_restorations", "degraded (with its degradation) / total variation / learned convex "
                  "prior / truth; PSNR against the truth in each title")
    report.table(["task", "prior", "PSNR (dB)", "SSIM", "iterations", "converged", "seconds"], rows)
