"""Gradient residual connections (Pan, Ying, Torr, Liu 2026) (private).

A residual block h = F(x) + x is given a second skip term, the input-gradient of the branch's output sum,

    g(x) = grad_x sum_i F_i(x) = J_F(x)^T 1,

normalised to unit norm and mixed with the identity by a sigmoid gate (the paper's main form):

    h(x) = F(x) + P((1 - s(a)) x + s(a) g(x) / ||g(x)||),    s = sigmoid,

where P is the identity, or a linear projection for blocks that change shape. g is computed by one
vector-Jacobian product (any branch), or in closed form for conv-(elementwise)-conv branches (see
:class:`ConvBranch`): F = c * conv2(s(conv1 x + b1)) + b2 gives

    g = c * conv1^T( s'(conv1 x + b1) * conv2^T 1 ),

from the forward pass's own pre-activation, with conv2^T 1 computed exactly (it is smaller at the borders
under zero padding). Batch norms in the branch (conv-BN-s-conv-BN) enter as their per-channel slopes, their
statistics held fixed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_choice, check_finite, check_number, check_positive_int

__all__ = ["BRANCH_ACTIVATIONS", "NORMALIZATIONS", "RESIDUAL_MODES", "ConvBranch", "GradResidual", "normalize_field"]

#: residual modes of :class:`GradResidual` (see its docstring for the formulas)
RESIDUAL_MODES = ("convex", "gradient", "gradmag", "identity", "identity+gradient", "none")
#: how g is normalised: over each sample, over the channels at each position, or not at all (None)
NORMALIZATIONS = ("sample", "position", None)
_GATED = ("convex", "gradmag")
_USES_GRADIENT = ("convex", "gradient", "gradmag", "identity+gradient")


def _gelu_derivative(z):
    return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0))) + z * torch.exp(-0.5 * z.square()) / math.sqrt(2.0 * math.pi)


def _silu_derivative(z):
    s = torch.sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _softplus_derivative(module: nn.Softplus):
    def derivative(z):
        bz = module.beta * z
        return torch.where(bz > module.threshold, torch.ones_like(z), torch.sigmoid(bz))

    return derivative


def _leaky_relu_derivative(module: nn.LeakyReLU):
    return lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, module.negative_slope))


def _elu_derivative(module: nn.ELU):
    return lambda z: torch.where(z > 0, torch.ones_like(z), module.alpha * torch.exp(z))


def _relu_times_derivative(z, a):
    """relu'(z) * a in one pass (autograd's own ReLU backward kernel; relu'(0) = 0 as in autograd), ~15x
    faster on CPU than building the mask and multiplying."""
    return torch.ops.aten.threshold_backward(a.expand_as(z), z, 0)


def _activation_derivative(module: nn.Module):
    """(z, a) -> s'(z) * a for the elementwise activation modules the fast path knows (matching autograd,
    s'(0) = 0 for ReLU), or None."""
    if type(module) is nn.ReLU:
        return _relu_times_derivative
    derivative = _derivative(module)
    return None if derivative is None else (lambda z, a: derivative(z) * a)


def _derivative(module: nn.Module):
    """s' for the other known elementwise activations, or None."""
    if type(module) is nn.Identity:
        return torch.ones_like
    if type(module) is nn.Tanh:
        return lambda z: 1.0 - torch.tanh(z).square()
    if type(module) is nn.Sigmoid:
        return lambda z: torch.sigmoid(z) * (1.0 - torch.sigmoid(z))
    if type(module) is nn.SiLU:
        return _silu_derivative
    if type(module) is nn.GELU and module.approximate == "none":
        return _gelu_derivative
    if type(module) is nn.Softplus:
        return _softplus_derivative(module)
    if type(module) is nn.LeakyReLU:
        return _leaky_relu_derivative(module)
    if type(module) is nn.ELU:
        return _elu_derivative(module)
    return None


_ACTIVATION_MODULES = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU,
    "gelu": nn.GELU, "softplus": nn.Softplus, "elu": nn.ELU, "identity": nn.Identity,
}
#: activations of :class:`ConvBranch` (all have a closed-form derivative for the fast path)
BRANCH_ACTIVATIONS = tuple(sorted(_ACTIVATION_MODULES))


def _conv_sizes(channels: int, kernel_size: int, hidden_channels: int | None) -> int:
    """Validate the sizes of a conv - activation - conv pair with 'same' padding; return the hidden width."""
    check_positive_int(channels, "channels")
    check_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd ('same' padding), got {kernel_size}")
    return channels if hidden_channels is None else check_positive_int(hidden_channels, "hidden_channels")


class ConvBranch(nn.Module):
    r"""The residual branch F(x) = c * conv2(s(conv1 x + b1)) + b2 (EDSR's block body without the skip).

    Args:
        channels: input and output channels C.
        kernel_size: odd kernel size k of both convolutions ('same' zero padding k // 2).
        hidden_channels: channels between the convolutions (default C).
        activation: one of :data:`BRANCH_ACTIVATIONS` (default ``"relu"``).
        scale: the residual scaling c (EDSR uses 0.1 for its large model).
        bias: whether the convolutions have biases.

    Shapes: (B, C, H, W) -> (B, C, H, W). Wrapped in :class:`GradResidual`, the gradient term of this
    branch is computed in closed form (no autograd call).

    Example:
        >>> branch = ConvBranch(16)
        >>> branch(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 16, 8, 8])
    """

    def __init__(self, channels: int, kernel_size: int = 3, hidden_channels: int | None = None,
                 activation: str = "relu", scale: float = 1.0, bias: bool = True):
        super().__init__()
        hidden = _conv_sizes(channels, kernel_size, hidden_channels)
        check_choice(activation, "activation", BRANCH_ACTIVATIONS)
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale != 0):
            raise ValueError(f"scale must be a finite nonzero number, got {scale!r}")
        self.conv1 = nn.Conv2d(channels, hidden, kernel_size, padding=kernel_size // 2, bias=bias)
        self.act = _ACTIVATION_MODULES[activation]()
        self.conv2 = nn.Conv2d(hidden, channels, kernel_size, padding=kernel_size // 2, bias=bias)
        self.scale = float(scale)

    def forward(self, x):
        _check_input(x, self)
        out = self.conv2(self.act(self.conv1(x)))
        return out if self.scale == 1.0 else out * self.scale

    def extra_repr(self):
        return f"scale={self.scale}"


class _FastParts(NamedTuple):
    layer1: nn.Module
    norm1: nn.BatchNorm2d | None
    act: nn.Module
    times_derivative: object  # (z, a) -> s'(z) * a
    layer2: nn.Module
    norm2: nn.BatchNorm2d | None
    scale: float


def _fast_parts(branch: nn.Module) -> _FastParts | None:
    """The parts of a branch the closed form covers, or None: conv-[BN]-(elementwise)-conv-[BN] (zero
    padding, no groups; BatchNorm2d optional after either convolution) or linear-(elementwise)-linear."""
    if isinstance(branch, ConvBranch):
        layers, scale = [branch.conv1, branch.act, branch.conv2], branch.scale
    elif type(branch) is nn.Sequential:
        layers, scale = list(branch), 1.0
    else:
        return None
    norm1 = layers.pop(1) if len(layers) > 3 and type(layers[1]) is nn.BatchNorm2d else None
    norm2 = layers.pop() if len(layers) == 4 and type(layers[3]) is nn.BatchNorm2d else None
    if len(layers) != 3:
        return None
    layer1, act, layer2 = layers
    derivative = _activation_derivative(act)
    convs_ok = all(type(c) is nn.Conv2d and c.groups == 1 and c.padding_mode == "zeros" and isinstance(c.padding, tuple)
                   for c in (layer1, layer2))
    linear_ok = type(layer1) is nn.Linear and type(layer2) is nn.Linear and norm1 is None and norm2 is None
    if derivative is None or not (convs_ok or linear_ok):
        return None
    return _FastParts(layer1, norm1, act, derivative, layer2, norm2, scale)


def _norm_slope(norm: nn.BatchNorm2d, z: torch.Tensor, track: bool) -> torch.Tensor:
    """gamma / sqrt(var + eps) per channel: the slope of batch norm ``norm`` in this forward pass with its
    statistics held fixed (the batch's variance of its input z where it normalises by batch statistics,
    the running variance otherwise)."""
    if norm.training or norm.running_var is None:  # two passes: ~10x faster on CPU than Tensor.var here
        z = z.detach()
        var = (z - z.mean(dim=(0, 2, 3), keepdim=True)).square_().mean(dim=(0, 2, 3))
    else:
        var = norm.running_var
    slope = torch.rsqrt(var + norm.eps)
    if norm.weight is not None:
        slope = slope * (norm.weight if track else norm.weight.detach())
    return slope


def _conv_transpose(u: torch.Tensor, weight: torch.Tensor, conv: nn.Conv2d, size) -> torch.Tensor:
    """conv^T u: the adjoint of ``conv`` (without bias) applied to u, cropped/padded to spatial ``size``."""
    output_padding = []
    for i in range(2):
        full = (u.shape[-2 + i] - 1) * conv.stride[i] - 2 * conv.padding[i] + conv.dilation[i] * (
            weight.shape[-2 + i] - 1) + 1
        output_padding.append(size[i] - full)
    return F.conv_transpose2d(u, weight, None, conv.stride, conv.padding, tuple(output_padding), 1, conv.dilation)


def normalize_field(g: torch.Tensor, normalize: str | None, eps: float = 1e-12) -> torch.Tensor:
    """g / max(||g||, eps) with the norm over each sample (dims 1..), over the channels at each position
    (dim 1), or g itself for ``normalize=None``. Shapes: (B, C, ...) -> (B, C, ...).

    ``g`` must be a finite, non-empty floating-point tensor of at least 2 dimensions, ``eps`` a finite
    number > 0 (ValueError naming the argument otherwise).

    Example:
        >>> normalize_field(torch.full((2, 4, 1, 1), 3.0), "sample").flatten(1).norm(dim=1)
        tensor([1., 1.])
    """
    if not isinstance(g, torch.Tensor) or not g.is_floating_point() or g.ndim < 2 or g.numel() == 0:
        kind = f"dtype {g.dtype}, shape {tuple(g.shape)}" if isinstance(g, torch.Tensor) else type(g).__name__
        raise ValueError(f"g must be a non-empty floating-point tensor of shape (B, C, ...), got {kind}")
    _check_normalize(normalize)
    eps = check_number(eps, "eps", minimum=0.0, strict=True)
    check_finite(g, "g")
    return _normalize_field(g, normalize, eps)


def _check_normalize(normalize) -> None:
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalize {normalize!r}; valid: 'sample', 'position', None")


def _normalize_field(g: torch.Tensor, normalize: str | None, eps: float = 1e-12) -> torch.Tensor:
    """:func:`normalize_field` of checked arguments (what every forward of :class:`GradResidual` runs: no
    NaN check, which would cost a device sync per block)."""
    if normalize is None:
        return g
    dims = 1 if normalize == "position" else tuple(range(1, g.ndim))
    return g / torch.linalg.vector_norm(g, dim=dims, keepdim=True).clamp_min(eps)


class _GatedSkip(nn.Module):
    """The gate a (a Parameter, or a buffer with ``learn_alpha=False``) and the projected skip P(.)."""

    def _init_gate(self, gated: bool, alpha_init: float, learn_alpha: bool, projection, like: nn.Module):
        """Create a (a Parameter, or a buffer with ``learn_alpha=False``) in the dtype and on the device of
        ``like``'s first floating-point parameter."""
        if not (isinstance(alpha_init, (int, float)) and not isinstance(alpha_init, bool)) or math.isnan(alpha_init):
            raise ValueError(f"alpha_init must be a number (may be -inf or +inf), got {alpha_init!r}")
        if projection is not None and not isinstance(projection, nn.Module):
            raise ValueError(f"projection must be a torch.nn.Module or None, got {type(projection).__name__}")
        self.projection = projection
        ref = next((p for p in like.parameters() if p.is_floating_point()), None)
        alpha = torch.tensor(float(alpha_init), dtype=None if ref is None else ref.dtype,
                             device=None if ref is None else ref.device)
        if not gated:
            self.alpha = None
        elif learn_alpha:
            self.alpha = nn.Parameter(alpha)
        else:
            self.register_buffer("alpha", alpha)

    def gate(self) -> torch.Tensor | None:
        """s(a) = sigmoid(a), the weight of the gradient term (None for ungated modes)."""
        return None if self.alpha is None else torch.sigmoid(self.alpha)

    def _project(self, skip):
        return skip if self.projection is None else self.projection(skip)

    def _combine(self, out, skip):
        if skip is None:
            return out
        skip = self._project(skip)
        if skip.shape != out.shape:
            raise ValueError(
                f"the branch output {tuple(out.shape)} and the skip {tuple(skip.shape)} differ in shape; pass a "
                "projection (e.g. a strided 1x1 convolution) for blocks that change shape"
            )
        return out + skip


def _check_input(x, branch: nn.Module) -> None:
    """ValueError naming x unless it is a floating-point tensor (B, C, ...) that ``branch`` takes: C equal to
    the in_channels (in_features) of the branch's first convolution (linear layer), the dtype and device of
    its parameters (any dtype under autocast)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        kind = f"dtype {x.dtype}, shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating-point tensor of shape (B, C, ...), got {kind}")
    first = next((m for m in branch.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
    if isinstance(first, nn.Conv2d) and (x.ndim != 4 or x.shape[1] != first.in_channels):
        raise ValueError(f"x must have shape (B, {first.in_channels}, H, W) (the branch's input channels), "
                         f"got {tuple(x.shape)}")
    if isinstance(first, nn.Linear) and x.shape[-1] != first.in_features:
        raise ValueError(f"x must have shape (B, {first.in_features}) (the branch's input features), "
                         f"got {tuple(x.shape)}")
    param = next((p for p in branch.parameters() if p.is_floating_point()), None)
    autocast = torch.is_autocast_enabled(x.device.type)  # mixed precision casts inside the branch
    if param is not None and (x.device != param.device or (x.dtype != param.dtype and not autocast)):
        raise ValueError(f"x is {x.dtype} on {x.device} but the branch's parameters are {param.dtype} on "
                         f"{param.device}; convert one of them (e.g. block.to(x.dtype))")


class GradResidual(_GatedSkip):
    r"""A residual block with a gradient skip: h(x) = F(x) + P(skip(x)), with g = J_F(x)^T 1 and
    g_hat = g / ||g||:

    ========================  =========================================================
    mode                      h(x)
    ========================  =========================================================
    ``"identity"``            F(x) + P(x)
    ``"none"``                F(x)
    ``"gradient"``            F(x) + P(g_hat)
    ``"identity+gradient"``   F(x) + P(x + g_hat)
    ``"convex"``              F(x) + P((1 - s(a)) x + s(a) g_hat)  (the paper's form)
    ``"gradmag"``             F(x) + P((1 - s(a)) x + s(a) ``|g_hat|``)  (ablation: magnitude, no sign)
    ========================  =========================================================

    s = sigmoid and a is a scalar per block (``alpha_init``; a Parameter unless ``learn_alpha=False``;
    ``alpha_init=-inf`` gives exactly the identity residual). ``normalize`` is ``"sample"`` (one norm per
    sample over all of C, H, W), ``"position"`` (per pixel, over C) or None. P is ``projection`` (default:
    none) and must be linear for the mix to mean what it says; shape-changing blocks need it.

    The gradient term: for a :class:`ConvBranch`, an ``nn.Sequential(Conv2d, activation, Conv2d)`` or an
    ``nn.Sequential(Linear, activation, Linear)`` with a known elementwise activation (ReLU, GELU, SiLU,
    tanh, ...), g = c conv1^T(s'(conv1 x + b1) * conv2^T 1) (resp. W1^T(s'(W1 x + b1) * W2^T 1)) from the
    forward pass's own pre-activation (``fast_path=True``); otherwise one vector-Jacobian product by
    autograd. The closed form also covers ``nn.Sequential(Conv2d, BatchNorm2d, activation, Conv2d[,
    BatchNorm2d])`` (ResNet's basic block), with each batch norm's statistics held fixed, i.e. batch norm
    taken as the per-channel affine map it applies in this pass (slope gamma / sqrt(var + eps)): in eval
    mode this is exactly J_F^T 1; in training mode it is J_F^T 1 without the terms through the batch
    statistics. Those matter: through a final training-mode batch norm sum_i F_i(x) is constant, so the full
    VJP (what the autograd path computes for such a branch) is zero up to rounding, and normalising it
    gives noise. By default g
    is a constant for backpropagation (stop-gradient): the branch's parameters and x get gradients from
    F(x) and the skip only, while a still gets one. ``second_order=True`` backpropagates through g too.
    Works in train and eval mode and under ``torch.no_grad()`` (the autograd path then enables grad
    locally and returns detached outputs).

    Args:
        branch: the residual branch F (any module mapping x to a tensor of the block's output shape).
        mode, alpha_init, learn_alpha, normalize, second_order: see above.
        projection: optional module P applied to the skip (e.g. ``nn.Conv2d(c_in, c_out, 1, stride=2,
            bias=False)``).
        fast_path: use the closed form when the branch allows it (set False to force autograd).

    Shapes: x (B, C, H, W) for convolutional branches, (B, d) for linear ones, any (B, C, ...) for the
    autograd path -> F(x)'s shape.

    Example:
        >>> block = GradResidual(ConvBranch(8), mode="convex", alpha_init=3.0)
        >>> block(torch.randn(2, 8, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(self, branch: nn.Module, mode: str = "convex", alpha_init: float = 0.0, learn_alpha: bool = True,
                 normalize: str | None = "sample", second_order: bool = False, projection: nn.Module | None = None,
                 fast_path: bool = True):
        super().__init__()
        if not isinstance(branch, nn.Module):
            raise ValueError(f"branch must be a torch.nn.Module, got {type(branch).__name__}")
        check_choice(mode, "residual mode", RESIDUAL_MODES)
        _check_normalize(normalize)
        if mode == "none" and projection is not None:
            raise ValueError("mode='none' has no skip, so a projection would be unused; pass projection=None")
        self.branch, self.mode, self.normalize = branch, mode, normalize
        self.second_order = bool(second_order)
        self._init_gate(mode in _GATED, alpha_init, learn_alpha, projection, branch)
        self._fast = _fast_parts(branch) if fast_path else None
        self._ones_cache: tuple | None = None

    @property
    def uses_fast_path(self) -> bool:
        """Whether g is computed in closed form (False: by autograd, or not at all for identity/none)."""
        return self._fast is not None and self.mode in _USES_GRADIENT

    def extra_repr(self):
        return (f"mode={self.mode!r}, normalize={self.normalize!r}, second_order={self.second_order}, "
                f"fast_path={self.uses_fast_path}")

    # ------------------------------------------------------------------------------------- gradient term
    def _branch_and_gradient(self, x):
        """(F(x), g(x)), g with a graph only if ``second_order`` and grad mode is on."""
        if self._fast is not None:
            return self._closed_form(x)
        grad_on = torch.is_grad_enabled()
        with torch.enable_grad():
            xi = x if (grad_on and x.requires_grad) else x.detach().requires_grad_(True)
            out = self.branch(xi)
            (g,) = torch.autograd.grad(out, xi, torch.ones_like(out), retain_graph=grad_on,
                                       create_graph=grad_on and self.second_order)
        if not grad_on:
            return out.detach(), g.detach()
        return out, (g if self.second_order else g.detach())

    @staticmethod
    def _adjoint_ones(conv2: nn.Conv2d, weight, out_weight, hidden_shape, out_shape):
        """conv2^T(v 1) of shape (1, hidden, H1, W1) for an output-channel weight v (a number or a vector),
        exact at the borders: conv2's weight summed over its outputs with the weights v, transposed-convolved
        with a ones map."""
        if isinstance(out_weight, torch.Tensor):
            summed = torch.einsum("o,oikl->ikl", out_weight, weight).unsqueeze(0)  # (1, hidden, k, k)
        else:
            summed = weight.sum(0, keepdim=True) * out_weight
        ones = torch.ones((1, 1, *out_shape), dtype=weight.dtype, device=weight.device)
        padding = [conv2.dilation[i] * (weight.shape[-2 + i] - 1) - conv2.padding[i] for i in range(2)]
        if conv2.stride == (1, 1) and min(padding) >= 0 and tuple(hidden_shape) == tuple(out_shape):
            # stride 1, same size: the adjoint is a correlation with the flipped kernel, and a direct
            # convolution from one channel is ~20x faster on CPU than a one-channel transposed convolution
            return F.conv2d(ones, summed.transpose(0, 1).flip(-2, -1), None, 1, tuple(padding), conv2.dilation)
        return _conv_transpose(ones, summed, conv2, hidden_shape)

    def _closed_form(self, x):
        conv1, norm1, act, times_derivative, conv2, norm2, scale = self._fast
        z = conv1(x)
        y = z if norm1 is None else norm1(z)
        o = conv2(act(y))
        out = o if norm2 is None else norm2(o)
        if scale != 1.0:
            out = out * scale
        track = self.second_order and torch.is_grad_enabled()
        with torch.set_grad_enabled(track):
            w1, w2 = (conv1.weight, conv2.weight) if track else (conv1.weight.detach(), conv2.weight.detach())
            y = y if track else y.detach()
            if type(conv1) is nn.Linear:  # g = W1^T (s'(z) * c W2^T 1)
                return out, times_derivative(y, w2.sum(0) * scale) @ w1
            if norm1 is None and norm2 is None:
                # c conv2^T 1 is reused while conv2's weight (object and version), the sizes, dtype and device
                # are unchanged, i.e. across evaluations and within a training step; never with a graph
                key = (w2._version, scale, z.shape[-2:], o.shape[-2:], w2.dtype, w2.device)
                cache = self._ones_cache
                if not track and cache is not None and cache[0] is conv2.weight and cache[1] == key:
                    adjoint_ones = cache[2]
                else:
                    adjoint_ones = self._adjoint_ones(conv2, w2, scale, z.shape[-2:], o.shape[-2:])
                    if not track:
                        self._ones_cache = (conv2.weight, key, adjoint_ones)
            else:  # batch norm: F = c BN2(conv2 s(BN1(conv1 x))) with each BN's statistics held fixed
                out_weight = scale if norm2 is None else scale * _norm_slope(norm2, o, track)
                adjoint_ones = self._adjoint_ones(conv2, w2, out_weight, z.shape[-2:], o.shape[-2:])
                if norm1 is not None:
                    adjoint_ones = adjoint_ones * _norm_slope(norm1, z, track)[:, None, None]
            g = _conv_transpose(times_derivative(y, adjoint_ones), w1, conv1, x.shape[-2:])
        return out, g

    def gradient_term(self, x: torch.Tensor) -> torch.Tensor:
        """g(x) = J_F(x)^T 1, the unnormalised gradient term (same shape as x), by the path the block uses."""
        _check_input(x, self.branch)
        return self._branch_and_gradient(x)[1]

    # ------------------------------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.branch)
        if self.mode not in _USES_GRADIENT:
            return self._combine(self.branch(x), None if self.mode == "none" else x)
        out, g = self._branch_and_gradient(x)
        g_hat = _normalize_field(g, self.normalize)
        if self.mode == "gradmag":
            g_hat = g_hat.abs()
        if self.mode == "gradient":
            skip = g_hat
        elif self.mode == "identity+gradient":
            skip = x + g_hat
        else:  # (1 - s) x + s g_hat in one fused op
            skip = torch.lerp(x, g_hat, self.gate().to(x.dtype))
        return self._combine(out, skip)
