"""Convex conjugates for the semi-dual: matrix-free Newton-CG and an amortised conjugate network (private).

The semi-dual needs psi*(y) = <x*, y> - psi(x*) with grad psi(x*) = y for every target sample y of every
step. :func:`newton_cg` solves that equation without forming the (d, d) Jacobians that dense Newton
needs (their cost grows like d^3 per point: at d = 64 one batch of Jacobians costs ~50 forward passes),
and :class:`AmortizedConjugate` predicts x*(y) with a second network (Amos 2023, "On amortizing convex
conjugates"; Makkuva et al. 2020) so that a few Newton-CG steps from its prediction suffice.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from .._validation import check_choice, check_number, check_positive_int
from ..potentials import ConvergenceError, MonotonePotential

__all__ = ["AMORTIZATION_LOSSES", "DENSE_NEWTON_MAX_DIM", "Amortized", "AmortizedConjugate", "Conjugate",
           "DenseNewton", "NewtonCG", "newton_cg"]

_PRECONDITIONER_POINTS = 32
DENSE_NEWTON_MAX_DIM = 16  # Amortized(fine_tune="auto") and OTMap.inverse: dense Newton up to this d, Newton-CG above


def _scaled_residual(r: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return r.abs().amax(-1) / (1.0 + y.abs().amax(-1))


def _preconditioner(psi: MonotonePotential, x: torch.Tensor, points: int = _PRECONDITIONER_POINTS):
    """Cholesky factor of the mean Jacobian of grad psi at up to ``points`` of the points x (N, d): one dense
    (d, d) matrix shared by all points, symmetric positive definite for a strongly convex psi."""
    idx = torch.linspace(0, x.shape[0] - 1, min(points, x.shape[0]), device=x.device).long()
    M = psi.jacobian(x[idx]).mean(0)
    M = 0.5 * (M + M.mT)
    jitter = torch.finfo(x.dtype).eps ** 0.5 * (1.0 + M.diagonal().abs().max())
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    factor, info = torch.linalg.cholesky_ex(M + jitter * eye)
    return factor if int(info) == 0 else None


def _pcg(hvp, b: torch.Tensor, factor, iters: int, rtol: float = 0.0) -> torch.Tensor:
    """Batched preconditioned conjugate gradients for J_n p_n = b_n (each row its own SPD system).

    A row stops (its iterate frozen) once ||b_n - J_n p_n|| <= rtol ||b_n|| (the forcing term of an inexact
    Newton method); the iterations end when every row has stopped or after ``iters``."""
    def precondition(r):
        return r if factor is None else torch.cholesky_solve(r.mT, factor).mT

    p_sol = torch.zeros_like(b)
    r = b.clone()
    z = precondition(r)
    p = z
    rz = (r * z).sum(-1, keepdim=True)
    tiny = torch.finfo(b.dtype).tiny
    target = rtol * b.norm(dim=-1, keepdim=True)
    for _ in range(iters):
        live = r.norm(dim=-1, keepdim=True) > target
        if rtol > 0 and not bool(live.any()):
            break
        Jp = hvp(p)
        curvature = (p * Jp).sum(-1, keepdim=True)
        alpha = torch.where(live, rz / curvature.clamp_min(tiny), torch.zeros_like(rz))
        p_sol = p_sol + alpha * p
        r = r - alpha * Jp
        z = precondition(r)
        rz_new = (r * z).sum(-1, keepdim=True)
        p = z + rz_new / rz.clamp_min(tiny) * p
        rz = rz_new
    return p_sol


def newton_cg(psi: MonotonePotential, y: torch.Tensor, x0: torch.Tensor | None = None, *, tol: float = 1e-5,
              max_iter: int = 20, cg_iters: int = 8, cg_rtol: float = 0.0,
              preconditioner_points: int = _PRECONDITIONER_POINTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve grad psi(x) = y (N, d) by matrix-free damped Newton; returns (x, scaled residual (N,)), no grad.

    Each Newton step solves J(x) p = y - grad psi(x) approximately by at most ``cg_iters`` preconditioned
    conjugate-gradient iterations, a point's CG stopping once ||J p - (y - grad psi(x))|| <= ``cg_rtol``
    ||y - grad psi(x)|| (an inexact Newton forcing term; 0: always ``cg_iters``); J v is a vector-Jacobian
    product (J is symmetric), one backward pass through grad psi, so no (d, d) Jacobian per point is
    formed. The preconditioner is the mean Jacobian at ``preconditioner_points`` (default 32) of the
    starting points (one Cholesky per call). The step is damped by Armijo backtracking on
    ||grad psi(x) - y||^2 / 2; iterations stop when ||grad psi(x) - y||_inf <= tol (1 + ||y||_inf) for
    every point. Points below the tolerance are left as they are and drop out of the later steps, whose
    passes run on the points still unsolved only. Cost per Newton step: about ``cg_iters + 2``
    forward-and-backward passes over those points.
    """
    y = y.detach()
    x = torch.zeros_like(y) if x0 is None else x0.detach().clone()
    with torch.no_grad():
        factor = _preconditioner(psi, x, preconditioner_points)
    res = torch.full(y.shape[:1], float("inf"), dtype=y.dtype, device=y.device)
    rows = torch.arange(y.shape[0], device=y.device)  # the points not yet solved
    for iteration in range(max_iter + 1):
        xa, ya = x[rows], y[rows]
        with torch.enable_grad():
            xr = xa.requires_grad_(True)
            g = psi(xr)
        r = (g - ya).detach()
        res[rows] = _scaled_residual(r, ya)
        active = res[rows] > tol
        if not bool(active.any()) or iteration == max_iter:
            break
        if not bool(active.all()):  # drop the solved points: the passes below run on the others only
            rows, xa, ya = rows[active], xa[active].detach(), ya[active]
            with torch.enable_grad():
                xr = xa.requires_grad_(True)
                g = psi(xr)
            r = (g - ya).detach()

        def hvp(v, g=g, xr=xr):
            return torch.autograd.grad(g, xr, v, retain_graph=True)[0]

        step = _pcg(hvp, -r, factor, cg_iters, cg_rtol)
        with torch.no_grad():
            phi = 0.5 * r.square().sum(-1)
            slope = (r * hvp(step)).sum(-1)
            t = torch.ones_like(phi)
            xa = xa.detach()
            for _ in range(20):
                x_try = xa + t.unsqueeze(-1) * step
                r_try = psi(x_try) - ya
                accept = 0.5 * r_try.square().sum(-1) <= phi + 1e-4 * t * slope.clamp_max(0)
                if bool(accept.all()):
                    break
                t = torch.where(accept, t, 0.5 * t)
            x[rows] = torch.where(accept.unsqueeze(-1), x_try, xa)
    return x.detach(), res


def _check_rtol(value) -> float:
    """cg_rtol: a number in [0, 1) (1 would accept the zero step)."""
    number = check_number(value, "cg_rtol", minimum=0)
    if number >= 1:
        raise ValueError(f"cg_rtol must be a finite number >= 0 and < 1, got {value!r}")
    return number


#: amortisation losses of :class:`AmortizedConjugate` (see its docstring)
AMORTIZATION_LOSSES = ("regression", "cycle", "objective")


class AmortizedConjugate(nn.Module):
    r"""A network x_phi(y) predicting the conjugate's argmax x*(y) = (grad psi)^{-1}(y) (Amos 2023).

    ``net`` is any map R^d -> R^d (by default a :class:`~gradflow.transport.BrenierNet`: x*(y) =
    grad psi*(y) is itself the gradient of a convex function). It is trained alongside psi with one of
    the losses (``loss``):

    * ``"regression"``: ||x_phi(y) - x_hat||^2 with x_hat the fine-tuned (Newton-CG) solution;
    * ``"cycle"``: ||grad psi(x_phi(y)) - y||^2 (no solve needed; psi's parameters are held fixed);
    * ``"objective"``: -(<x_phi(y), y> - psi(x_phi(y))) (Makkuva et al. 2020), through the surrogate
      -<x_phi(y), y - grad psi(x_phi(y))> whose gradient in phi is the objective's and which leaves
      psi's gradients untouched.
    """

    def __init__(self, net: nn.Module, loss: str = "regression"):
        super().__init__()
        self.net = net
        self.loss_name = check_choice(loss, "amortization", AMORTIZATION_LOSSES)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)

    def loss(self, psi: MonotonePotential, y: torch.Tensor, x_pred: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """The amortisation loss (a scalar) for predictions ``x_pred`` = self(y) and the solve's ``x_hat``."""
        if self.loss_name == "regression":
            return (x_pred - x_hat.detach()).square().sum(-1).mean()
        frozen = {k: v.detach() for k, v in psi.named_parameters()}
        mapped = functional_call(psi, frozen, (x_pred,))
        if self.loss_name == "cycle":
            return (mapped - y).square().sum(-1).mean()
        return -(x_pred * (y - mapped).detach()).sum(-1).mean()


class Conjugate:
    r"""How the semi-dual finds x*(y) = argmax_x <x, y> - psi(x), i.e. grad psi(x*) = y, for each target sample.

    Any x gives the lower bound <x, y> - psi(x) <= psi*(y), exact at grad psi(x) = y, so an iterate stopped
    after ``max_iter`` iterations is used as is: the envelope-theorem gradient only needs x* approximately.
    ``solve(psi, y, x0, max_iter, tol)`` returns x* (no grad), (N, d); ``tol`` bounds the scaled residual
    ||grad psi(x) - y||_inf / (1 + ||y||_inf) (None: :meth:`strict_tol`); ``amortized`` says whether a network
    predicts the start (:class:`Amortized`).
    """

    amortized = False
    _min_iter = 1

    def __init__(self, max_iter: int, tol: float | None = None):
        self.max_iter = check_positive_int(max_iter, "max_iter", minimum=self._min_iter)
        self.tol = None if tol is None else check_number(tol, "tol", minimum=0, strict=True)

    def solve(self, psi: MonotonePotential, y: torch.Tensor, x0: torch.Tensor | None = None,
              max_iter: int | None = None, tol: float | None = None) -> torch.Tensor:
        """x* (N, d) for y (N, d), from x0; ``max_iter`` and ``tol`` override the solver's own for one call."""
        raise NotImplementedError

    @staticmethod
    def strict_tol(y: torch.Tensor) -> float:
        """The tolerance on the scaled residual for ``y``'s dtype: 1e-6 in float64, 1e-4 otherwise."""
        return 1e-6 if y.dtype == torch.float64 else 1e-4

    def _tol(self, y: torch.Tensor, tol: float | None = None) -> float:
        if tol is not None:
            return tol
        return self.strict_tol(y) if self.tol is None else self.tol

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class DenseNewton(Conjugate):
    """Damped Newton on the dense (d, d) Jacobian of each point (:meth:`MonotonePotential.inverse`), from
    ``x0`` (default 0), at most ``max_iter`` iterations: each forms and solves a (d, d) system per point,
    cheapest for small d."""

    def __init__(self, max_iter: int = 20, tol: float | None = None):
        super().__init__(max_iter, tol)

    def solve(self, psi, y, x0=None, max_iter=None, tol=None):
        with torch.no_grad():
            try:
                return psi.inverse(y, tol=self._tol(y, tol), max_iter=max_iter or self.max_iter, x0=x0)
            except ConvergenceError as err:
                return err.x


class NewtonCG(Conjugate):
    """Matrix-free damped Newton (:func:`newton_cg`): at most ``max_iter`` steps of at most ``cg_iters``
    preconditioned CG iterations on Jacobian-vector products (a point's CG stops once its linear residual
    is below ``cg_rtol`` times the Newton residual; 0: always ``cg_iters``); no (d, d) Jacobian per point."""

    def __init__(self, max_iter: int = 20, cg_iters: int = 8, cg_rtol: float = 0.0, tol: float | None = None):
        super().__init__(max_iter, tol)
        self.cg_iters = check_positive_int(cg_iters, "cg_iters")
        self.cg_rtol = _check_rtol(cg_rtol)

    def solve(self, psi, y, x0=None, max_iter=None, tol=None):
        iters = self.max_iter if max_iter is None else max_iter
        if iters == 0:
            return x0
        return newton_cg(psi, y, x0, tol=self._tol(y, tol), max_iter=iters, cg_iters=self.cg_iters,
                         cg_rtol=self.cg_rtol)[0]


class Amortized(Conjugate):
    r"""Amortised conjugate (Amos 2023): a network x_phi(y) (:class:`AmortizedConjugate`, by default a
    :class:`~gradflow.transport.BrenierNet` started at the inverse Bures map) predicts x*, and at most
    ``max_iter`` Newton steps fine-tune it (they stop early where the residual is below tolerance):
    ``fine_tune="newton"`` on dense Jacobians, ``"newton_cg"`` matrix-free with at most ``cg_iters`` CG
    iterations a step (fewer where the linear residual falls below ``cg_rtol`` times the Newton residual,
    :class:`NewtonCG`; ``cg_rtol=0`` runs all ``cg_iters``), ``"auto"`` dense up to d = 16. The fine-tuning
    stops at the scaled residual ``tol`` (None: :meth:`Conjugate.strict_tol`, 1e-4 in float32); the
    semi-dual's held-out objective always solves to the strict tolerance. x_phi trains alongside psi by
    ``loss`` (``"regression"`` on the fine-tuned x*, ``"cycle"`` or ``"objective"``, see
    :class:`AmortizedConjugate`). ``max_iter=0`` uses the
    network alone (a minimax, which needs a smaller learning rate: the semi-dual then defaults to 1e-3).
    The fitted :class:`~gradflow.transport.OTMap` keeps x_phi as ``inverse_net``."""

    amortized = True
    _min_iter = 0

    def __init__(self, max_iter: int = 6, loss: str = "regression", fine_tune: str = "auto", cg_iters: int = 8,
                 cg_rtol: float = 0.0, tol: float | None = None):
        super().__init__(max_iter, tol)
        self.loss = check_choice(loss, "loss", AMORTIZATION_LOSSES)
        self.fine_tune = check_choice(fine_tune, "fine_tune", {"auto", "newton", "newton_cg"})
        self.cg_iters = check_positive_int(cg_iters, "cg_iters")
        self.cg_rtol = _check_rtol(cg_rtol)
        if self.loss == "regression" and self.max_iter == 0:
            raise ValueError("amortization loss 'regression' regresses on the fine-tuned solution and needs "
                             "max_iter >= 1; use 'cycle' or 'objective' for the network alone")

    def solve(self, psi, y, x0=None, max_iter=None, tol=None):
        iters = self.max_iter if max_iter is None else max_iter
        if iters == 0:
            return x0
        dense = self.fine_tune == "newton" or (self.fine_tune == "auto" and y.shape[-1] <= DENSE_NEWTON_MAX_DIM)
        solver = DenseNewton(iters) if dense else NewtonCG(iters, self.cg_iters, self.cg_rtol)
        return solver.solve(psi, y, x0, tol=self._tol(y, tol))
