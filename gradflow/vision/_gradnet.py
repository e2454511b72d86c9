"""Convolutional gradient network and the GradNet residual block (private)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..potentials import make_elementwise_activation, positive
from ._residual import _check_input, _conv_sizes, _GatedSkip

__all__ = ["ConvGradNet", "GradNetResidual"]


class ConvGradNet(nn.Module):
    r"""A convolutional gradient network: the exact gradient of a scalar potential of an image,

        psi(x) = sum_{k, p} w_k S((W * x)_{k,p} + b_k),    grad psi(x) = W^T (w * s(W * x + b)),

    with W a k x k convolution from C to K channels ('same' zero padding), W^T its adjoint (transposed
    convolution with the same weight), s = S' an elementwise gradient activation from
    :mod:`gradflow.potentials` (:data:`~gradflow.potentials.ELEMENTWISE_ACTIVATIONS`) and w a weight per
    hidden channel. It is the convolutional form of the cascaded gradient networks' layer: with
    ``monotone=True`` (default) w = softplus(.) >= 0 and s is nondecreasing, so psi is convex and the
    field is monotone.

    Shapes: forward (B, C, H, W) -> (B, C, H, W) (the field); energy (B, C, H, W) -> (B,).

    Example:
        >>> net = ConvGradNet(3, hidden_channels=8)
        >>> net(torch.randn(2, 3, 16, 16)).shape, net.energy(torch.randn(2, 3, 16, 16)).shape
        (torch.Size([2, 3, 16, 16]), torch.Size([2]))
    """

    def __init__(self, channels: int, hidden_channels: int | None = None, kernel_size: int = 3,
                 activation: str = "tanh", monotone: bool = True):
        super().__init__()
        hidden = _conv_sizes(channels, kernel_size, hidden_channels)
        self.channels, self.hidden_channels, self.monotone = channels, hidden, bool(monotone)
        self.activation = activation
        self.act = make_elementwise_activation(activation, (hidden, 1, 1), self.monotone)
        self.weight = nn.Parameter(torch.randn(hidden, channels, kernel_size, kernel_size)
                                   / math.sqrt(channels * kernel_size ** 2))
        self.bias = nn.Parameter(torch.zeros(hidden))
        w0 = 1.0 / hidden
        self.raw_scale = nn.Parameter(torch.full((hidden,), math.log(math.expm1(w0)) if self.monotone else w0))

    def _scale(self):
        return (positive(self.raw_scale) if self.monotone else self.raw_scale)[:, None, None]

    def _check(self, x):
        _check_input(x, self)
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must have shape (B, {self.channels}, H, W), got {tuple(x.shape)}")

    def _preactivation(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=self.weight.shape[-1] // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """grad psi(x) = W^T (w * s(W * x + b))."""
        self._check(x)
        u = self._scale() * self.act(self._preactivation(x))
        return F.conv_transpose2d(u, self.weight, padding=self.weight.shape[-1] // 2)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """psi(x) = sum_{k,p} w_k S((W * x + b)_{k,p}), one value per sample."""
        self._check(x)
        return (self._scale() * self.act.antiderivative(self._preactivation(x))).sum((1, 2, 3))

    def extra_repr(self):
        return (f"channels={self.channels}, hidden_channels={self.hidden_channels}, monotone={self.monotone}, "
                f"activation={self.activation!r}")


class GradNetResidual(_GatedSkip):
    r"""A residual block whose gradient term comes from a learned gradient network:

        h(x) = F(x) + P((1 - s(a)) x + s(a) grad psi(x)),    s = sigmoid,

    with grad psi a :class:`ConvGradNet` (or any module mapping x to a field of x's shape) trained with
    the rest of the network (no stop-gradient and no normalisation: psi learns its own scale). Where
    :class:`GradResidual` takes the gradient of the branch's output sum (a one-layer gradient network
    sharing conv1's weights), this block gives the gradient term its own weights.

    Args:
        branch: the residual branch F.
        potential: the gradient field grad psi, e.g. ``ConvGradNet(channels)``.
        alpha_init, learn_alpha: the gate a as in :class:`GradResidual`.
        projection: optional linear module P for blocks that change shape.

    Example:
        >>> from gradflow.vision import ConvBranch
        >>> block = GradNetResidual(ConvBranch(8), ConvGradNet(8))
        >>> block(torch.randn(2, 8, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    mode = "gradnet"

    def __init__(self, branch: nn.Module, potential: nn.Module, alpha_init: float = 0.0, learn_alpha: bool = True,
                 projection: nn.Module | None = None):
        super().__init__()
        for name, module in (("branch", branch), ("potential", potential)):
            if not isinstance(module, nn.Module):
                raise ValueError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
        self.branch, self.potential = branch, potential
        self._init_gate(True, alpha_init, learn_alpha, projection, branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.branch)
        s = self.gate()
        return self._combine(self.branch(x), (1.0 - s) * x + s * self.potential(x))
