"""The Potential contract shared by every model of a scalar potential or of its gradient (private)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_field_input, check_number, check_positive_int
from ._inverse import solve_gradient_equation

__all__ = ["MonotonePotential", "Potential", "autograd_gradient", "autograd_jacobian"]


def _check_autograd_arguments(fn, fn_name: str, x) -> None:
    """Type checks only (free): these run inside the autograd baselines' forward, at every step."""
    if not callable(fn):
        raise ValueError(f"{fn_name} must be a callable (..., d) -> ..., got {type(fn).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating-point torch.Tensor of shape (..., d), got {got}")


def autograd_gradient(energy, x: torch.Tensor) -> torch.Tensor:
    """grad_x energy(x) for ``energy``: (..., d) -> (...), by reverse-mode autograd.

    The graph is kept (``create_graph=True``) whenever gradients are enabled, so the result can be
    differentiated again (training on gradients needs this double backward); under ``torch.no_grad()``
    the result is detached. ``x`` (a floating-point tensor) is not modified.

    Example:
        >>> autograd_gradient(lambda x: x.square().sum(-1), torch.tensor([[1.0, 2.0]])).tolist()
        [[2.0, 4.0]]
    """
    _check_autograd_arguments(energy, "energy", x)
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x_ = x if x.requires_grad else x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x_).sum(), x_, create_graph=keep_graph)
    return grad


def autograd_jacobian(field, x: torch.Tensor) -> torch.Tensor:
    """J[..., i, j] = d field(x)_i / d x_j for ``field``: (..., d) -> (..., d): d reverse-mode passes.

    Example:
        >>> autograd_jacobian(lambda x: 2 * x, torch.zeros(1, 2))
        tensor([[[2., 0.],
                 [0., 2.]]])
    """
    _check_autograd_arguments(field, "field", x)
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x_ = x if x.requires_grad else x.detach().requires_grad_(True)
        y = field(x_)
        rows = [
            torch.autograd.grad(y[..., i].sum(), x_, retain_graph=True, create_graph=keep_graph)[0]
            for i in range(y.shape[-1])
        ]
    return torch.stack(rows, dim=-2)


class Potential(nn.Module):
    """A scalar potential F: R^d -> R represented through its gradient field.

    Contract (``...`` is any leading batch shape; float32 or float64; any device):

    * ``forward(x)``: (..., d) -> (..., d), the gradient field grad F(x);
    * ``energy(x)``: (..., d) -> (...), F(x) up to an additive constant, consistent with ``forward``;
    * ``jacobian(x)``: (..., d) -> (..., d, d), the Hessian of F (symmetric);
    * ``dim``, ``is_monotone`` (F convex), ``is_conservative`` (the field is a gradient).

    Inputs are validated (shape, floating dtype matching the parameters, device, finiteness) and never
    modified. Subclasses implement ``_gradient``, ``_energy`` and optionally ``_jacobian`` (the default
    differentiates ``_gradient`` with autograd).
    """

    is_monotone: bool = False
    is_conservative: bool = True

    def __init__(self, dim: int):
        super().__init__()
        self.dim = check_positive_int(dim, "dim")

    def _check(self, x: torch.Tensor, name: str = "x") -> None:
        reference = next(iter(self.parameters()), None)
        check_field_input(x, self.dim, reference, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self._gradient(x)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self._energy(x)

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self._jacobian(x)

    def _gradient(self, x):
        raise NotImplementedError

    def _energy(self, x):
        raise NotImplementedError

    def _jacobian(self, x):
        return autograd_jacobian(self._gradient, x)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class MonotonePotential(Potential):
    """A convex potential psi, optionally made ``strong_convexity``-strongly convex: psi + mu/2 ||x||^2.

    Adds to the Potential contract: ``lipschitz_bound()`` (a certified upper bound on ||J(x)||_2 over all x),
    ``logdet_jacobian(x)``, ``inverse(y)`` (solves grad psi(x) = y) and ``conjugate(y)`` (psi*(y)).
    Subclasses implement the mu-free parts ``_gradient``, ``_energy``, ``_jacobian``, ``_lipschitz_bound``;
    this class adds the mu terms.
    """

    is_monotone = True

    def __init__(self, dim: int, strong_convexity: float = 0.0):
        super().__init__(dim)
        self.strong_convexity = check_number(strong_convexity, "strong_convexity", minimum=0.0)

    def forward(self, x):
        self._check(x)
        g = self._gradient(x)
        return g + self.strong_convexity * x if self.strong_convexity else g

    def energy(self, x):
        """psi(x) + mu/2 ||x||^2, (..., d) -> (...). The quadratic term is summed as ||sqrt(mu/2) x||^2 (scaled
        before squaring), so it overflows only where its value exceeds the dtype's range (float32: about
        3.4e38, i.e. ||x|| > 2.6e19 / sqrt(mu)); beyond that the energy is +inf: use float64 there."""
        self._check(x)
        e = self._energy(x)
        if not self.strong_convexity:
            return e
        return e + (math.sqrt(0.5 * self.strong_convexity) * x).square().sum(-1)

    def jacobian(self, x):
        self._check(x)
        J = self._jacobian(x)
        if self.strong_convexity:
            J = J + self.strong_convexity * torch.eye(self.dim, dtype=J.dtype, device=J.device)
        return J

    def lipschitz_bound(self) -> torch.Tensor:
        """A certified bound L >= sup_x ||J(x)||_2 (0-dim tensor), so grad psi is L-Lipschitz."""
        return self._lipschitz_bound() + self.strong_convexity

    def _lipschitz_bound(self):
        raise NotImplementedError

    def logdet_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """log det J(x), (..., d) -> (...); -inf where J(x) is singular. Differentiable."""
        J = self.jacobian(x)
        L, info = torch.linalg.cholesky_ex(J)
        if bool((info == 0).all()):
            return 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        sign, logabs = torch.linalg.slogdet(J)
        return torch.where(sign > 0, logabs, torch.full_like(logabs, -torch.inf))

    def inverse(self, y: torch.Tensor, tol: float | None = None, max_iter: int = 50,
                x0: torch.Tensor | None = None) -> torch.Tensor:
        """x with grad psi(x) = y, (..., d) -> (..., d), by damped Newton on the convex problem
        min_x psi(x) - <x, y>, started from ``x0`` (same shape as y; default zeros), e.g. a previous
        solution when y changes little between calls.

        Converged when ||grad psi(x) - y||_inf <= tol (1 + ||y||_inf) for every point (tol defaults to
        1e-5 in float32, 1e-10 in float64); otherwise raises :class:`ConvergenceError` with the worst
        residual. Unique for strongly convex psi (``strong_convexity > 0``). When gradients are enabled
        the result is differentiable in y and in the parameters (implicit function theorem).
        """
        self._check(y, "y")
        if x0 is not None:
            self._check(x0, "x0")
            if x0.shape != y.shape:
                raise ValueError(f"x0 must have the shape of y {tuple(y.shape)}, got {tuple(x0.shape)}")
        return solve_gradient_equation(self, y, tol=tol, max_iter=max_iter, x0=x0)

    def conjugate(self, y: torch.Tensor, tol: float | None = None, max_iter: int = 50) -> torch.Tensor:
        """The convex conjugate psi*(y) = <x*, y> - psi(x*) with grad psi(x*) = y, (..., d) -> (...).

        Its gradients are those of the envelope theorem: d psi*/dy = x*, d psi*/dtheta = -d psi(x*)/dtheta.
        """
        with torch.no_grad():
            x_star = self.inverse(y, tol=tol, max_iter=max_iter)
        return (x_star * y).sum(-1) - self.energy(x_star)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, strong_convexity={self.strong_convexity}"
