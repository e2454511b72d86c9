"""Training a prior as an unrolled gradient-descent denoiser through gradflow.train.fit (private)."""

from __future__ import annotations

import torch

from .._validation import check_choice, check_number, check_positive_int, check_seed
from ..train import FitResult, fit
from ._checks import check_image
from .priors import Prior, prox_iterations

__all__ = ["OBJECTIVES", "denoise", "minimiser_loss", "train_prior"]

#: what :func:`train_prior` can train: the t-step denoiser, or the minimiser of the variational problem
OBJECTIVES = ("unrolled", "minimiser")


def denoise(prior: Prior, y: torch.Tensor, n_steps: int, lam: float = 1.0, warm_steps: int = 0) -> torch.Tensor:
    """The t-step denoiser: ``warm_steps`` accelerated gradient steps on 1/2 ||x - y||^2 + lam R(x) from y
    without autograd, then ``n_steps`` more (momentum restarted) that are differentiated through, with the
    certified step 1 / (1 + lam L) (what :func:`train_prior` trains)."""
    x0 = None
    if warm_steps:
        with torch.no_grad():
            x0 = prox_iterations(prior, y, lam, warm_steps)[0]
    return prox_iterations(prior, y, lam, n_steps, x0=x0)[0]


def _conjugate_gradients(apply, b: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    """Solve apply(v) = b (symmetric positive definite, per image of the batch) by conjugate gradients
    from 0, until every image's residual is <= tol ||b||."""
    dims = tuple(range(1, b.ndim))

    def dot(a, c):
        return (a * c).sum(dims, keepdim=True)

    v = torch.zeros_like(b)
    r = b.clone()
    d = r.clone()
    rr = dot(r, r)
    target = tol**2 * rr
    for _ in range(max_iter):
        if bool((rr <= target).all()):
            break
        Ad = apply(d)
        step = rr / dot(d, Ad).clamp_min(1e-30)
        v = v + step * d
        r = r - step * Ad
        rr_new = dot(r, r)
        d = r + (rr_new / rr.clamp_min(1e-30)) * d
        rr = rr_new
    return v


#: L-BFGS iterations of the minimiser's inner solve before the accelerated-gradient fallback
_LBFGS_ITERATIONS = 200


def _minimiser(prior: Prior, noisy: torch.Tensor, lam: float, tol: float, max_iter: int) -> torch.Tensor:
    """argmin_x 1/2 ||x - y||^2 + lam R(x) for the batch, without autograd: L-BFGS (the solver ``restore`` uses
    for denoising) until the batch's gradient norm is <= ``tol`` max(1, ||y||); if its line search stalls first
    (float rounding) or after ``_LBFGS_ITERATIONS`` iterations, at most ``max_iter`` accelerated gradient steps
    with the certified step finish the job, to ``tol`` per image."""
    from ._solvers import solve
    from .operators import Denoising

    L = float(prior.lipschitz_bound().detach())
    scale = max(float(noisy.flatten().norm()), 1.0)
    # solve's residual is ||grad F|| / ((1 + lam L) ||x||): the target gradient norm on that scale
    target = tol * scale / ((1.0 + lam * L) * max(float(noisy.flatten().norm()), 1e-12))
    result = solve(noisy, Denoising(), prior, lam, "lbfgs", max_iter=min(max_iter, _LBFGS_ITERATIONS), tol=target)
    if result.converged:
        return result.x
    return prox_iterations(prior, noisy, lam, max_iter, tol, x0=result.x)[0]


def _check_minimiser(prior: Prior, lam: float) -> None:
    """ValueError unless 1/2 ||x - y||^2 + lam R(x) is certified strongly convex (lam rho < 1)."""
    rho = float(prior.rho_bound().detach())
    if lam * rho >= 1:
        raise ValueError(f"training the minimiser needs 1/2 ||x - y||^2 + lam R(x) strongly convex, i.e. lam * rho < 1 "
                         f"(rho = prior.rho_bound()), got lam * rho = {lam * rho:.3g} (the minimiser of a non-convex "
                         "problem is not unique): use objective='unrolled'")


def minimiser_loss(prior: Prior, clean: torch.Tensor, noisy: torch.Tensor, lam: float = 1.0, *,
                   tol: float = 1e-4, max_iter: int = 1000) -> torch.Tensor:
    r"""Mean squared error of the exact denoiser x*(y) = argmin_x 1/2 ||x - y||^2 + lam R(x) (R convex, or
    rho-weakly convex with lam rho < 1: the problem is then strongly convex), with its parameter gradient by
    implicit differentiation.

    x* is computed without autograd (L-BFGS, to a gradient norm ``tol`` max(1, ||y||), then accelerated
    gradient steps if needed, at most ``max_iter``); at x*,
    x* - y + lam grad R(x*) = 0, so dx*/dtheta = -(I + lam H)^{-1} lam d(grad R)/dtheta with H = Hess R(x*) =
    W^T diag(g'(W x*)) W >= -rho I. With v = (I + lam H)^{-1} dL/dx* (conjugate gradients, to ``tol``) the gradient is
    -lam v^T d(grad R(x*))/dtheta: the returned scalar has the value of the error and this gradient. Under
    ``torch.no_grad()`` it is just the error.
    """
    _check_minimiser(prior, lam)
    with torch.no_grad():
        x_star = _minimiser(prior, noisy, lam, tol, max_iter)
    error = (x_star - clean).square().mean()
    if not torch.is_grad_enabled():
        return error
    w = prior.filters().detach()
    with torch.enable_grad():
        u = prior._conv(x_star, w).requires_grad_(True)
        slope = torch.autograd.grad(prior.profile(u).sum(), u)[0]  # g'(W x*), the profile being per entry
    slope = slope.detach()

    def system(v):  # (I + lam H) v
        return v + lam * prior._conv_adjoint(slope * prior._conv(v, w), w)

    with torch.no_grad():
        v = _conjugate_gradients(system, 2.0 * (x_star - clean) / clean.numel(), tol, max_iter)
    surrogate = -lam * (prior._grad(x_star) * v).sum()
    return error + surrogate - surrogate.detach()


def train_prior(prior: Prior, images: torch.Tensor, *, sigma: float = 25 / 255, objective: str = "unrolled",
                unrolled_steps: int = 20, warm_steps: int = 0, solve_tol: float = 1e-4,
                val_images: torch.Tensor | None = None, steps: int = 1000, batch_size: int = 16,
                lr: float = 2e-3, seed: int = 0, device="auto", max_time: float | None = None,
                progress: bool = False, **fit_options) -> FitResult:
    r"""Train ``prior`` as a Gaussian denoiser (the CRR-NN recipe) with :func:`gradflow.train.fit`.

    Each step draws a batch of clean patches x, noisy y = x + sigma n, and minimises the mean squared
    error of a denoiser built from R. The regularisation scale is learned inside R, so the trained prior
    denoises at this ``sigma`` with lam = 1.

    * ``objective="minimiser"`` (convex priors, and weakly convex ones with rho < 1): the exact denoiser
      argmin_x 1/2 ||x - y||^2 + R(x), solved to ``solve_tol`` and differentiated implicitly
      (:func:`minimiser_loss`): what the solvers compute at test time, so the prior is trained for the way it
      is used.
    * ``objective="unrolled"``: the t-step denoiser x_t (t = ``unrolled_steps``), Nesterov-accelerated
      gradient descent on 1/2 ||x - y||^2 + R(x) from y with the certified step 1 / (1 + L)
      (L = ``prior.lipschitz_bound()``, differentiated through); t = 1 gives a gradient-step denoiser.
      ``warm_steps`` > 0 first runs that many steps without autograd and differentiates only the last t
      (a truncated, "Jacobian-free" gradient). An early-stopped iterate is a different denoiser from the
      minimiser: a convex prior trained this way is best used with a smaller lam at convergence.

    Args:
        prior: the prior to train (in place), e.g. :class:`GradNetPrior` or :class:`GradStepPrior`.
        images: clean training patches (N, C, p, p) in [0, 1] (e.g. from :func:`patch_dataset`).
        sigma: noise standard deviation on the images' scale (25/255 = 25 on a 0-255 scale).
        val_images: held-out patches; their noise is drawn once (seed + 1) so validation is comparable.
        steps, batch_size, lr, seed, device, max_time, progress: passed to ``fit``, as are the other keyword arguments.

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
    sigma = check_number(sigma, "sigma", minimum=0.0, strict=True)
    check_choice(objective, "objective", OBJECTIVES)
    t = check_positive_int(unrolled_steps, "unrolled_steps")
    warm = check_positive_int(warm_steps, "warm_steps", minimum=0)
    solve_tol = check_number(solve_tol, "solve_tol", minimum=0.0, strict=True)
    check_seed(seed)
    if objective == "minimiser":
        _check_minimiser(prior, 1.0)
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
        if objective == "minimiser":
            return minimiser_loss(model, clean, noisy, tol=solve_tol)
        return (denoise(model, noisy, t, warm_steps=warm) - clean).square().mean()

    return fit(prior, loss, images, val_data=val_data, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
               device=device, max_time=max_time, progress=progress, **fit_options)
