"""Solvers for min_x 1/2 ||A x - y||^2 + lam R(x) with certified step sizes (private)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._validation import check_choice, check_number, check_positive_int
from ._checks import check_image, check_lam, check_measurement, inputs_checked
from ._metrics import psnr
from .operators import Denoising, Inpainting, LinearOperator
from .priors import _PROX_TOL, Prior

__all__ = ["METHODS", "LamSelection", "SolveResult", "certified_convex", "objective", "select_lam", "solve"]

#: solver names accepted by :func:`solve`
METHODS = ("agd", "fista", "pgd", "pnp", "lbfgs")


@dataclass
class SolveResult:
    """What :func:`solve` returns.

    Attributes:
        x: the estimate (B, C, H, W).
        history: one dict per iteration: ``iter``, ``objective`` (F(x_k) summed over the batch, for the
            accepted iterate), ``step`` (the step size) and ``residual`` (the relative fixed-point
            residual ||T(v) - v|| / max(||v||, 1e-12) of the forward-backward map T at the point v it
            was applied to; 0 exactly at a minimiser).
        converged: whether the residual fell below ``tol``.
        method, lam: as solved.
        diverged: whether the solve was stopped by the divergence guard (a non-finite iterate, or one
            whose norm exceeded ``divergence_factor`` times the start's); ``x`` is then the last iterate
            before the guard fired.
        tiles: how many overlapping tiles the image was solved in (1: one solve; see ``restore``).
        convex: whether F is certified convex: R convex, or R rho-weakly convex (``prior.rho_bound()``) with
            mu_A - lam rho >= 0, mu_A the certified strong convexity of the data term (1 for denoising, the
            smallest squared mask entry for inpainting, 0 otherwise). When False a solve still decreases F
            and stops at a fixed point, but that point is a critical point, not certified to be the minimiser.
    """

    x: torch.Tensor
    history: list[dict]
    converged: bool
    method: str
    lam: float
    diverged: bool = False
    tiles: int = 1
    convex: bool = True

    @property
    def n_iter(self) -> int:
        return len(self.history)


def objective(x: torch.Tensor, y: torch.Tensor, operator: LinearOperator, prior: Prior, lam: float) -> torch.Tensor:
    """F(x) = 1/2 ||A x - y||^2 + lam R(x) per image, shape (B,), for images x (B, C, H, W) and measurements
    y shaped like A x (finite; lam a finite number >= 0).

    Example:
        >>> from gradflow.inverse import Denoising, Tikhonov
        >>> objective(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), Denoising(), Tikhonov("identity"), 1.0)
        tensor([4.])
    """
    lam = _check_problem(y, operator, prior, lam)
    check_image(x, "x")
    _check_measurement_shape(y, operator(x).shape)
    return _objective(x, y, operator, prior, lam)


def _objective(x, y, operator, prior, lam):
    """:func:`objective` of checked arguments (the solvers' per-iteration value)."""
    r = operator(x) - y
    data = 0.5 * r.abs().square().flatten(1).sum(1)
    return data if lam == 0 else data + lam * prior.cost(x)


def _objective_and_grad(x, y, operator, prior, lam):
    """(F(x) per image, grad F(x)) of checked arguments, the prior's cost and gradient in one pass."""
    r = operator(x) - y
    data = 0.5 * r.abs().square().flatten(1).sum(1)
    g = operator.adjoint(r)
    if lam == 0:
        return data, g
    cost, grad = prior.cost_and_grad(x)
    return data + lam * cost, g + lam * grad


def _data_strong_convexity(operator: LinearOperator) -> float:
    """A certified mu_A with A^T A >= mu_A I: 1 for denoising, min m^2 for inpainting, 0 otherwise."""
    if isinstance(operator, Denoising):
        return 1.0
    if isinstance(operator, Inpainting):
        return float(operator.mask.square().min())
    return 0.0


def certified_convex(operator: LinearOperator, prior: Prior, lam: float) -> bool:
    """Whether F = 1/2 ||A x - y||^2 + lam R(x) is certified convex: mu_A - lam rho >= 0 with rho =
    ``prior.rho_bound()`` (0 for convex priors) and mu_A the data term's certified strong convexity (1 for
    denoising, the smallest squared mask entry for inpainting, 0 for other operators). For denoising with a
    weakly convex prior this is lam rho <= 1.

    Example:
        >>> from gradflow.inverse import Denoising, GradNetPrior, WeaklyConvexPrior
        >>> prior = WeaklyConvexPrior.from_convex(GradNetPrior(n_filters=4, kernel_size=3), rho_max=0.5)
        >>> round(float(prior.rho_bound().detach()), 4)
        0.25
        >>> certified_convex(Denoising(), prior, 1.0), certified_convex(Denoising(), prior, 5.0)
        (True, False)
    """
    lam = check_lam(lam)
    if not isinstance(operator, LinearOperator):
        raise ValueError(f"operator must be a gradflow.inverse LinearOperator, got {type(operator).__name__}")
    if not isinstance(prior, Prior):
        raise ValueError(f"prior must be a gradflow.inverse Prior, got {type(prior).__name__}")
    if lam == 0 or prior.is_convex:
        return True
    return _data_strong_convexity(operator) - lam * float(prior.rho_bound().detach()) >= 0


def _check_problem(y, operator, prior, lam):
    check_measurement(y, "y")
    if not isinstance(operator, LinearOperator):
        raise ValueError(f"operator must be a gradflow.inverse LinearOperator, got {type(operator).__name__}")
    if not isinstance(prior, Prior):
        raise ValueError(f"prior must be a gradflow.inverse Prior, got {type(prior).__name__}")
    return check_lam(lam)


def _check_measurement_shape(y, expected) -> None:
    if tuple(y.shape) != tuple(expected):
        raise ValueError(f"y must be shaped like the measurements A x {tuple(expected)}, got {tuple(y.shape)}")


def _back_project(y, operator) -> torch.Tensor:
    """A^T y, after checking that y is shaped like the operator's measurements of an image batch (ValueError
    naming y otherwise)."""
    x = operator.adjoint(y)
    if x.ndim != 4:
        raise ValueError(f"y must be shaped like the measurements A x of images (B, C, H, W) for "
                         f"{type(operator).__name__}, got shape {tuple(y.shape)}")
    _check_measurement_shape(y, operator(x).shape)
    return x


def _norm(t):
    return float(t.flatten().norm())


def solve(y: torch.Tensor, operator: LinearOperator, prior: Prior, lam: float, method: str = "agd", *,
          x0: torch.Tensor | None = None, max_iter: int = 300, tol: float = 1e-4, prox_tol: float | None = None,
          prox_max_iter: int = 500, divergence_factor: float = 10.0) -> SolveResult:
    r"""Minimise F(x) = 1/2 ||A x - y||^2 + lam R(x) with step sizes from certified Lipschitz constants.

    With L_A = ``operator.lipschitz()`` (||A||^2) and L_R = ``prior.lipschitz_bound()``:

    * ``"agd"``: accelerated gradient descent on F (R smooth), step 1 / (L_A + lam L_R);
    * ``"pgd"``: proximal gradient, x+ = prox_{s lam R}(x - s A^T (A x - y)), step s = 1 / L_A (prox
      by ``prior.prox``: exact for TV and the identity Tikhonov, an inner solve to ``prox_tol`` otherwise);
    * ``"fista"``: the accelerated proximal gradient;
    * ``"lbfgs"``: limited-memory BFGS (10 pairs) with a strong Wolfe line search (``torch.optim.LBFGS``),
      R smooth: F decreases at every iteration and, F being uniformly convex (denoising with a convex prior),
      converges R-linearly (Liu & Nocedal 1989); the line search picks the steps, so the iteration count
      follows the local curvature instead of the certified worst case (``step`` in the history is 1 /
      (L_A + lam L_R), the scale of the residual);
    * ``"pnp"``: plug-and-play proximal gradient with the roles swapped (Hurault et al. 2022):
      x+ = prox_{s f}(x - s lam grad R(x)), s = 1 / (lam L_R), with f the data term (``operator.data_prox``);
      converges for non-convex priors too (e.g. :class:`GradStepPrior`), x - lam grad R(x) being a
      gradient-step denoiser (the data prox is solved by conjugate gradients to ``prox_tol`` unless
      closed-form).

    The accelerated methods use the monotone variant of Beck & Teboulle (MFISTA): a step is only
    accepted if it does not increase F, so F(x_k) is nonincreasing for every method (up to the inner
    solves' tolerance for ``pgd``/``fista`` with an inexact prox). Iterations stop when the relative
    fixed-point residual is <= ``tol``. The batch is solved jointly (one step size, objectives summed).

    Weakly convex priors (Hess R >= -rho I, rho = ``prior.rho_bound()``): the steps above only need the
    Lipschitz bounds, so every method still decreases F; F is convex, and the guarantees above hold, when
    mu_A - lam rho >= 0 (:func:`certified_convex`; for denoising lam rho <= 1, strongly convex below). Otherwise
    the solve warns (RuntimeWarning) and sets ``convex=False`` in the result; pnp keeps its own non-convex
    guarantee and only sets the flag. The inner prox of pgd/fista is (1 - tau rho)-strongly convex.

    Divergence guard: for a non-convex prior the objective can be unbounded below (a gradient-step
    potential along directions the operator does not observe, e.g. the missing pixels of inpainting);
    the certified step then still decreases F at every iteration, towards -inf. The solve stops, warns
    (RuntimeWarning) and sets ``diverged`` as soon as an iterate is not finite or its norm exceeds
    ``divergence_factor`` max(||x0||, ||A^T y||, 1) (convex problems with a minimiser never get there).

    Args:
        y: measurements, shaped like ``operator(x)`` for x (B, C, H, W).
        operator, prior: the forward model and the regulariser.
        lam: regularisation weight >= 0.
        method: one of :data:`METHODS`.
        x0: start (default A^T y), with the shape, dtype and device of A^T y (ValueError otherwise:
            the estimate keeps the measurements' dtype).
        divergence_factor: the divergence guard's radius, relative to the start (> 1).

    Example:
        >>> from gradflow.inverse import Blur, Tikhonov, gaussian_kernel
        >>> op = Blur(gaussian_kernel(1.0)); x = torch.rand(1, 1, 16, 16)
        >>> result = solve(op(x), op, Tikhonov(), lam=1e-3, method="agd", max_iter=50)
        >>> result.x.shape, all(a["objective"] >= b["objective"] for a, b in zip(result.history, result.history[1:]))
        (torch.Size([1, 1, 16, 16]), True)
    """
    lam = _check_problem(y, operator, prior, lam)
    check_choice(method, "method", METHODS)
    check_positive_int(max_iter, "max_iter")
    tol = check_number(tol, "tol", minimum=0.0, strict=True)
    divergence_factor = check_number(divergence_factor, "divergence_factor", minimum=1.0, strict=True)
    back_projection = _back_project(y, operator)
    if x0 is None:
        x = back_projection
    else:
        check_image(x0, "x0")
        if x0.shape != back_projection.shape:
            raise ValueError(f"x0 must have the shape of the estimate A^T y {tuple(back_projection.shape)}, "
                             f"got {tuple(x0.shape)}")
        if x0.dtype != back_projection.dtype or x0.device != back_projection.device:
            raise ValueError(f"x0 is {x0.dtype} on {x0.device} but the estimate from y is {back_projection.dtype} on "
                             f"{back_projection.device}; convert x0 (e.g. x0.to(y.real.dtype)) or y, the solve keeps "
                             "the measurements' dtype")
        x = x0.clone()
    radius = divergence_factor * max(_norm(x), _norm(back_projection), 1.0)
    L_A = operator.lipschitz(tuple(x.shape[1:]))
    L_R = float(prior.lipschitz_bound().detach()) if lam > 0 else 0.0
    if method in ("agd", "pnp", "lbfgs") and not math.isfinite(L_R):
        raise ValueError(f"method {method!r} needs a prior with a Lipschitz gradient; use 'fista' or 'pgd'")
    convex = certified_convex(operator, prior, lam)
    if not convex and method != "pnp":
        warnings.warn(
            f"the objective is not certified convex (prior rho_bound() = {float(prior.rho_bound().detach()):.3g}, "
            f"lam = {lam:.3g}, data-term strong convexity {_data_strong_convexity(operator):g}): {method} decreases it "
            "and stops at a critical point, which is not certified to be the minimiser (SolveResult.convex is False)",
            RuntimeWarning, stacklevel=2)

    def data_grad(v):
        return operator.adjoint(operator(v) - y)

    def prox_step(v, tau):
        return prior.prox(v, tau, tol=prox_tol, max_iter=prox_max_iter) if tau > 0 else v

    if method == "agd":
        step = 1.0 / (L_A + lam * L_R)

        def forward_backward(v):
            g = data_grad(v) + (lam * prior.grad(v) if lam > 0 else 0.0)
            return v - step * g
    elif method in ("pgd", "fista"):
        step = 1.0 / L_A

        def forward_backward(v):
            return prox_step(v - step * data_grad(v), step * lam)
    else:
        step = 1.0 / (lam * L_R) if lam * L_R > 0 else 1.0 / L_A
        data_tol = _PROX_TOL.get(x.dtype, 1e-3) if prox_tol is None else prox_tol

        def forward_backward(v):
            return operator.data_prox(v - step * lam * prior.grad(v) if lam > 0 else v, y, step, tol=data_tol)

    if method == "lbfgs":
        with inputs_checked():
            result = _lbfgs(x, y, operator, prior, lam, 1.0 / (L_A + lam * L_R), max_iter, tol, radius)
        result.convex = convex
        return result
    accelerated = method in ("agd", "fista")
    with torch.no_grad(), inputs_checked():
        F_x = float(_objective(x, y, operator, prior, lam).sum())
        v, x_prev, t = x, x, 1.0
        history, converged, diverged = [], False, False
        for k in range(max_iter):
            z = forward_backward(v)
            size = _norm(z)
            if not size <= radius:  # also catches NaN
                diverged = True
                warnings.warn(
                    f"{method} diverged at iteration {k + 1}: ||x|| = {size:.3g} > {radius:.3g} "
                    f"({divergence_factor:g} x the start's norm); "
                    + ("the non-convex prior's potential is unbounded below along directions the operator does "
                       "not observe (e.g. missing pixels): use a convex prior (GradNetPrior) for this problem"
                       if not prior.is_convex else "the problem may have no minimiser"),
                    RuntimeWarning, stacklevel=2)
                break
            residual = _norm(z - v) / max(_norm(v), 1e-12)
            F_z = float(_objective(z, y, operator, prior, lam).sum())
            if not accelerated:
                x, F_x = z, F_z
                v = x
            else:
                x_prev = x
                if F_z <= F_x:
                    x, F_x = z, F_z
                t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
                v = x + (t / t_new) * (z - x) + ((t - 1) / t_new) * (x - x_prev)
                t = t_new
            history.append({"iter": k + 1, "objective": F_x, "step": step, "residual": residual})
            if residual <= tol:
                converged = True
                break
    return SolveResult(x=x, history=history, converged=converged, method=method, lam=lam, diverged=diverged,
                       convex=convex)


def _lbfgs(x0, y, operator, prior, lam, step, max_iter, tol, radius) -> SolveResult:
    """``solve(..., method="lbfgs")``: one ``torch.optim.LBFGS`` iteration per history entry; the residual is
    step ||grad F(x)|| / ||x||, the fixed-point residual of the gradient step at x (as for agd)."""
    p = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([p], lr=1.0, max_iter=1, max_eval=50, history_size=10, tolerance_grad=0.0,
                            tolerance_change=0.0, line_search_fn="strong_wolfe")
    last = {}

    def closure():  # F(p) and grad F(p), cached: LBFGS.step re-evaluates the point it starts from
        if "x" not in last or not torch.equal(last["x"], p):
            with torch.no_grad():
                F_p, g = _objective_and_grad(p.detach(), y, operator, prior, lam)
                last.update(x=p.detach().clone(), F=F_p.sum(), g=g)
        p.grad = last["g"].clone()
        return last["F"]

    history, converged, diverged = [], False, False
    for k in range(max_iter):
        opt.step(closure)
        F_x = float(closure())
        size = _norm(p.detach())
        if not size <= radius:
            diverged = True
            warnings.warn(f"lbfgs diverged at iteration {k + 1}: ||x|| = {size:.3g} > {radius:.3g}",
                          RuntimeWarning, stacklevel=3)
            break
        residual = step * _norm(last["g"]) / max(size, 1e-12)
        history.append({"iter": k + 1, "objective": F_x, "step": step, "residual": residual})
        if residual <= tol:
            converged = True
            break
    return SolveResult(x=p.detach(), history=history, converged=converged, method="lbfgs", lam=lam,
                       diverged=diverged)


@dataclass
class LamSelection:
    """What :func:`select_lam` returns: the chosen ``lam``, the candidates ``lams`` and their ``scores``
    (PSNR in dB against the truth, or the discrepancy ||A x - y||^2 / (m sigma^2)), and the ``criterion``."""

    lam: float
    lams: list[float]
    scores: list[float]
    criterion: str


def select_lam(y: torch.Tensor, operator: LinearOperator, prior: Prior, *, x_true: torch.Tensor | None = None,
               sigma: float | None = None, lams: Sequence[float] | None = None, method: str = "agd",
               **solve_options) -> LamSelection:
    """Choose the regularisation weight lam from ``lams`` (default: 13 values log-spaced over 1e-3..1e1).

    * with ``x_true`` (a calibration image): the lam whose solution has the highest PSNR;
    * with ``sigma`` (the noise level): Morozov's discrepancy principle, the largest lam whose solution
      has ||A x - y||^2 <= m sigma^2 (m = number of measurements; the smallest candidate if none does).

    Example:
        >>> from gradflow.inverse import Denoising, Tikhonov
        >>> x = torch.rand(1, 1, 16, 16); y = x + 0.1 * torch.randn(1, 1, 16, 16)
        >>> sel = select_lam(y, Denoising(), Tikhonov(), x_true=x, lams=[0.01, 0.1, 1.0], max_iter=50)
        >>> sel.lam in (0.01, 0.1, 1.0)
        True
    """
    _check_problem(y, operator, prior, 0.0)
    if (x_true is None) == (sigma is None):
        raise ValueError("give exactly one of x_true (PSNR oracle) and sigma (discrepancy principle)")
    estimate = _back_project(y, operator)
    if sigma is not None:
        sigma = check_number(sigma, "sigma", minimum=0.0, strict=True)
    else:
        check_image(x_true, "x_true")
        if x_true.shape != estimate.shape:
            raise ValueError(f"x_true must have the shape of the estimate A^T y {tuple(estimate.shape)}, got "
                             f"{tuple(x_true.shape)}")
    lams = [10 ** (e / 3) for e in range(-9, 4)] if lams is None else [check_lam(v, "lams entry") for v in lams]
    if not lams:
        raise ValueError("lams is empty")
    scores = []
    for lam in lams:
        x = solve(y, operator, prior, lam, method, **solve_options).x
        if x_true is not None:
            scores.append(float(psnr(x, x_true).mean()))
        else:
            r = (operator(x) - y).abs().square().sum()
            scores.append(float(r / (y.numel() * sigma**2)))
    if x_true is not None:
        best = max(range(len(lams)), key=scores.__getitem__)
        return LamSelection(lams[best], lams, scores, "psnr")
    feasible = [i for i, s in enumerate(scores) if s <= 1.0]
    best = max(feasible, key=lams.__getitem__) if feasible else min(range(len(lams)), key=lams.__getitem__)
    return LamSelection(lams[best], lams, scores, "discrepancy")
