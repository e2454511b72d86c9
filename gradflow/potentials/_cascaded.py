"""Cascaded gradient networks GradNet-C and mGradNet-C (Chaudhari, Pranav, Moura 2025) (private)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_positive_int
from ._activations import make_elementwise_activation, positive
from ._base import MonotonePotential, Potential
from ._quadrature import integrate_from_zero

__all__ = ["GradNetC", "MGradNetC", "identity_scale_init"]


class _Cascaded:
    r"""Shared implementation of the cascaded nets.

    With u = W x (W: m x d shared), per-layer biases b_l, scales alpha_l, beta_l and activations s_l,

        z_0 = p(beta_0) (u + b_0)
        z_l = p(beta_l) (u + b_l) + p(alpha_{l-1}) s_{l-1}(z_{l-1}),    l = 1 .. L-1
        N(x) = W^T g(u) + c,    g(u) = p(alpha_{L-1}) s_{L-1}(z_{L-1})

    where p = softplus for the monotone net and the identity otherwise. Every hidden unit depends on x
    only through u_i = w_i^T x, so N = grad F with F(x) = sum_i G_i(w_i^T x) + c^T x, G_i' = g_i (a sum
    of ridge functions), and J_N(x) = W^T diag(g'(u)) W. Every activation's parameters are used and
    depth 1 is allowed.
    """

    def _build(self, width: int, depth: int, activation: str, monotone: bool, quadrature_panels: int):
        m = check_positive_int(width, "width")
        L = check_positive_int(depth, "depth")
        self.width, self.depth, self.activation = m, L, activation
        self.quadrature_panels = check_positive_int(quadrature_panels, "quadrature_panels")
        self._monotone = monotone
        self.activations = nn.ModuleList(
            make_elementwise_activation(activation, (m,), monotone) for _ in range(L)
        )
        self.weight = nn.Parameter(torch.randn(m, self.dim) / math.sqrt(self.dim))
        self.hidden_bias = nn.Parameter(torch.randn(L, m))
        scale0 = math.log(math.expm1(1.0)) if monotone else 1.0  # p(scale0) = 1
        self.alpha = nn.Parameter(torch.full((L, m), scale0))
        self.beta = nn.Parameter(torch.full((L, m), scale0))
        self.bias = nn.Parameter(torch.zeros(self.dim))

    def _scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._monotone:
            return positive(self.alpha), positive(self.beta)
        return self.alpha, self.beta

    def ridge_profile(self, u: torch.Tensor, slope: bool = False):
        """g(u) for u (..., m) and, with ``slope=True``, also g'(u) by forward-mode chain rule."""
        alpha, beta = self._scales()
        b = self.hidden_bias
        z = beta[0] * (u + b[0])
        dz = beta[0].expand_as(z) if slope else None
        for l in range(1, self.depth):
            act = self.activations[l - 1]
            if slope:
                dz = beta[l] + alpha[l - 1] * act.derivative(z) * dz
            z = beta[l] * (u + b[l]) + alpha[l - 1] * act(z)
        last = self.activations[-1]
        g = alpha[-1] * last(z)
        if not slope:
            return g
        return g, alpha[-1] * last.derivative(z) * dz

    def _gradient(self, x):
        return self.ridge_profile(x @ self.weight.T) @ self.weight + self.bias

    def _jacobian(self, x):
        _, dg = self.ridge_profile(x @ self.weight.T, slope=True)
        return (self.weight.T * dg.unsqueeze(-2)) @ self.weight

    def _energy(self, x):
        u = x @ self.weight.T
        alpha, beta = self._scales()
        if self.depth == 1 and bool((beta[0].abs() > 1e-6).all()):
            # G(u) = alpha / beta * S(beta (u + b)): exact for a single layer (beta = 0 only in the
            # unconstrained net, where the integral is taken by quadrature instead).
            ridges = alpha[0] / beta[0] * self.activations[0].antiderivative(beta[0] * (u + self.hidden_bias[0]))
        else:
            ridges = integrate_from_zero(
                lambda t: self.ridge_profile(t.movedim(-1, 0)).movedim(0, -1), u, panels=self.quadrature_panels
            )
        return ridges.sum(-1) + x @ self.bias

    def _ridge_slope_bound(self) -> torch.Tensor:
        """Per unit, a bound on sup_u |g_i'(u)| from |dz_l/du| <= |beta_l| + |alpha_{l-1}| sup|s'| |dz_{l-1}/du|."""
        alpha, beta = self._scales()
        bound = beta[0].abs()
        for l in range(1, self.depth):
            bound = beta[l].abs() + alpha[l - 1].abs() * self.activations[l - 1].sup_abs_derivative() * bound
        return alpha[-1].abs() * self.activations[-1].sup_abs_derivative() * bound

    def _lipschitz_bound(self):
        # -W^T D W <= J <= W^T D W with D = diag(sup |g'|), so ||J|| <= ||D^(1/2) W||_2^2.
        scaled = self._ridge_slope_bound().sqrt().unsqueeze(-1) * self.weight
        return torch.linalg.matrix_norm(scaled, ord=2).square()

    def extra_repr(self):
        return f"{super().extra_repr()}, width={self.width}, depth={self.depth}, activation={self.activation!r}"


class GradNetC(_Cascaded, Potential):
    """Cascaded gradient network (GradNet-C): the gradient of a sum of ridge functions.

    N(x) = W^T g(Wx) + c, computed in one forward pass; J = W^T diag(g'(Wx)) W is symmetric.

    Args:
        dim: input dimension d.
        width: hidden units m (W is m x d).
        depth: cascade layers L >= 1.
        activation: one of "tanh", "sigmoid", "sin", "weighted_tanh" (learnable).
        quadrature_panels: initial number of Gauss-Legendre panels of ``energy`` when depth > 1 (doubled
            until the integral converges).

    Example:
        >>> net = GradNetC(2, width=7, depth=4)
        >>> net(torch.rand(5, 2)).shape, net.energy(torch.rand(5, 2)).shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, dim: int, width: int = 64, depth: int = 4, activation: str = "tanh", *,
                 quadrature_panels: int = 8):
        Potential.__init__(self, dim)
        self._build(width, depth, activation, monotone=False, quadrature_panels=quadrature_panels)

    def lipschitz_bound(self) -> torch.Tensor:
        """A certified bound L >= sup_x ||J(x)||_2 (0-dim tensor)."""
        return self._lipschitz_bound()


class MGradNetC(_Cascaded, MonotonePotential):
    """Monotone cascaded gradient network (mGradNet-C): the gradient of a convex sum of ridge functions.

    As :class:`GradNetC` with alpha, beta >= 0 (softplus reparameterisation) and nondecreasing
    activations, so J = W^T diag(g') W + mu I is symmetric PSD; ``strong_convexity`` mu adds mu x.

    Example:
        >>> net = MGradNetC(2, width=7, depth=4, strong_convexity=0.1)
        >>> y = net(torch.rand(5, 2))
        >>> torch.allclose(net(net.inverse(y)), y, atol=1e-4)
        True
    """

    def __init__(self, dim: int, width: int = 64, depth: int = 4, activation: str = "tanh", *,
                 strong_convexity: float = 0.0, quadrature_panels: int = 8):
        MonotonePotential.__init__(self, dim, strong_convexity)
        self._build(width, depth, activation, monotone=True, quadrature_panels=quadrature_panels)


def identity_scale_init(net: Potential) -> Potential:
    r"""Set the last cascade scale of a cascaded gradient network (GradNetC, MGradNetC) in place so that
    its initial Jacobian is of unit scale, and return the network.

    With the constructors' default last-layer scale alpha_{L-1} = 1 the field N(x) = W^T g(W x) sums
    ``width`` coherent ridge terms: since E[W^T W] = (m / d) I for W (m x d) with N(0, 1/d) entries, the
    initial Jacobian W^T diag(g') W grows like m/d (median spectral norm 55 at width 150 on R^2:
    initial fields of size ~50 against targets of size ~2, which plain Adam needs most of its steps
    to undo, measured in benchmarks/results/hamiltonian.md). This sets alpha_{L-1} = d / m (through the
    softplus for the monotone net), so that J is of unit scale at initialisation.

    Example:
        >>> net = identity_scale_init(GradNetC(2, width=100, depth=2))
        >>> round(net.alpha.detach()[-1, 0].item(), 6)
        0.02
    """
    if not isinstance(net, _Cascaded):
        raise ValueError(f"net must be a cascaded gradient network (GradNetC or MGradNetC), got {type(net).__name__}")
    scale = net.dim / net.width
    with torch.no_grad():
        net.alpha[-1].fill_(math.log(math.expm1(scale)) if net.is_monotone else scale)  # inverse softplus
    return net
