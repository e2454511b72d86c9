"""Modular gradient networks GradNet-M and mGradNet-M (Chaudhari, Pranav, Moura 2025) (private)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validation import check_positive_int
from ._activations import make_module_activation, positive
from ._base import MonotonePotential, Potential

__all__ = ["GradNetM", "MGradNetM"]


class _Modular:
    r"""Shared implementation of the modular nets.

    K modules with weights W_k (m x d), biases b_k (m), temperatures c_k = softplus(beta_k) > 0, module
    weights w_k (softplus(alpha_k) for the monotone net, free otherwise), output bias b (d):

        z_k = c_k (W_k x + b_k),    N(x) = sum_k w_k W_k^T s(z_k) + b,
        F(x) = sum_k (w_k / c_k) psi(z_k) + b^T x,    J_N(x) = sum_k w_k c_k W_k^T J_s(z_k) W_k,

    with s = grad psi a vector gradient activation (softmax = grad log-sum-exp by default).
    """

    def _build(self, width: int, n_modules: int, activation: str, monotone: bool):
        m = check_positive_int(width, "width")
        K = check_positive_int(n_modules, "n_modules")
        self.width, self.n_modules, self.activation = m, K, activation
        self._monotone = monotone
        self.module_activation = make_module_activation(activation, K, m, monotone)
        self.weight = nn.Parameter(torch.randn(K, m, self.dim) / math.sqrt(self.dim))
        self.hidden_bias = nn.Parameter(torch.randn(K, m))
        self.beta = nn.Parameter(torch.full((K,), math.log(math.expm1(1.0))))  # c_k = 1
        self.alpha = nn.Parameter(torch.full((K,), math.log(math.expm1(1.0 / K)) if monotone else 1.0 / K))
        self.bias = nn.Parameter(torch.zeros(self.dim))

    def _module_weights(self) -> torch.Tensor:
        return positive(self.alpha) if self._monotone else self.alpha

    def _temperatures(self) -> torch.Tensor:
        return positive(self.beta)

    def _preactivation(self, x) -> torch.Tensor:
        """z_k = c_k (W_k x + b_k): (..., d) -> (..., K, m) with one matrix product."""
        K, m, d = self.weight.shape
        u = (x @ self.weight.reshape(K * m, d).T).unflatten(-1, (K, m))
        return self._temperatures().unsqueeze(-1) * (u + self.hidden_bias)

    def _gradient(self, x):
        K, m, d = self.weight.shape
        s = self.module_activation(self._preactivation(x)) * self._module_weights().unsqueeze(-1)
        return s.flatten(-2) @ self.weight.reshape(K * m, d) + self.bias

    def _energy(self, x):
        psi = self.module_activation.potential(self._preactivation(x))
        return (psi * (self._module_weights() / self._temperatures())).sum(-1) + x @ self.bias

    def _jacobian(self, x):
        blocks = self.module_activation.congruence(self._preactivation(x), self.weight)
        scale = self._module_weights() * self._temperatures()
        return (blocks * scale[:, None, None]).sum(-3)

    def _lipschitz_bound(self):
        norms = torch.linalg.matrix_norm(self.weight, ord=2).square()
        sup_js = self.module_activation.sup_jacobian_norm()
        return (self._module_weights().abs() * self._temperatures() * sup_js * norms).sum()

    def extra_repr(self):
        return (f"{super().extra_repr()}, width={self.width}, n_modules={self.n_modules}, "
                f"activation={self.activation!r}")


class GradNetM(_Modular, Potential):
    """Modular gradient network (GradNet-M): approximates the gradient of any smooth function.

    N(x) = sum_k w_k W_k^T s(c_k (W_k x + b_k)) + b in one forward pass, with a closed-form potential.

    Args:
        dim: input dimension d.
        width: units per module m.
        n_modules: number of modules K.
        activation: "softmax" (default), "weighted_softmax" (learnable), or an elementwise one
            ("tanh", "sigmoid", "sin", "weighted_tanh") applied within each module.

    Example:
        >>> net = GradNetM(2, width=7, n_modules=4)
        >>> net(torch.rand(5, 2)).shape
        torch.Size([5, 2])
    """

    def __init__(self, dim: int, width: int = 64, n_modules: int = 4, activation: str = "softmax"):
        Potential.__init__(self, dim)
        self._build(width, n_modules, activation, monotone=False)

    def lipschitz_bound(self) -> torch.Tensor:
        """A certified bound L >= sup_x ||J(x)||_2 (0-dim tensor)."""
        return self._lipschitz_bound()


class MGradNetM(_Modular, MonotonePotential):
    """Monotone modular gradient network (mGradNet-M): approximates the gradient of any smooth convex function.

    As :class:`GradNetM` with w_k = softplus(alpha_k) >= 0 and convex psi, so J is symmetric PSD.
    Softmax Jacobians have the null vector 1, so without ``strong_convexity`` (mu x added) the map can be
    singular; use mu > 0 when you need an invertible map or finite log-determinants.

    Example:
        >>> net = MGradNetM(3, width=8, n_modules=4, strong_convexity=0.5)
        >>> net.logdet_jacobian(torch.rand(5, 3)).shape
        torch.Size([5])
    """

    def __init__(self, dim: int, width: int = 64, n_modules: int = 4, activation: str = "softmax", *,
                 strong_convexity: float = 0.0):
        MonotonePotential.__init__(self, dim, strong_convexity)
        self._build(width, n_modules, activation, monotone=True)
