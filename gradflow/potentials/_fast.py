"""Opt-in fast path for training gradient networks: a hand-written backward around fused kernels (private).

Every gradient network of this package has the form

    u = x W^T,    h = g(u; theta),    N(x) = h W + c

with one weight matrix W (M x d; for the modular nets the K module matrices stacked), an output bias c and a
per-unit "profile" g (the cascade of a C net, the module activations of an M net) acting on each row of u
with its own small parameters theta. Differentiating a loss L(N) by hand, with G = dL/dN (n x d):

    dh = G W^T,    (du, dtheta) = vjp_g(u; theta)(dh),
    dL/dW = h^T G + du^T x,    dL/dc = sum_n G_n,    dL/dx = du W.

So one training step costs exactly five matrix products of size n x M x d (two forward, three backward;
a sixth, du W, only when x itself requires a gradient) plus elementwise work on n x M entries. The
products run in ATen (BLAS); the elementwise forward and its vector-Jacobian product (derived by
``torch.func.vjp`` from the model's own profile, so it cannot drift from the model's definition) are each
compiled by ``torch.compile`` into fused loops. Plain autograd performs the same products but runs the
profile as many separate elementwise kernels and saves every intermediate.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.func import functional_call, vjp

from ._cascaded import _Cascaded
from ._modular import _Modular

__all__ = ["FastGradientField"]

_RECOMPILE_LIMIT = 64


class _Profile(nn.Module):
    """u (n, M) -> h = g(u) (n, M) for ``model``: its parameters other than ``weight`` and ``bias``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        model = self.model
        if isinstance(model, _Cascaded):
            return model.ridge_profile(u)
        # modular: z_k = c_k (u_k + b_k), h_k = w_k s(z_k)
        z = model._temperatures().unsqueeze(-1) * (u.unflatten(-1, model.hidden_bias.shape) + model.hidden_bias)
        return (model.module_activation(z) * model._module_weights().unsqueeze(-1)).flatten(-2)


class _Kernels:
    """The profile's forward and its vjp as functions of (u, *theta), compiled on first use if asked."""

    def __init__(self, profile: _Profile, names: tuple[str, ...], compile: bool):
        self.profile, self.names = profile, names
        self.compiled = compile
        if compile:
            self._forward_c = torch.compile(self._forward_eager, dynamic=False)
            self._backward_c = torch.compile(self._backward_eager, dynamic=False)

    def _call(self, u, theta):
        return functional_call(self.profile, dict(zip(self.names, theta)), (u,))

    def _forward_eager(self, u, *theta):
        return self._call(u, theta)

    def _backward_eager(self, u, dh, *theta):
        _, pullback = vjp(lambda u_, *theta_: self._call(u_, theta_), u, *theta)
        return pullback(dh)

    def _run(self, compiled_name: str, eager, *args):
        if self.compiled:
            try:
                # Every model structure (class, activation, depth) is one more compiled graph of the same
                # two functions: allow more than dynamo's default of 8 before it silently runs them eagerly.
                with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT):
                    return getattr(self, compiled_name)(*args)
            except Exception as err:  # any compiler failure: fall back to eager, once
                warnings.warn(f"torch.compile failed ({type(err).__name__}: {err}); FastGradientField "
                              "falls back to eager kernels", RuntimeWarning, stacklevel=4)
                self.compiled = False
        return eager(*args)

    def forward(self, u, *theta):
        return self._run("_forward_c", self._forward_eager, u, *theta)

    def backward(self, u, dh, *theta):
        return self._run("_backward_c", self._backward_eager, u, dh, *theta)


class _RidgeProduct(torch.autograd.Function):
    """N = g(x W^T; theta) W + c for x (n, d), W (M, d), c (d), with the hand-written backward above."""

    @staticmethod
    def forward(ctx, kernels: _Kernels, x, W, c, *theta):
        u = x @ W.T
        h = kernels.forward(u, *theta)
        ctx.kernels = kernels
        ctx.save_for_backward(x, W, u, h, *theta)
        return torch.addmm(c, h, W)

    @staticmethod
    @once_differentiable
    def backward(ctx, G):
        x, W, u, h, *theta = ctx.saved_tensors
        du, *dtheta = ctx.kernels.backward(u, G @ W.T, *theta)
        dW = torch.addmm(h.T @ G, du.T, x)
        dx = du @ W if ctx.needs_input_grad[1] else None
        return None, dx, dW, G.sum(0), *dtheta


class FastGradientField(nn.Module):
    r"""The gradient field of a gradient network with a fast, hand-written backward (opt-in training path).

    ``FastGradientField(model)(x)`` equals ``model(x)`` for a :class:`GradNetC`, :class:`MGradNetC`,
    :class:`GradNetM` or :class:`MGradNetM`, and its gradients with respect to the model's parameters (and
    to x) equal autograd's to rounding error, but a training step costs the five matrix products
    u = x W^T, N = h W, dh = G W^T, h^T G, du^T x (run by ATen) plus two fused elementwise kernels
    (the profile h = g(u) and its vector-Jacobian product, compiled by ``torch.compile``), instead of
    the many elementwise kernels of plain autograd. It shares the model's parameters: train it with
    :func:`gradflow.train.fit` (or any optimizer) and the model is trained.

    Limitations: the backward is not itself differentiable (losses that differentiate the field twice,
    e.g. with respect to x inside the loss, need the plain model); ``energy``, ``jacobian`` and the other
    methods stay on ``model``. Kernels are compiled for static shapes: the first call for each batch size
    and dtype compiles (seconds to a minute on a busy CPU); compiled kernels are shared by every model of
    the same structure. If ``torch.compile`` is unavailable or fails, a RuntimeWarning is issued and eager
    kernels are used (same results, no speed-up).

    Performance (benchmarks/results/speed.md, one CPU thread, batch 1024, ~1024 d parameters): at d = 256
    the matrix products dominate and a step costs 1.9x (C nets) and 1.3x (M nets) the products alone, the
    same as plain autograd; at d = 2 it speeds up the M nets' step 1.2-1.8x, while the 4-layer C nets stay
    bound by their transcendental work (one tanh per unit and layer, recomputed in the backward) and are
    not faster than plain autograd.

    Args:
        model: the gradient network (any activation, depth / number of modules, strong convexity).
        compile: compile the elementwise kernels with ``torch.compile`` (default True).

    Shapes: x (..., d) -> (..., d), validated as by the model.

    Example:
        >>> from gradflow.potentials import MGradNetC
        >>> from gradflow.potentials.fitting import gradient_loss
        >>> net = MGradNetC(4, width=16, depth=2)
        >>> fast = FastGradientField(net, compile=False)
        >>> x, g = torch.rand(8, 4), torch.rand(8, 4)
        >>> gradient_loss(fast, (x, g)).backward()
        >>> torch.allclose(fast(x), net(x)), net.weight.grad.shape
        (True, torch.Size([16, 4]))
    """

    def __init__(self, model: nn.Module, *, compile: bool = True):
        super().__init__()
        if not isinstance(model, (_Cascaded, _Modular)):
            raise ValueError(
                "model must be a gradient network (GradNetC, MGradNetC, GradNetM or MGradNetM) for "
                f"FastGradientField, got {type(model).__name__}"
            )
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be True or False, got {compile!r}")
        self.model = model
        profile = _Profile(model)
        self._theta_names = tuple(name for name, _ in profile.named_parameters()
                                  if name not in ("model.weight", "model.bias"))
        self._kernels = _Kernels(profile, self._theta_names, compile)

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def compiled(self) -> bool:
        """Whether the elementwise kernels are compiled (False after a fallback to eager)."""
        return self._kernels.compiled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        model._check(x)
        parameters = dict(self.named_parameters())
        theta = [parameters[name] for name in self._theta_names]
        W = model.weight.reshape(-1, model.dim)
        y = _RidgeProduct.apply(self._kernels, x.reshape(-1, model.dim), W, model.bias, *theta)
        y = y.reshape(x.shape)
        mu = getattr(model, "strong_convexity", 0.0)
        return y + mu * x if mu else y

    def extra_repr(self) -> str:
        return f"compiled={self.compiled}"
