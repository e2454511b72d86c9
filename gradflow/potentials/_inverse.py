"""Inverting a monotone gradient field: solve grad psi(x) = y by damped Newton (private)."""

from __future__ import annotations

import torch

from .._validation import check_number, check_positive_int

__all__ = ["ConvergenceError", "solve_gradient_equation"]

_DEFAULT_TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


class ConvergenceError(RuntimeError):
    """An iterative solve stopped before reaching its tolerance. ``x`` holds the last iterate and
    ``residual`` the worst scaled residual."""

    def __init__(self, message: str, x: torch.Tensor, residual: float):
        super().__init__(message)
        self.x = x
        self.residual = residual


def _scaled_residual(potential, x, y):
    r = potential(x) - y
    return r, r.abs().amax(-1) / (1.0 + y.abs().amax(-1))


@torch.no_grad()
def _newton(potential, y, x0, tol, max_iter):
    """Damped Newton on r(x) = grad psi(x) - y with Armijo backtracking on phi = ||r||^2 / 2, batched.

    The step solves (J + delta I) p = -r with J the (symmetric PSD) Jacobian and a tiny delta =
    sqrt(eps) (1 + max|J|), so singular Jacobians (psi convex but not strongly) give finite steps. Its
    slope phi'(0) = r^T J p is negative while r is not in J's null space, and J is positive definite for
    strongly convex psi, so the iteration then converges globally and quadratically near the solution.
    """
    x = torch.zeros_like(y) if x0 is None else x0.detach().clone()
    r, res = _scaled_residual(potential, x, y)
    eye = torch.eye(y.shape[-1], dtype=y.dtype, device=y.device)
    delta = torch.finfo(y.dtype).eps ** 0.5
    for _ in range(max_iter):
        active = res > tol
        if not bool(active.any()):
            break
        J = potential.jacobian(x)
        damping = delta * (1.0 + J.abs().amax(dim=(-2, -1), keepdim=True))
        step = -torch.linalg.solve(J + damping * eye, r.unsqueeze(-1)).squeeze(-1)
        phi = 0.5 * r.square().sum(-1)
        slope = (r * (J @ step.unsqueeze(-1)).squeeze(-1)).sum(-1)
        t = torch.ones_like(phi)
        for _ in range(40):
            x_try = x + t.unsqueeze(-1) * step
            r_try = potential(x_try) - y
            accept = (0.5 * r_try.square().sum(-1) <= phi + 1e-4 * t * slope) | ~active
            if bool(accept.all()):
                break
            t = torch.where(accept, t, 0.5 * t)
        x = torch.where(active.unsqueeze(-1), x_try, x)
        r, res = _scaled_residual(potential, x, y)
    return x, res


def solve_gradient_equation(potential, y: torch.Tensor, tol: float | None = None, max_iter: int = 50,
                            x0: torch.Tensor | None = None):
    """Solve grad psi(x) = y for a monotone potential; see :meth:`MonotonePotential.inverse`."""
    tol = _DEFAULT_TOL.get(y.dtype, 1e-3) if tol is None else check_number(tol, "tol", minimum=0.0, strict=True)
    check_positive_int(max_iter, "max_iter")
    x, res = _newton(potential, y.detach(), x0, tol, max_iter)
    worst = float(res.max()) if res.numel() else 0.0
    if worst > tol:
        raise ConvergenceError(
            f"inverse did not converge in {max_iter} Newton iterations: worst scaled residual {worst:.3g} "
            f"> tol {tol:.3g} (is the potential strongly convex? try strong_convexity > 0 or more max_iter)",
            x,
            worst,
        )
    needs_grad = torch.is_grad_enabled() and (
        y.requires_grad or any(p.requires_grad for p in potential.parameters())
    )
    if not needs_grad:
        return x
    # One Newton step taken differentiably at the solution: its value is x (the residual is ~0) and its
    # derivatives are those of the implicit function, dx/dy = J^{-1} and dx/dtheta = -J^{-1} dF/dtheta.
    J = potential.jacobian(x).detach()
    return x - torch.linalg.solve(J, (potential(x) - y).unsqueeze(-1)).squeeze(-1)
