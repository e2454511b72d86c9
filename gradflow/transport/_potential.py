"""BrenierNet: a learned PSD quadratic plus a monotone gradient network (private)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_choice, check_number, check_positive_int
from ..potentials import MGradNetC, MGradNetM, MonotonePotential, create_potential, positive

__all__ = ["DEFAULT_MODULES", "BrenierNet", "default_net"]

_NETS = {"mgradnet_c": MGradNetC, "mgradnet_m": MGradNetM}


#: modules of the default mGradNet-M (:func:`default_net`)
DEFAULT_MODULES = 8


def default_net(dim: int, kind: str = "mgradnet_m", n_modules: int = DEFAULT_MODULES) -> MonotonePotential:
    """The residual network used by :class:`BrenierNet` by default, sized from the dimension: an mGradNet-M
    with ``n_modules`` modules (default 8) of width max(32, 4 d), or an mGradNet-C of depth 2 and width
    max(64, 8 d) (``n_modules`` unused)."""
    check_positive_int(dim, "dim")
    check_choice(kind, "kind", _NETS)
    if kind == "mgradnet_m":
        return create_potential(kind, dim, width=max(32, 4 * dim), n_modules=n_modules)
    return create_potential(kind, dim, width=max(64, 8 * dim), depth=2)


class BrenierNet(MonotonePotential):
    r"""A convex potential made of a learned positive semidefinite quadratic and a monotone gradient net:

        psi(x) = 1/2 (x - m)^T L L^T (x - m) + c^T x + g * phi(x) + mu/2 ||x||^2,
        grad psi(x) = L L^T (x - m) + c + g * grad phi(x) + mu x,

    with L (d, d) free, g = softplus(gate) >= 0 and phi any :class:`MonotonePotential` (by default an
    mGradNet from :func:`default_net`). Its Jacobian L L^T + g J_phi + mu I is symmetric PSD, so grad psi
    is an optimal transport map candidate (Brenier), and inverse/conjugate/logdet come from
    :class:`MonotonePotential`. ``init_affine(A, m, c)`` starts it at an affine map such as the Bures
    map between sample moments (with the residual gated down to ``gate``).

    Args:
        dim: d.
        net: the residual monotone network phi (default: :func:`default_net`).
        gate: initial value of g (> 0).
        strong_convexity: mu >= 0.

    Example:
        >>> psi = BrenierNet(2, strong_convexity=0.01)
        >>> psi.init_affine(2 * torch.eye(2), torch.zeros(2), torch.ones(2))
        >>> y = psi(torch.randn(4, 2)); torch.allclose(psi(psi.inverse(y)), y, atol=1e-4)
        True
    """

    def __init__(self, dim: int, net: MonotonePotential | None = None, *, gate: float = 0.1,
                 strong_convexity: float = 0.0):
        super().__init__(dim, check_number(strong_convexity, "strong_convexity", minimum=0))
        gate = check_number(gate, "gate", minimum=0, strict=True)
        net = default_net(dim) if net is None else net
        if not isinstance(net, MonotonePotential) or net.dim != dim:
            raise ValueError(f"net must be a MonotonePotential on R^{dim}, got {net!r}")
        self.net = net
        self.factor = nn.Parameter(torch.eye(dim))
        self.center = nn.Parameter(torch.zeros(dim))
        self.offset = nn.Parameter(torch.zeros(dim))
        self.gate = nn.Parameter(torch.tensor(gate + math.log(-math.expm1(-gate))))  # softplus^{-1}(gate)

    @torch.no_grad()
    def init_affine(self, matrix: torch.Tensor, mean_in: torch.Tensor, mean_out: torch.Tensor) -> None:
        """Set the quadratic part to the affine map x -> A (x - m) + c (A symmetric PSD, (d, d)), keeping
        the residual network as is; L is the symmetric square root of A."""
        if matrix.shape != (self.dim, self.dim) or mean_in.shape != (self.dim,) or mean_out.shape != (self.dim,):
            raise ValueError(
                f"expected A ({self.dim}, {self.dim}), m ({self.dim},), c ({self.dim},); got "
                f"{tuple(matrix.shape)}, {tuple(mean_in.shape)}, {tuple(mean_out.shape)}"
            )
        w, V = torch.linalg.eigh(0.5 * (matrix + matrix.mT).to(torch.float64))
        if float(w.min()) < -1e-8 * (1.0 + float(w.abs().max())):
            raise ValueError(f"A must be positive semidefinite, its smallest eigenvalue is {float(w.min()):.3g}")
        root = (V * w.clamp_min(0.0).sqrt()) @ V.mT
        self.factor.copy_(root)
        self.center.copy_(mean_in)
        # the residual's value at the centre is absorbed into the offset, so psi starts at the affine map there
        self.offset.copy_(mean_out)
        self.offset.sub_(self._residual_gradient(self.center.unsqueeze(0)).squeeze(0))

    def _matrix(self) -> torch.Tensor:
        return self.factor @ self.factor.mT

    def _gate(self) -> torch.Tensor:
        return positive(self.gate)

    def _residual_gradient(self, x):
        return self._gate() * self.net(x)

    def _gradient(self, x):
        return (x - self.center) @ self._matrix() + self.offset + self._residual_gradient(x)

    def _energy(self, x):
        z = x - self.center
        return 0.5 * ((z @ self._matrix()) * z).sum(-1) + x @ self.offset + self._gate() * self.net.energy(x)

    def _jacobian(self, x):
        return self._matrix() + self._gate().unsqueeze(-1).unsqueeze(-1) * self.net.jacobian(x)

    def _lipschitz_bound(self):
        return torch.linalg.matrix_norm(self.factor, ord=2).square() + self._gate() * self.net.lipschitz_bound()
