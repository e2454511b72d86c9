"""Baselines with the Potential interface: input-convex network, MLP potential, unconstrained MLP field
(private). Their gradients come from autograd, unlike the gradient networks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_choice, check_positive_int
from ._activations import check_sizes, positive
from ._base import MonotonePotential, Potential, autograd_gradient, autograd_jacobian

__all__ = ["ICNN", "MLPField", "MLPPotential"]

_MLP_ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU, "gelu": nn.GELU}


_DEFAULT_WIDTH, _DEFAULT_DEPTH = 64, 2


def _hidden_widths(widths, width, depth) -> tuple[int, ...]:
    """The hidden layer widths: ``widths`` (one per layer) or ``depth`` layers of ``width`` units (the gradient
    networks' spelling; 64 and 2 when left out), not both; (64, 64) when neither is given."""
    if widths is not None:
        if width is not None or depth is not None:
            raise ValueError(f"pass either widths (one per hidden layer) or width and depth, not both; got "
                             f"widths={widths!r}, width={width!r}, depth={depth!r}")
        return check_sizes(widths, "widths", "one per hidden layer")
    width = _DEFAULT_WIDTH if width is None else check_positive_int(width, "width")
    depth = _DEFAULT_DEPTH if depth is None else check_positive_int(depth, "depth")
    return (width,) * depth


def _mlp(dim_in: int, widths: tuple[int, ...], dim_out: int, activation: str) -> nn.Sequential:
    check_choice(activation, "activation", _MLP_ACTIVATIONS)
    layers, n_in = [], dim_in
    for w in widths:
        layers += [nn.Linear(n_in, w), _MLP_ACTIVATIONS[activation]()]
        n_in = w
    layers.append(nn.Linear(n_in, dim_out))
    return nn.Sequential(*layers)


class MLPPotential(Potential):
    """A scalar MLP potential F (the Hamiltonian Neural Network baseline); grad F by autograd.

    ``forward`` differentiates ``energy`` with autograd, keeping the graph whenever gradients are enabled,
    so a loss on the gradient costs a double backward.

    Args:
        dim: input dimension d.
        widths: hidden layer widths (h_1, ..., h_L); or, as for the gradient networks, ``width`` and
            ``depth``: ``depth`` hidden layers of ``width`` units (default: 2 layers of 64).
        activation: one of "tanh", "softplus", "silu", "gelu" (smooth, so the field is continuous).

    Example:
        >>> MLPPotential(2, width=32, depth=3).widths
        (32, 32, 32)
    """

    def __init__(self, dim: int, widths=None, activation: str = "tanh", *, width: int | None = None,
                 depth: int | None = None):
        super().__init__(dim)
        self.widths = _hidden_widths(widths, width, depth)
        self.net = _mlp(dim, self.widths, 1, activation)

    def _energy(self, x):
        return self.net(x).squeeze(-1)

    def _gradient(self, x):
        return autograd_gradient(self._energy, x)


class MLPField(Potential):
    """An unconstrained MLP vector field R^d -> R^d (no potential: ``energy`` raises TypeError).

    The baseline that gradient networks are compared against: it is neither conservative nor monotone.
    Sizes as for :class:`MLPPotential` (``widths``, or ``width`` and ``depth``).
    """

    is_conservative = False

    def __init__(self, dim: int, widths=None, activation: str = "tanh", *, width: int | None = None,
                 depth: int | None = None):
        super().__init__(dim)
        self.widths = _hidden_widths(widths, width, depth)
        self.net = _mlp(dim, self.widths, dim, activation)

    def _gradient(self, x):
        return self.net(x)

    def energy(self, x):
        raise TypeError("MLPField is an unconstrained vector field and has no potential (energy)")


class ICNN(MonotonePotential):
    r"""Input-convex neural network (Amos, Xu, Kolter 2017) as a convex potential; gradient by autograd.

        z_1 = sigma(A_0 x + b_0),    z_{l+1} = sigma(P_l z_l + A_l x + b_l),    f(x) = w^T z_L + a^T x

    with sigma = softplus (convex, nondecreasing, smooth) and P_l, w >= 0 by softplus reparameterisation,
    so f is convex; ``strong_convexity`` mu adds mu/2 ||x||^2.

    Args:
        dim: input dimension d.
        widths: hidden layer widths (h_1, ..., h_L); or ``width`` and ``depth`` as for :class:`MLPPotential`.
        strong_convexity: mu >= 0.
    """

    def __init__(self, dim: int, widths=None, *, width: int | None = None, depth: int | None = None,
                 strong_convexity: float = 0.0):
        super().__init__(dim, strong_convexity)
        self.widths = _hidden_widths(widths, width, depth)
        self.input_layers = nn.ModuleList(nn.Linear(dim, w) for w in self.widths)
        # Raw weights of the nonnegative matrices, initialised so that softplus(raw) ~ 1 / fan_in.
        self.hidden_raw = nn.ParameterList(
            nn.Parameter(math.log(math.expm1(1.0 / w_in)) + 0.1 * torch.randn(w_out, w_in))
            for w_in, w_out in zip(self.widths[:-1], self.widths[1:])
        )
        self.output_raw = nn.Parameter(math.log(math.expm1(1.0 / self.widths[-1])) + 0.1 * torch.randn(self.widths[-1]))
        self.linear = nn.Parameter(torch.zeros(dim))

    def _energy(self, x):
        z = F.softplus(self.input_layers[0](x))
        for layer, raw in zip(self.input_layers[1:], self.hidden_raw):
            z = F.softplus(z @ positive(raw).T + layer(x))
        return z @ positive(self.output_raw) + x @ self.linear

    def _gradient(self, x):
        return autograd_gradient(self._energy, x)

    def _jacobian(self, x):
        return autograd_jacobian(self._gradient, x)

    def _lipschitz_bound(self):
        # Per unit, G bounds ||grad a|| of the pre-activation and h bounds ||Hess z||; with
        # softplus' <= 1, softplus'' <= 1/4 and P >= 0: h_{l+1} <= G^2 / 4 + P h_l, G_{l+1} <= P G_l + ||A_l||.
        grad = self.input_layers[0].weight.norm(dim=-1)
        hess = 0.25 * grad.square()
        for layer, raw in zip(self.input_layers[1:], self.hidden_raw):
            P = positive(raw)
            grad = P @ grad + layer.weight.norm(dim=-1)
            hess = 0.25 * grad.square() + P @ hess
        return positive(self.output_raw) @ hess
