"""The four restoration tasks of the CLI, demo and benchmark: operators, noise, priors, default lam (private)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import check_choice
from ._checks import check_lam
from ._pretrained import DEFAULT_PRETRAINED, PRETRAINED, list_pretrained, load_pretrained
from ._solvers import SolveResult, solve
from .operators import Blur, Denoising, Downsampling, Inpainting, LinearOperator, gaussian_kernel
from .priors import GradStepPrior, Prior, Tikhonov, TotalVariation

__all__ = ["PRIOR_CHOICES", "TASKS", "Task", "default_lam", "degraded_view", "make_prior", "make_task", "method_for",
           "restore"]

TASKS = ("denoise", "deblur", "inpaint", "sr")
#: default noise std per task (0-1 image scale)
_NOISE = {"denoise": 25 / 255, "deblur": 0.01, "inpaint": 0.01, "sr": 0.01}
PRIOR_CHOICES = ("learned", *list_pretrained(), "tv", "tikhonov")

#: lam of the classical priors at the task's default noise level, calibrated by PSNR on the validation image
#: "motorcycle" (``python benchmarks/bench_inverse.py --calibrate``); other noise levels scale lam by
#: (sigma / default sigma)^2, the MAP scaling.
_LAM = {
    "tv": {"denoise": 0.09, "deblur": 0.000375, "inpaint": 0.00075, "sr": 0.00075},
    "tikhonov": {"denoise": 0.5, "deblur": 0.006, "inpaint": 0.012, "sr": 0.006},
}
#: a learned prior trained at noise level s denoises noise s with lam = 1; for a task with noise sigma its
#: lam is factor * (sigma / s)^2 (the MAP scaling), with the factor calibrated the same way (1 if absent).
_LAM_FACTOR = {
    "ridge-s25": {"deblur": 0.5, "inpaint": 8.0, "sr": 2.0},
    "ridge-s15": {"deblur": 0.5, "inpaint": 8.0, "sr": 2.0},  # ridge-s25's factors (calibrated on ridge-s25 only)
    "cascade-s25": {"deblur": 0.5, "inpaint": 4.0, "sr": 2.0},
    "gradstep-s25": {"denoise": 0.25, "deblur": 0.125, "inpaint": 2.0, "sr": 0.25},
}


@dataclass
class Task:
    """A restoration problem: its ``name``, the forward ``operator`` and the noise std ``sigma``."""

    name: str
    operator: LinearOperator
    sigma: float


def make_task(name: str, shape, *, sigma: float | None = None, seed: int = 0, mask=None, factor: int = 2,
              blur_sigma: float = 1.6, missing: float = 0.5) -> Task:
    """The task ``name`` for images of ``shape`` (H, W): denoise (identity), deblur (Gaussian blur of std
    ``blur_sigma``), inpaint (``mask`` or a random mask hiding ``missing`` of the pixels), sr (x``factor``
    downsampling); ``sigma`` defaults to 25/255 for denoising and 0.01 otherwise."""
    check_choice(name, "task", TASKS)
    sigma = _NOISE[name] if sigma is None else sigma
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if name == "denoise":
        op = Denoising()
    elif name == "deblur":
        op = Blur(gaussian_kernel(blur_sigma))
    elif name == "inpaint":
        op = Inpainting(mask) if mask is not None else Inpainting.random(tuple(shape), missing=missing, seed=seed)
    else:
        op = Downsampling(factor)
    return Task(name, op, float(sigma))


def make_prior(name: str) -> Prior:
    """A prior by CLI name: "learned" (the default pretrained convex prior), a pretrained name, "tv" or
    "tikhonov" (gradient Tikhonov)."""
    check_choice(name, "prior", PRIOR_CHOICES)
    if name == "tv":
        return TotalVariation()
    if name == "tikhonov":
        return Tikhonov("gradient")
    return load_pretrained(DEFAULT_PRETRAINED if name == "learned" else name)


def _prior_key(prior: Prior) -> str:
    if isinstance(prior, TotalVariation):
        return "tv"
    if isinstance(prior, Tikhonov):
        return "tikhonov"
    name = getattr(prior, "pretrained_name", None)
    return name if name in PRETRAINED else DEFAULT_PRETRAINED


def default_lam(prior: Prior, task: Task) -> float:
    """The calibrated lam for ``prior`` on ``task``: for a learned prior trained at noise level s,
    factor * (sigma / s)^2; for TV and Tikhonov the calibrated value scaled by (sigma / default sigma)^2."""
    key = _prior_key(prior)
    if key in _LAM:
        base = _LAM[key][task.name]
        return base * (task.sigma / _NOISE[task.name]) ** 2 if task.sigma > 0 else base
    factor = _LAM_FACTOR.get(key, {}).get(task.name, 1.0)
    trained = float(getattr(prior, "sigma", _NOISE["denoise"]))
    return factor * (task.sigma / trained) ** 2 if task.sigma > 0 else factor


def method_for(prior: Prior) -> str:
    """fista for priors without a Lipschitz gradient (TV), pnp for non-convex priors, agd otherwise."""
    if not math.isfinite(float(prior.lipschitz_bound().detach())):
        return "fista"
    return "pnp" if isinstance(prior, GradStepPrior) or not prior.is_convex else "agd"


def solver_for(prior: Prior, task: Task) -> tuple[str, float]:
    """(method, tol) that :func:`restore` uses: :func:`method_for` with tol 1e-4, except denoising with a smooth
    non-quadratic convex prior: ("lbfgs", 1e-5). A quadratic prior (:class:`Tikhonov`) keeps agd: its denoising
    objective is a well-conditioned quadratic that the certified steps solve in a few iterations, where the
    line search of L-BFGS can stall in float32 above the tighter tolerance."""
    method = method_for(prior)
    smooth = task.name == "denoise" and method == "agd" and not isinstance(prior, Tikhonov)
    return ("lbfgs", 1e-5) if smooth else (method, 1e-4)


def degraded_view(y: torch.Tensor, task: Task) -> torch.Tensor:
    """The measurement as an image to look at (and score): y itself, or for super-resolution the
    low-resolution image enlarged by pixel repetition."""
    if task.name == "sr":
        f = task.operator.factor
        return y.repeat_interleave(f, -2).repeat_interleave(f, -1)
    return y


def restore(y: torch.Tensor, task: Task, prior: Prior, *, lam: float | None = None, max_iter: int = 600,
            tol: float | None = None) -> SolveResult:
    """Solve ``task`` for measurements ``y`` (B, C, h, w) with ``prior`` (lam: :func:`default_lam` unless given).

    Method and default ``tol``: :func:`solver_for` (denoising with a smooth convex prior uses "lbfgs": the
    objective is then uniformly convex and L-BFGS needs several times fewer gradient evaluations than the
    accelerated gradient with the certified worst-case step; its residual, measured at the iterate on the
    same certified scale as agd's, is held to 1e-5).

    Colour (C > 1): every channel is restored on its own with the same prior and lam (the channels are
    solved as a batch of grey images and put back, so ``result.x`` is (B, C, H, W)): the shipped priors are
    grey-image priors, and per-channel RGB keeps the noise model (independent noise of std sigma per
    channel) exact."""
    lam = default_lam(prior, task) if lam is None else check_lam(lam)
    method, default_tol = solver_for(prior, task)
    tol = default_tol if tol is None else tol
    B, C = y.shape[:2]
    folded = y.reshape(B * C, 1, *y.shape[2:]) if C > 1 else y
    with torch.no_grad():
        result = solve(folded, task.operator, prior, lam, method, max_iter=max_iter, tol=tol)
    if C > 1:
        result.x = result.x.reshape(B, C, *result.x.shape[2:])
    return result
