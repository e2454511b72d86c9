"""Gradient activations: maps s = grad psi with a known potential psi and Jacobian (private).

Two families are used by the gradient networks:

* elementwise activations s(z)_i = s(z_i) with derivative s' and antiderivative S (S' = s), used by the
  cascaded nets (GradNet-C) and, applied to a whole module, by the modular nets;
* vector activations s: R^m -> R^m with s = grad psi (softmax = grad log-sum-exp), used by the modular
  nets (GradNet-M).

An activation is monotone (psi convex) when s' >= 0, respectively J_s PSD. Learnable activations take
``monotone=True`` to keep their weights nonnegative through a softplus reparameterisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_choice, check_positive_int

__all__ = [
    "ELEMENTWISE_ACTIVATIONS",
    "MODULE_ACTIVATIONS",
    "MONOTONE_ACTIVATIONS",
    "make_elementwise_activation",
    "make_module_activation",
    "positive",
]

_SOFTPLUS_INV_ONE = math.log(math.expm1(1.0))


def positive(raw: torch.Tensor) -> torch.Tensor:
    """The softplus reparameterisation p(raw) = log(1 + exp(raw)) > 0 used for nonnegative weights.

    ``raw`` is a floating-point tensor of any shape (type-checked only: this runs in every forward).

    Example:
        >>> positive(torch.zeros(2))
        tensor([0.6931, 0.6931])
    """
    if not isinstance(raw, torch.Tensor) or not raw.is_floating_point():
        got = f"dtype {raw.dtype}" if isinstance(raw, torch.Tensor) else type(raw).__name__
        raise ValueError(f"raw must be a floating-point torch.Tensor, got {got}")
    return F.softplus(raw)


def log_cosh(z: torch.Tensor) -> torch.Tensor:
    """log cosh z computed as |z| + log1p(exp(-2|z|)) - log 2, which does not overflow."""
    a = z.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


def _inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


class _WeightPair(nn.Module):
    """Learnable weights (a, b) of ``shape``, initialised at a = 1, b = 0.1; with ``monotone=True`` they
    are kept nonnegative as a = softplus(a_raw), b = softplus(b_raw)."""

    def __init__(self, shape: tuple[int, ...], monotone: bool):
        super().__init__()
        self.monotone = monotone
        a0, b0 = (_inverse_softplus(1.0), _inverse_softplus(0.1)) if monotone else (1.0, 0.1)
        self.a = nn.Parameter(torch.full(shape, a0))
        self.b = nn.Parameter(torch.full(shape, b0))

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.monotone:
            return positive(self.a), positive(self.b)
        return self.a, self.b


class ElementwiseActivation(nn.Module):
    """s applied entrywise. Subclasses define ``forward`` (s), ``derivative`` (s') and ``antiderivative``
    (S with S' = s), and ``sup_abs_derivative`` (a bound on |s'| over the real line, per entry)."""

    is_monotone: bool = True

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def antiderivative(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sup_abs_derivative(self) -> torch.Tensor | float:
        raise NotImplementedError


class Tanh(ElementwiseActivation):
    """s = tanh, s' = 1 - tanh^2 in (0, 1], S = log cosh."""

    def forward(self, z):
        return torch.tanh(z)

    def derivative(self, z):
        return 1.0 - torch.tanh(z).square()

    def antiderivative(self, z):
        return log_cosh(z)

    def sup_abs_derivative(self):
        return 1.0


class Sigmoid(ElementwiseActivation):
    """s = sigmoid, s' = s (1 - s) in (0, 1/4], S = softplus."""

    def forward(self, z):
        return torch.sigmoid(z)

    def derivative(self, z):
        s = torch.sigmoid(z)
        return s * (1.0 - s)

    def antiderivative(self, z):
        return F.softplus(z)

    def sup_abs_derivative(self):
        return 0.25


class Sine(ElementwiseActivation):
    """s = sin, s' = cos, S = -cos. Not monotone: for the unconstrained gradient networks only."""

    is_monotone = False

    def forward(self, z):
        return torch.sin(z)

    def derivative(self, z):
        return torch.cos(z)

    def antiderivative(self, z):
        return -torch.cos(z)

    def sup_abs_derivative(self):
        return 1.0


class WeightedTanh(ElementwiseActivation):
    """Learnable s(z) = a tanh(z) + b (z - tanh z) ("weighted tanh"), one (a, b) per entry of ``shape``.

    s' = a (1 - tanh^2 z) + b tanh^2 z, S = a log cosh z + b (z^2 / 2 - log cosh z). With ``monotone=True``
    a = softplus(a_raw) and b = softplus(b_raw) are nonnegative, so s is nondecreasing and grows linearly
    (slope b) in the tails; otherwise a and b are free. Initialised at a = 1, b = 0.1.
    """

    def __init__(self, shape: tuple[int, ...], monotone: bool):
        super().__init__()
        self.is_monotone = monotone
        self.weights = _WeightPair(shape, monotone)

    def forward(self, z):
        a, b = self.weights()
        t = torch.tanh(z)
        return a * t + b * (z - t)

    def derivative(self, z):
        a, b = self.weights()
        t2 = torch.tanh(z).square()
        return a * (1.0 - t2) + b * t2

    def antiderivative(self, z):
        a, b = self.weights()
        lc = log_cosh(z)
        return a * lc + b * (0.5 * z.square() - lc)

    def sup_abs_derivative(self):
        a, b = self.weights()
        return torch.maximum(a.abs(), b.abs())


class ModuleActivation(nn.Module):
    """A vector gradient activation applied to each module's pre-activation z of shape (..., K, m).

    ``forward`` gives s(z) (..., K, m), ``potential`` psi(z) (..., K), ``congruence(z, W)`` the matrix
    W_k^T J_s(z_k) W_k (..., K, d, d) for module weights W (K, m, d), and ``sup_jacobian_norm`` a bound on
    ||J_s|| per module (K,).
    """

    is_monotone: bool = True

    def potential(self, z):
        raise NotImplementedError

    def congruence(self, z, W):
        raise NotImplementedError

    def sup_jacobian_norm(self):
        raise NotImplementedError


def _softmax_congruence(s: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """W^T (diag(s) - s s^T) W for s (..., K, m), W (K, m, d) -> (..., K, d, d), without forming m x m."""
    v = torch.einsum("...km,kmd->...kd", s, W)
    return torch.einsum("kmd,...km,kme->...kde", W, s, W) - v.unsqueeze(-1) * v.unsqueeze(-2)


class Softmax(ModuleActivation):
    """s = softmax = grad log-sum-exp; J_s = diag(s) - s s^T is PSD with ||J_s|| <= 1/2."""

    def forward(self, z):
        return torch.softmax(z, dim=-1)

    def potential(self, z):
        return torch.logsumexp(z, dim=-1)

    def congruence(self, z, W):
        return _softmax_congruence(torch.softmax(z, dim=-1), W)

    def sup_jacobian_norm(self):
        return 0.5


class WeightedSoftmax(ModuleActivation):
    """Learnable s(z) = a softmax(z) - b softmin(z) = grad[a LSE(z) + b LSE(-z)], one (a, b) per module.

    Convex potential when a, b >= 0 (``monotone=True``: softplus reparameterisation). ||J_s|| <= (|a| + |b|)/2.
    Initialised at a = 1, b = 0.1.
    """

    def __init__(self, n_modules: int, monotone: bool):
        super().__init__()
        self.is_monotone = monotone
        self.weights = _WeightPair((n_modules,), monotone)

    def forward(self, z):
        a, b = self.weights()
        return a.unsqueeze(-1) * torch.softmax(z, dim=-1) - b.unsqueeze(-1) * torch.softmax(-z, dim=-1)

    def potential(self, z):
        a, b = self.weights()
        return a * torch.logsumexp(z, dim=-1) + b * torch.logsumexp(-z, dim=-1)

    def congruence(self, z, W):
        a, b = self.weights()
        pos = _softmax_congruence(torch.softmax(z, dim=-1), W)
        neg = _softmax_congruence(torch.softmax(-z, dim=-1), W)
        return a[:, None, None] * pos + b[:, None, None] * neg

    def sup_jacobian_norm(self):
        a, b = self.weights()
        return 0.5 * (a.abs() + b.abs())


class Ridge(ModuleActivation):
    """An elementwise activation used as a module activation: psi(z) = sum_i S(z_i), J_s = diag(s'(z))."""

    def __init__(self, elementwise: ElementwiseActivation):
        super().__init__()
        self.elementwise = elementwise
        self.is_monotone = elementwise.is_monotone

    def forward(self, z):
        return self.elementwise(z)

    def potential(self, z):
        return self.elementwise.antiderivative(z).sum(dim=-1)

    def congruence(self, z, W):
        return torch.einsum("kmd,...km,kme->...kde", W, self.elementwise.derivative(z), W)

    def sup_jacobian_norm(self):
        bound = self.elementwise.sup_abs_derivative()
        return bound.amax(dim=-1) if isinstance(bound, torch.Tensor) else bound


_ELEMENTWISE = {"tanh": Tanh, "sigmoid": Sigmoid, "sin": Sine, "weighted_tanh": WeightedTanh}
_LEARNABLE = {"weighted_tanh", "weighted_softmax"}
ELEMENTWISE_ACTIVATIONS = tuple(sorted(_ELEMENTWISE))
MODULE_ACTIVATIONS = tuple(sorted([*_ELEMENTWISE, "softmax", "weighted_softmax"]))
MONOTONE_ACTIVATIONS = tuple(sorted({"tanh", "sigmoid", "weighted_tanh", "softmax", "weighted_softmax"}))


def _check_activation(name: str, valid, monotone: bool) -> None:
    if not isinstance(monotone, bool):
        raise ValueError(f"monotone must be True or False, got {monotone!r}")
    if monotone:
        valid = [v for v in valid if v in MONOTONE_ACTIVATIONS]
    check_choice(name, "monotone activation name" if monotone else "activation name", valid)


def check_sizes(value, name: str, meaning: str = "") -> tuple[int, ...]:
    """``value`` as a tuple if it is a non-empty tuple or list of integers >= 1, else ValueError naming ``name``
    (``meaning``, e.g. "one per hidden layer", completes the message)."""
    ok = isinstance(value, (tuple, list)) and len(value) > 0
    if ok:
        try:
            for size in value:
                check_positive_int(size, name)
        except ValueError:
            ok = False
    if not ok:
        detail = f" ({meaning})" if meaning else ""
        raise ValueError(f"{name} must be a non-empty tuple of integers >= 1{detail}, got {value!r}")
    return tuple(value)


def make_elementwise_activation(name: str, shape: tuple[int, ...], monotone: bool) -> ElementwiseActivation:
    """Build the elementwise activation ``name`` (learnable ones get parameters of ``shape``, a non-empty
    tuple of sizes, checked for every name). With ``monotone=True`` only nondecreasing activations are
    accepted and learnable ones keep their weights nonnegative.

    Example:
        >>> make_elementwise_activation("weighted_tanh", (3,), monotone=True)(torch.zeros(3))
        tensor([0., 0., 0.], grad_fn=<AddBackward0>)
    """
    _check_activation(name, ELEMENTWISE_ACTIVATIONS, monotone)
    shape = check_sizes(shape, "shape")
    cls = _ELEMENTWISE[name]
    return cls(shape, monotone) if name in _LEARNABLE else cls()


def make_module_activation(name: str, n_modules: int, width: int, monotone: bool) -> ModuleActivation:
    """Build the module activation ``name`` for ``n_modules`` modules of ``width`` units (integers >= 1)."""
    _check_activation(name, MODULE_ACTIVATIONS, monotone)
    check_positive_int(n_modules, "n_modules")
    check_positive_int(width, "width")
    if name == "softmax":
        return Softmax()
    if name == "weighted_softmax":
        return WeightedSoftmax(n_modules, monotone)
    return Ridge(make_elementwise_activation(name, (n_modules, width), monotone))
