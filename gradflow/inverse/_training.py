"""Training a prior as an unrolled gradient-descent denoiser through gradflow.train.fit (private)."""

from __future__ import annotations

import math

import torch

from .._validation import check_positive_int
from ..train import FitResult, fit
from ._checks import check_image
from .priors import Prior, prox_iterations

__all__ = ["denoise", "train_prior"]


def denoise(prior: Prior, y: torch.Tensor, n_steps: int, lam: float = 1.0, warm_steps: int = 0) -> torch.Tensor:
    """The t-step denoiser: ``warm_steps`` accelerated gradient steps on 1/2 ||x - y||^2 + lam R(x) from y
    without autograd, then ``n_steps`` more (momentum restarted) that are differentiated through, with the
    certified step 1 / (1 + lam L) (what :func:`train_prior` trains)."""
    x0 = None
    if warm_steps:
        with torch.no_grad():
            x0 = prox_iterations(prior, y, lam, warm_steps)[0]
    return prox_iterations(prior, y, lam, n_steps, x0=x0)[0]


def train_prior(prior: Prior, images: torch.Tensor, *, sigma: float = 25 / 255, unrolled_steps: int = 20,
                warm_steps: int = 0, val_images: torch.Tensor | None = None, steps: int = 1000, batch_size: int = 16,
                lr: float = 2e-3, seed: int = 0, device="auto", max_time: float | None = None,
                progress: bool = False, **fit_options) -> FitResult:
    r"""Train ``prior`` as a Gaussian denoiser (the CRR-NN recipe) with :func:`gradflow.train.fit`.

    Each step draws a batch of clean patches x, noisy y = x + sigma n, and minimises the mean squared
    error of the t-step denoiser x_t (t = ``unrolled_steps``): Nesterov-accelerated gradient descent on
    1/2 ||x - y||^2 + R(x) from y with the certified step 1 / (1 + L) (L = ``prior.lipschitz_bound()``,
    differentiated through). The regularisation scale is learned inside R, so the trained prior
    denoises at this ``sigma`` with lam = 1. For a convex prior, large t trains the minimiser of the
    variational problem itself; t = 1 gives a gradient-step denoiser. ``warm_steps`` > 0 first runs that
    many steps without autograd and differentiates only the last t (a truncated, "Jacobian-free" gradient
    of the denoiser near its fixed point, so the trained prior's minimiser, not an early iterate, denoises).

    Args:
        prior: the prior to train (in place), e.g. :class:`GradNetPrior` or :class:`GradStepPrior`.
        images: clean training patches (N, C, p, p) in [0, 1] (e.g. from :func:`patch_dataset`).
        sigma: noise standard deviation on the images' scale (25/255 = 25 on a 0-255 scale).
        val_images: held-out patches; their noise is drawn once (seed + 1) so validation is comparable.
        steps, batch_size, lr, seed, device, max_time, progress, **fit_options: passed to ``fit``.

    Returns:
        the :class:`~gradflow.train.FitResult` (losses are mean squared errors per pixel).

    Example:
        >>> from gradflow.inverse import GradNetPrior, patch_dataset
        >>> patches = patch_dataset(["brick"], patch_size=16, n_patches=32)
        >>> result = train_prior(GradNetPrior(n_filters=4, kernel_size=3), patches, unrolled_steps=2, steps=3,
        ...                      device="cpu")
        >>> result.steps
        3
    """
    if not isinstance(prior, Prior):
        raise ValueError(f"prior must be a gradflow.inverse Prior, got {type(prior).__name__}")
    check_image(images, "images", getattr(prior, "channels", None))
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    t = check_positive_int(unrolled_steps, "unrolled_steps")
    warm = check_positive_int(warm_steps, "warm_steps", minimum=0)
    val_data = None
    if val_images is not None:
        check_image(val_images, "val_images", getattr(prior, "channels", None))
        gen = torch.Generator().manual_seed(seed + 1)
        noise = torch.randn(val_images.shape, generator=gen, dtype=val_images.dtype)
        val_data = (val_images, val_images + sigma * noise)

    def loss(model, batch):
        if isinstance(batch, torch.Tensor):
            clean = batch
            noisy = clean + sigma * torch.randn_like(clean)
        else:
            clean, noisy = batch
        return (denoise(model, noisy, t, warm_steps=warm) - clean).square().mean()

    return fit(prior, loss, images, val_data=val_data, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
               device=device, max_time=max_time, progress=progress, **fit_options)
