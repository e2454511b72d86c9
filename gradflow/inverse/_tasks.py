"""The four restoration tasks of the CLI, demo and benchmark: operators, noise, priors, default lam (private)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import check_choice, check_positive_int
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
    "wcrr-s25": {"deblur": 0.5, "inpaint": 8.0, "sr": 2.0},  # ridge-s25's factors (not calibrated on it)
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
    """fista for priors without a Lipschitz gradient (TV), pnp for the gradient-step prior, agd otherwise (convex
    and weakly convex priors)."""
    if not math.isfinite(float(prior.lipschitz_bound().detach())):
        return "fista"
    return "pnp" if isinstance(prior, GradStepPrior) else "agd"


def solver_for(prior: Prior, task: Task) -> tuple[str, float]:
    """(method, tol) that :func:`restore` uses: :func:`method_for` with tol 1e-4, except denoising with a smooth
    non-quadratic convex prior: ("lbfgs", 1e-5). A quadratic prior (:class:`Tikhonov`) keeps agd: its denoising
    objective is a well-conditioned quadratic that the certified steps solve in a few iterations, where the
    line search of L-BFGS can stall in float32 above the tighter tolerance."""
    method = method_for(prior)
    smooth = task.name == "denoise" and method == "agd" and not isinstance(prior, Tikhonov)  # weakly convex too
    return ("lbfgs", 1e-5) if smooth else (method, 1e-4)


def degraded_view(y: torch.Tensor, task: Task) -> torch.Tensor:
    """The measurement as an image to look at (and score): y itself, or for super-resolution the
    low-resolution image enlarged by pixel repetition."""
    if task.name == "sr":
        f = task.operator.factor
        return y.repeat_interleave(f, -2).repeat_interleave(f, -1)
    return y


#: ``restore(tile="auto")`` tiles images with more pixels than this (per channel)
TILE_PIXELS = 1024 * 1024
#: core size and overlap of the tiles of ``restore(tile="auto")``
DEFAULT_TILE, DEFAULT_MARGIN = 512, 32


def _tile_operator(operator: LinearOperator, top: int, left: int, h: int, w: int) -> LinearOperator:
    """The operator acting on the window [top, top + h) x [left, left + w) of the image."""
    if isinstance(operator, Inpainting):
        return Inpainting(operator.mask[..., top:top + h, left:left + w])
    if isinstance(operator, (Denoising, Blur, Downsampling)):
        return operator
    raise ValueError(f"tiled restoration supports Denoising, Blur, Inpainting and Downsampling operators, got "
                     f"{type(operator).__name__}: use tile=None")


def _spans(n: int, core: int, margin: int) -> list[tuple[int, int, int, int]]:
    """(window start, window end, core start, core end) along an axis of n pixels: cores of ``core`` pixels
    tile [0, n); each window is its core widened by ``margin`` on both sides, clipped to [0, n)."""
    return [(max(0, c - margin), min(n, c + core + margin), c, min(n, c + core)) for c in range(0, n, core)]


def _restore_tiled(y, task, prior, lam, method, tol, max_iter, core, margin) -> SolveResult:
    """:func:`restore` of (B, 1, h, w) measurements in overlapping tiles (see ``restore``)."""
    f = task.operator.factor if isinstance(task.operator, Downsampling) else 1
    H, W = y.shape[-2] * f, y.shape[-1] * f
    core, margin = -(-core // f) * f, -(-margin // f) * f  # on the low-resolution grid for super-resolution
    x = y.new_empty(y.shape[0], 1, H, W)
    results = []
    for r0, r1, c0, c1 in _spans(H, core, margin):
        for s0, s1, d0, d1 in _spans(W, core, margin):
            op = _tile_operator(task.operator, r0, s0, r1 - r0, s1 - s0)
            y_tile = y[..., r0 // f:r1 // f, s0 // f:s1 // f]
            result = solve(y_tile, op, prior, lam, method, max_iter=max_iter, tol=tol)
            x[..., c0:c1, d0:d1] = result.x[..., c0 - r0:c1 - r0, d0 - s0:d1 - s0]
            results.append(result)
    longest = max(results, key=lambda r: r.n_iter)
    return SolveResult(x=x, history=longest.history, converged=all(r.converged for r in results), method=method,
                       lam=lam, diverged=any(r.diverged for r in results), tiles=len(results),
                       convex=all(r.convex for r in results))


def _tile_size(tile, shape) -> int | None:
    """The core size ``restore`` tiles with, or None (no tiling)."""
    if tile is None or tile is False:
        return None
    if isinstance(tile, str):
        check_choice(tile, "tile", ("auto",))
        return DEFAULT_TILE if shape[0] * shape[1] > TILE_PIXELS else None
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 16:
        raise ValueError(f"tile must be 'auto', None or an integer >= 16 (tile size in pixels), got {tile!r}")
    return tile


def restore(y: torch.Tensor, task: Task, prior: Prior, *, lam: float | None = None, max_iter: int = 600,
            tol: float | None = None, tile: int | str | None = "auto", tile_margin: int = DEFAULT_MARGIN
            ) -> SolveResult:
    """Solve ``task`` for measurements ``y`` (B, C, h, w) with ``prior`` (lam: :func:`default_lam` unless given).

    Method and default ``tol``: :func:`solver_for` (denoising with a smooth convex prior uses "lbfgs": the
    objective is then uniformly convex and L-BFGS needs several times fewer gradient evaluations than the
    accelerated gradient with the certified worst-case step; its residual, measured at the iterate on the
    same certified scale as agd's, is held to 1e-5).

    Colour (C > 1): every channel is restored on its own with the same prior and lam (the channels are
    solved as a batch of grey images and put back, so ``result.x`` is (B, C, H, W)): the shipped priors are
    grey-image priors, and per-channel RGB keeps the noise model (independent noise of std sigma per
    channel) exact.

    Tiles (bounded memory for large images): with ``tile`` an integer T, the image is cut into T x T cores,
    each solved on its window widened by ``tile_margin`` pixels on every side (clipped at the image border)
    and only its core kept; ``"auto"`` (default) tiles with T = :data:`DEFAULT_TILE` images of more than
    :data:`TILE_PIXELS` pixels, None never tiles. The prior's and the data term's couplings are local, so
    the tiled estimate approaches the untiled one as the margin grows (the test suite bounds the gap at
    the default margin). Memory then scales with the tile, time with the image (plus the overlap). The
    result's ``history`` is the longest tile's, ``converged`` holds if every tile converged and ``tiles``
    counts them. For super-resolution T and the margin are rounded up to multiples of the factor.

    Example:
        >>> task = make_task("denoise", (40, 40), sigma=0.1)
        >>> y = task.operator.measure(torch.rand(1, 1, 40, 40), task.sigma)
        >>> result = restore(y, task, TotalVariation(), tile=16, tile_margin=8)
        >>> result.x.shape, result.tiles
        (torch.Size([1, 1, 40, 40]), 9)
    """
    lam = default_lam(prior, task) if lam is None else check_lam(lam)
    method, default_tol = solver_for(prior, task)
    tol = default_tol if tol is None else tol
    if not isinstance(y, torch.Tensor) or y.ndim != 4:
        raise ValueError(f"y must be a tensor of measurements (B, C, h, w), got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    margin = check_positive_int(tile_margin, "tile_margin", minimum=0)
    f = task.operator.factor if isinstance(task.operator, Downsampling) else 1
    core = _tile_size(tile, (y.shape[-2] * f, y.shape[-1] * f))
    B, C = y.shape[:2]
    folded = y.reshape(B * C, 1, *y.shape[2:]) if C > 1 else y
    with torch.no_grad():
        if core is not None and max(y.shape[-2:]) * f > core:
            result = _restore_tiled(folded, task, prior, lam, method, tol, max_iter, core, margin)
        else:
            result = solve(folded, task.operator, prior, lam, method, max_iter=max_iter, tol=tol)
    if C > 1:
        result.x = result.x.reshape(B, C, *result.x.shape[2:])
    return result
