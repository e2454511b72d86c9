r"""Regularisers R for inverse problems: learned gradient-network priors and classical baselines.

A prior maps image batches x (B, C, H, W) to ``cost(x)`` R(x) per image (B,) and ``grad(x)`` grad R(x)
(B, C, H, W), with ``lipschitz_bound()`` a certified L >= Lip(grad R) (the solvers' step sizes come from
it) and ``prox(v, tau)`` = argmin_x 1/2 ||x - v||^2 + tau R(x). ``is_convex`` says whether R is convex.

* :class:`GradNetPrior`: R(x) = sum_{i, pixels} G_i((W x)_i), a convolutional monotone gradient network:
  grad R(x) = W^T g(W x), W a bank of convolutions, W^T the transposed convolution with the same
  weights, g nondecreasing per channel (the cascaded mGradNet-C profile; depth 1 is the one-layer
  ridge form of CRR-NN). Convex by construction.
* :class:`GradStepPrior`: the same architecture with unconstrained (non-monotone) profiles: a
  non-convex potential g whose gradient step D = Id - grad g is a "gradient-step denoiser".
* :class:`TotalVariation`, :class:`Tikhonov`: classical baselines.

Example:
    >>> prior = GradNetPrior(n_filters=8, kernel_size=5)
    >>> x = torch.rand(2, 1, 16, 16)
    >>> prior.cost(x).shape, prior.grad(x).shape
    (torch.Size([2]), torch.Size([2, 1, 16, 16]))
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_choice, check_number, check_positive_int
from ..potentials import ConvergenceError, make_elementwise_activation
from ._checks import check_image, check_like

__all__ = ["GradNetPrior", "GradStepPrior", "Prior", "Tikhonov", "TotalVariation", "WeaklyConvexPrior",
           "finite_differences"]

_PROX_TOL = {torch.float64: 1e-9, torch.float32: 1e-5}


def _per_image_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


class Prior(nn.Module):
    """A regulariser R on image batches (B, C, H, W).

    Subclasses implement ``_cost``, ``_grad`` and ``lipschitz_bound``; ``prox`` defaults to an
    accelerated gradient inner solve. ``channels`` fixes C (None: any).
    """

    is_convex: bool = True
    channels: int | None = None

    def _check(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        check_image(x, name, self.channels)
        ref = next(iter(self.parameters()), None)
        if ref is not None:
            check_like(x, ref, name, "prior's parameter dtype")
        return x

    def _check_prox_arguments(self, v, tau, tol, max_iter) -> tuple[float, float]:
        """Validate the arguments of :meth:`prox` (shared by the overrides); return tau and tol (its default
        for None: 1e-5 in float32, 1e-9 in float64)."""
        self._check(v, "v")
        tau = check_number(tau, "tau", minimum=0.0)
        check_positive_int(max_iter, "max_iter")
        tol = _PROX_TOL.get(v.dtype, 1e-3) if tol is None else check_number(tol, "tol", minimum=0.0, strict=True)
        return tau, tol

    def cost(self, x: torch.Tensor) -> torch.Tensor:
        """R(x) per image, shape (B,)."""
        return self._cost(self._check(x))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """grad R(x), shape (B, C, H, W)."""
        return self._grad(self._check(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """grad R(x) (so a prior is a gradient field on images)."""
        return self.grad(x)

    def cost_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R(x) per image (B,), grad R(x) (B, C, H, W)) in one pass where the prior can share work (the
        learned priors compute their filter responses once); equal to (``cost(x)``, ``grad(x)``).

        Example:
            >>> value, g = Tikhonov("identity").cost_and_grad(torch.ones(1, 1, 2, 2))
            >>> float(value), g.shape
            (2.0, torch.Size([1, 1, 2, 2]))
        """
        return self._cost_and_grad(self._check(x))

    def _cost_and_grad(self, x):
        return self._cost(x), self._grad(x)

    def lipschitz_bound(self) -> torch.Tensor:
        """A certified bound L >= sup_x ||Hess R(x)||_2 (0-dim tensor)."""
        raise NotImplementedError

    def rho_bound(self) -> torch.Tensor:
        """A certified rho >= 0 with Hess R(x) >= -rho I for every x (0-dim tensor): R is rho-weakly convex,
        so 1/2 ||x - v||^2 + tau R(x) is (1 - tau rho)-strongly convex. 0 for convex priors; the
        non-convex :class:`GradStepPrior` has only rho = L.

        Example:
            >>> float(TotalVariation().rho_bound())
            0.0
        """
        return self.lipschitz_bound() if not self.is_convex else torch.zeros(())

    def prox(self, v: torch.Tensor, tau: float, *, tol: float | None = None, max_iter: int = 500) -> torch.Tensor:
        r"""prox_{tau R}(v) = argmin_x 1/2 ||x - v||^2 + tau R(x), per image.

        The inner problem h(x) = 1/2 ||x - v||^2 + tau R(x) is (1 - tau rho)-strongly convex and
        (1 + tau L)-smooth (rho = ``rho_bound()``: 0 for convex R; non-convex ones need tau rho < 1). It is
        solved by Nesterov's accelerated gradient with the certified step 1 / (1 + tau L) and momentum
        (sqrt(kappa) - 1) / (sqrt(kappa) + 1) from v, until ||grad h|| <= tol max(1, ||v||) for every
        image (default tol: 1e-5 in float32, 1e-9 in float64). Raises ConvergenceError after
        ``max_iter`` iterations. Differentiable through the iterations (for training).
        """
        tau, tol = self._check_prox_arguments(v, tau, tol, max_iter)
        rho = float(self.rho_bound().detach())
        if tau * rho >= 1:
            raise ValueError(f"prox of a non-convex prior needs tau * rho < 1 (rho = rho_bound(); for GradStepPrior "
                             f"rho = L, i.e. tau * L < 1), got tau * rho = {tau * rho:.3g}")
        x, residual = prox_iterations(self, v, tau, max_iter, tol)
        if residual > tol:
            raise ConvergenceError(
                f"prox did not converge in {max_iter} iterations: scaled gradient norm {residual:.3g} > tol {tol:.3g}",
                x.detach(), residual)
        return x


def prox_iterations(prior: Prior, v: torch.Tensor, tau: float, n_iter: int, tol: float | None = None,
                    x0: torch.Tensor | None = None):
    """At most ``n_iter`` accelerated gradient steps on 1/2 ||x - v||^2 + tau R(x) from x0 (default v),
    stopping early once the scaled gradient norm is <= ``tol`` (never with tol=None). Returns (x, residual);
    the residual is the worst scaled gradient norm at the last extrapolated point (inf if never measured)."""
    L = prior.lipschitz_bound()  # differentiated through when training
    smooth = 1.0 + tau * L
    strong = 1.0 - tau * float(prior.rho_bound().detach()) if not prior.is_convex else 1.0
    # non-convex priors with tau rho >= 1 (training only; prox() refuses them): plain gradient steps
    momentum = 0.0
    if strong > 0:
        q = math.sqrt(float(smooth.detach()) / strong)
        momentum = (q - 1.0) / (q + 1.0)
    scale = _per_image_norm(v).clamp_min(1.0)
    x_prev = x = v if x0 is None else x0
    residual = float("inf")
    for _ in range(n_iter):
        y = x + momentum * (x - x_prev)
        g = (y - v) + tau * prior._grad(y)
        if tol is not None:
            residual = float((_per_image_norm(g.detach()) / scale).max())
            if residual <= tol:
                return y, residual
        x_prev, x = x, y - g / smooth
    return x, residual


def _conv_norm_squared(weight: torch.Tensor, grid: int) -> torch.Tensor:
    r"""A certified bound on ||W||_2^2 for the multichannel convolution W with ``weight`` (m, C, k, k)
    evaluated where the kernel fits ("valid"), on images of any size.

    W is a restriction of the convolution on Z^2, whose squared norm is T* = sup_w lambda_max(M(w)) with
    M(w) = sum_i hat w_i(w)^* hat w_i(w) (C x C). For the unit v with v^* M(w*) v = T*, q(w) = v^* M(w) v
    is a nonnegative trigonometric polynomial of degree n = k - 1 per coordinate with maximum T* at w*,
    so grad q(w*) = 0 and, by Bernstein's inequality applied twice, every second derivative of q is at
    most n^2 T* in size. At the nearest point of a ``grid`` x ``grid`` frequency grid (|d_j| <= pi / grid)
    Taylor's theorem gives q >= T* (1 - 2 pi^2 n^2 / grid^2), hence
    T* <= (grid max of lambda_max) / (1 - 2 pi^2 n^2 / grid^2).
    """
    C, kh, kw = weight.shape[1:]
    n = max(kh, kw) - 1
    margin = 1.0 - 2.0 * (math.pi * n / grid) ** 2
    if margin <= 0:
        raise ValueError(f"frequency grid {grid} too coarse for kernels of size {max(kh, kw)}")
    w_hat = torch.fft.rfft2(weight, s=(grid, grid))  # (m, C, grid, grid // 2 + 1)
    if C == 1:
        top = w_hat.abs().square().sum(0).amax()
    else:
        gram = torch.einsum("mcuv,mduv->uvcd", w_hat.conj(), w_hat)
        top = torch.linalg.eigvalsh(gram).amax()
    return top / margin


def _reflect_pad_adjoint(v: torch.Tensor, p: int) -> torch.Tensor:
    """P^T v for P = F.pad(., (p,) * 4, mode="reflect") (no edge repetition): each padded row / column
    is added back onto the row / column it mirrors."""
    if p == 0:
        return v
    for dim in (-2, -1):
        n = v.shape[dim] - 2 * p
        inner = v.narrow(dim, p, n).clone()
        inner.narrow(dim, 1, p).add_(v.narrow(dim, 0, p).flip(dim))
        inner.narrow(dim, n - 1 - p, p).add_(v.narrow(dim, n + p, p).flip(dim))
        v = inner
    return v


#: numbers per row strip of filter responses in the inference path of the one-layer priors (cache-sized)
_STRIP_ELEMENTS = 1 << 19


def _add_conv_adjoint(out: torch.Tensor, g: torch.Tensor, w: torch.Tensor) -> None:
    """out += conv_transpose2d(g, w), in place, for g (B, m, H, W), w (m, C, k, k) and out (B, C, H + k - 1,
    W + k - 1): one matrix product gives the k^2 shifted images w_{:, c, i, j}^T g, which are added at their
    offsets (along rows first, then columns): a few times faster on CPUs than the native transposed
    convolution of many channels into few."""
    B, m, H, W = g.shape
    C, k = w.shape[1], w.shape[-1]
    col = torch.matmul(w.reshape(m, C * k * k).t(), g.reshape(B, m, H * W)).view(B, C, k, k, H, W)
    rows = g.new_zeros(B, C, k, H, W + k - 1)
    for j in range(k):
        rows[..., j:j + W] += col[:, :, :, j]
    for i in range(k):
        out[..., i:i + H, :] += rows[:, :, i]


def _fused_tanh_mixture(u, alpha, beta, c, act):
    r"""(sum of the ridges per image (B,), g(u)) for filter responses u (B, m, H, W) and a one-layer profile
    g = alpha s(z), z = beta (u + c), s(z) = a tanh z + b (z - tanh z) (a = 1, b = 0 for plain tanh), in a few
    passes over u (inference only; the scales are (m, 1, 1)).

    g = alpha (a - b) tanh z + alpha b z and G = alpha / beta (S(z) - S(beta c)) with S(z) = (a - b) log cosh z
    + b z^2 / 2. With q = 2 z and s = sigmoid(|q|) in [1/2, 1): tanh z = sign(q) (2 s - 1) and log cosh z =
    |q| / 2 - log s - log 2, so one sigmoid gives the profile and the cost needs only per-channel sums of |q|,
    log s and q^2."""
    a, b = act.weights() if hasattr(act, "weights") else (torch.ones_like(alpha), torch.zeros_like(alpha))
    q = torch.addcmul(2.0 * beta * c, u, 2.0 * beta)
    n = q.shape[-2] * q.shape[-1]
    s_qq = torch.linalg.vector_norm(q, dim=(-2, -1)).square()
    s = q.abs()
    s_abs = s.sum((-2, -1))
    s = torch.sigmoid_(s)
    s_log = torch.log(s).sum((-2, -1))  # (B, m)
    am, bm, al, be, z0 = (t.reshape(-1) for t in (a, b, alpha, beta, beta * c))
    lc_sum = 0.5 * s_abs - s_log - n * math.log(2.0)
    lc0 = n * (z0.abs() - F.logsigmoid(2.0 * z0.abs()) - math.log(2.0))
    ridges = al / be * ((am - bm) * (lc_sum - lc0) + 0.5 * bm * (0.25 * s_qq - n * z0.square()))
    g = s.mul_(2.0).sub_(1.0).copysign_(q).mul_(alpha * (a - b)).addcmul_(q, 0.5 * alpha * b)
    return ridges.sum(1), g


class _ConvRidge(Prior):
    r"""R(x) = sum_{i, pixels} G_i((W x)_i) with g_i = G_i' the cascaded profile of depth L applied per
    channel to u = W x:

        z_0 = beta_0 (u + b_0),  z_l = beta_l (u + b_l) + alpha_{l-1} s_{l-1}(z_{l-1}),
        g(u) = alpha_{L-1} s_{L-1}(z_{L-1})

    with beta = exp(log_beta) > 0 and, for the convex prior, alpha = exp(log_alpha) > 0 and s
    nondecreasing (alpha and the activation weights are free otherwise), so grad R(x) = W^T g(W x) and
    Hess R(x) = W^T diag(g'(W x)) W.
    """

    def __init__(self, channels, n_filters, kernel_size, depth, activation, zero_mean, cost_nodes,
                 frequency_grid, monotone, hidden_channels=(), boundary="reflect"):
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        self.n_filters = m = check_positive_int(n_filters, "n_filters")
        self.kernel_size = k = check_positive_int(kernel_size, "kernel_size")
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {k}")
        self.boundary = check_choice(boundary, "boundary", ("reflect", "valid"))
        self.hidden_channels = tuple(check_positive_int(c, "hidden_channels entry") for c in hidden_channels)
        n_factors = len(self.hidden_channels) + 1
        if (k - 1) % n_factors:
            raise ValueError(f"kernel_size - 1 = {k - 1} must be divisible by the number of composed convolutions "
                             f"{n_factors} (len(hidden_channels) + 1)")
        s = (k - 1) // n_factors + 1  # each factor's kernel size: the composition has size k
        self.depth = L = check_positive_int(depth, "depth")
        self.activation = activation
        self.zero_mean = bool(zero_mean)
        if self.zero_mean and k * k * self.channels == 1:
            raise ValueError("zero-mean 1x1 filters on one channel are identically zero: use kernel_size > 1 "
                             "or zero_mean=False")
        self.cost_nodes = check_positive_int(cost_nodes, "cost_nodes")
        self.frequency_grid = check_positive_int(frequency_grid, "frequency_grid")
        self._monotone = monotone
        self.is_convex = monotone
        self.activations = nn.ModuleList(make_elementwise_activation(activation, (m, 1, 1), monotone)
                                         for _ in range(L))
        ins = (self.channels, *self.hidden_channels)
        # W = W_n o ... o W_1 (valid convolutions of size s each): the factors before the last one
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(c_out, c_in, s, s) / math.sqrt(c_in * s * s))
            for c_in, c_out in zip(ins, self.hidden_channels))
        w = torch.randn(m, ins[-1], s, s)
        if self.zero_mean and not self.hidden_channels:
            w = w - w.mean(dim=(1, 2, 3), keepdim=True)
        self.weight = nn.Parameter(w / _per_image_norm(w).view(m, 1, 1, 1))  # unit-norm filters
        if self.hidden_channels:  # rescale the last factor so that the composed filters have unit norm
            with torch.no_grad():
                self.weight /= _per_image_norm(self._composed()).view(m, 1, 1, 1)
        self.hidden_bias = nn.Parameter(torch.zeros(L, m, 1, 1) if L == 1 else 0.1 * torch.randn(L, m, 1, 1))
        # log-parameterised scales (Adam moves them multiplicatively): beta = 10 puts the profiles' knee
        # near the responses of noise of std ~0.1 on a 0-1 image; alpha beta = 0.1 starts with a gentle
        # slope. The non-convex prior keeps alpha's sign free.
        self.log_beta = nn.Parameter(torch.full((L, m, 1, 1), math.log(10.0)))
        if monotone:
            self.log_alpha = nn.Parameter(torch.full((L, m, 1, 1), math.log(0.01)))
        else:
            self.alpha = nn.Parameter(torch.full((L, m, 1, 1), 0.01))

    def _composed(self) -> torch.Tensor:
        """The kernel (m, C, k, k) of the composition W_n o ... o W_1 of the factors (the cross-correlation
        by b after the one by a is the one by the full convolution a * b, summed over inner channels)."""
        w = None
        for factor in (*self.factors, self.weight):
            w = factor if w is None else F.conv_transpose2d(w.transpose(0, 1), factor.transpose(0, 1)).transpose(0, 1)
        return w

    def filters(self) -> torch.Tensor:
        """The convolution bank W (m, C, k, k) (zero-mean filters if ``zero_mean``); with ``hidden_channels``
        the composed kernel of the factor convolutions."""
        w = self._composed() if self.hidden_channels else self.weight
        return w - w.mean(dim=(1, 2, 3), keepdim=True) if self.zero_mean else w

    def _scales(self):
        alpha = self.log_alpha.exp() if self._monotone else self.alpha
        return alpha, self.log_beta.exp()

    def _check_size(self, x):
        k = self.kernel_size
        smallest = k if self.boundary == "valid" else (k + 1) // 2
        if x.shape[-2] < smallest or x.shape[-1] < smallest:
            raise ValueError(f"images must be at least {smallest}x{smallest} (kernel size {k}, boundary "
                             f"{self.boundary!r}), got {x.shape[-2]}x{x.shape[-1]}")

    def _conv(self, x, w):
        k = self.kernel_size
        self._check_size(x)
        if self.boundary == "reflect" and k > 1:
            x = F.pad(x, (k // 2,) * 4, mode="reflect")
        return F.conv2d(x, w)

    def _conv_adjoint(self, u, w):
        if torch.is_grad_enabled() and (u.requires_grad or w.requires_grad):
            v = F.conv_transpose2d(u, w)
        else:  # the faster shift-add form (see _add_conv_adjoint)
            v = u.new_zeros(u.shape[0], w.shape[1], u.shape[-2] + w.shape[-2] - 1, u.shape[-1] + w.shape[-1] - 1)
            _add_conv_adjoint(v, u, w)
        return _reflect_pad_adjoint(v, self.kernel_size // 2) if self.boundary == "reflect" else v

    def profile(self, u: torch.Tensor) -> torch.Tensor:
        """g(u) for filter responses u (..., m, H, W) (per channel)."""
        alpha, beta = self._scales()
        b = self.hidden_bias
        z = beta[0] * (u + b[0])
        for l in range(1, self.depth):
            z = beta[l] * (u + b[l]) + alpha[l - 1] * self.activations[l - 1](z)
        return alpha[-1] * self.activations[-1](z)

    def _slope_bound(self) -> torch.Tensor:
        """Per channel, sup_u |g_i'(u)| (m,), from |dz_l/du| <= |beta_l| + |alpha_{l-1}| sup|s'| |dz_{l-1}/du|."""
        alpha, beta = self._scales()
        bound = beta[0].abs()
        for l in range(1, self.depth):
            bound = beta[l].abs() + alpha[l - 1].abs() * self.activations[l - 1].sup_abs_derivative() * bound
        return (alpha[-1].abs() * self.activations[-1].sup_abs_derivative() * bound).flatten()

    def lipschitz_bound(self) -> torch.Tensor:
        """||D^(1/2) W||_2^2 >= ||W^T diag(g') W|| with D = diag(sup |g_i'|), the squared norm of the
        scaled convolution bank bounded in the frequency domain (see ``_conv_norm_squared``), times
        ||P||^2 <= 4 for the reflect padding P."""
        return self._scaled_norm_squared(self._slope_bound())

    def _scaled_norm_squared(self, d: torch.Tensor) -> torch.Tensor:
        """A certified bound on ||diag(d)^(1/2) W P||^2 for per-channel d >= 0 (m,) (P the padding)."""
        bound = _conv_norm_squared(d.sqrt().view(-1, 1, 1, 1) * self.filters(), self.frequency_grid)
        # reflect padding P repeats each pixel at most twice along each axis: ||P||^2 <= 4
        return 4.0 * bound if self.boundary == "reflect" and self.kernel_size > 1 else bound

    def _grad(self, x):
        w = self.filters()
        if not torch.is_grad_enabled():
            return self._strips(x, w, need_cost=False)[1]
        return self._conv_adjoint(self.profile(self._conv(x, w)), w)

    def _cost_and_grad(self, x):
        w = self.filters()
        if self._fusable() and not torch.is_grad_enabled():
            return self._strips(x, w, need_cost=True)
        u = self._conv(x, w)
        return self._ridge_cost(u), self._conv_adjoint(self.profile(u), w)

    def _fusable(self) -> bool:
        """Whether :meth:`_fused_ridge` applies: a one-layer profile s = a tanh + b (id - tanh)."""
        return self.depth == 1 and self.activation in ("tanh", "weighted_tanh")

    def _strips(self, x, w, need_cost):
        """Inference-only (R(x) or None, grad R(x)), row strip by row strip: each strip's filter responses
        (about ``_STRIP_ELEMENTS`` numbers) stay in cache through the convolution, the profile (fused with the
        cost by :meth:`_fused_ridge` when ``need_cost``) and the adjoint, accumulated into the padded output by
        :func:`_add_conv_adjoint`. The same sums as the whole-image evaluation, in another order."""
        k = self.kernel_size
        self._check_size(x)
        xp = F.pad(x, (k // 2,) * 4, mode="reflect") if self.boundary == "reflect" and k > 1 else x
        rows_out = xp.shape[-2] - k + 1
        out = torch.zeros_like(xp)
        rows = max(1, _STRIP_ELEMENTS // (x.shape[0] * self.n_filters * xp.shape[-1]))
        value = 0.0 if need_cost else None
        for r0 in range(0, rows_out, rows):
            r1 = min(r0 + rows, rows_out)
            u = F.conv2d(xp[..., r0:r1 + k - 1, :], w)
            if need_cost:
                strip_value, g = self._fused_ridge(u)
                value = value + strip_value
            else:
                g = self.profile(u)
            _add_conv_adjoint(out[..., r0:r1 + k - 1, :], g, w)
        if self.boundary == "reflect":
            out = _reflect_pad_adjoint(out, k // 2)
        return value, out

    def _fused_ridge(self, u):
        """(R per image, g(u)) of the one-layer profile (:func:`_fused_tanh_mixture`), inference only."""
        alpha, beta = (t[0] for t in self._scales())
        return _fused_tanh_mixture(u, alpha, beta, self.hidden_bias[0], self.activations[0])

    def _cost(self, x):
        return self._ridge_cost(self._conv(x, self.filters()))

    def _ridge_cost(self, u):
        if self.depth == 1:
            alpha, beta = self._scales()
            b = self.hidden_bias[0]
            # G(u) = alpha / beta (S(beta (u + b)) - S(beta b)), so that G(0) = 0
            act = self.activations[0]
            ridges = alpha[0] / beta[0] * (act.antiderivative(beta[0] * (u + b)) - act.antiderivative(beta[0] * b))
        else:
            ridges = self._tabulated_antiderivative(u)
        return ridges.flatten(1).sum(1)

    def _tabulated_antiderivative(self, u: torch.Tensor) -> torch.Tensor:
        """G(u) = int_0^u g for depth > 1: G is tabulated per channel on a uniform grid of ``cost_nodes``
        cells spanning [min(u, 0), max(u, 0)] (4-point Gauss-Legendre per cell), then evaluated by cubic
        Hermite interpolation with the exact slopes g: accurate to O(h^4 sup |g'''|). The derivative in
        u is exactly g(u) (through a zero-valued correction term) and parameter gradients flow through
        the table; second derivatives of ``cost`` are not exact (use ``grad`` for the field)."""
        n = self.cost_nodes
        u_d = u.detach()
        lo = min(float(u_d.min()), 0.0)
        hi = max(float(u_d.max()), 0.0)
        h = max(hi - lo, 1e-12) / n
        m = u.shape[1]
        xi, wi = np.polynomial.legendre.leggauss(4)
        xi = torch.as_tensor(xi, dtype=u.dtype, device=u.device)
        wi = torch.as_tensor(wi, dtype=u.dtype, device=u.device)
        knots = lo + h * torch.arange(n + 1, dtype=u.dtype, device=u.device)
        inner = (knots[:-1, None] + 0.5 * h * (1 + xi)).reshape(-1)  # (4n,)
        grid = torch.cat([knots, inner]).expand(m, -1).unsqueeze(-1)  # (m, 5n + 1, 1): the profile's layout
        values = self.profile(grid).squeeze(-1)
        g_knots, g_inner = values[:, : n + 1], values[:, n + 1:].reshape(m, n, 4)
        cells = 0.5 * h * (g_inner * wi).sum(-1)  # (m, n): the integral over each cell
        G = torch.cat([cells.new_zeros(m, 1), cells.cumsum(1)], dim=1)  # from lo, at the knots

        def hermite(v):  # G at v (B, m, H, W), channel by channel
            pos = ((v - lo) / h).clamp(0, n)
            idx = pos.floor().clamp(max=n - 1).long()
            flat = idx.movedim(1, 0).reshape(m, -1)
            t = (pos - idx).movedim(1, 0).reshape(m, -1)
            G0, G1 = G.gather(1, flat), G.gather(1, flat + 1)
            d0, d1 = g_knots.gather(1, flat) * h, g_knots.gather(1, flat + 1) * h
            t2, t3 = t * t, t * t * t
            out = (2 * t3 - 3 * t2 + 1) * G0 + (t3 - 2 * t2 + t) * d0 + (3 * t2 - 2 * t3) * G1 + (t3 - t2) * d1
            return out.reshape(m, v.shape[0], *v.shape[2:]).movedim(0, 1)

        zero = hermite(torch.zeros(1, m, 1, 1, dtype=u.dtype, device=u.device))
        return hermite(u_d) - zero + (u - u_d) * self.profile(u_d)

    def deepen(self, depth: int, coupling: float = 1e-3):
        r"""A copy with a cascaded profile of ``depth`` layers that starts as this one-layer prior.

        The filters are shared and the last layer takes this prior's bias, scales and activation weights,
        so g(u) = alpha s(beta (u + b) + alpha_{L-2} s_{L-2}(z_{L-2})): the earlier layers (fresh) reach the
        profile only through the coupling alpha_{L-2} = ``coupling``, and per entry
        |g(u) - g_ridge(u)| <= alpha sup|s'| coupling |s_{L-2}(z_{L-2})|. Training the copy then refines the
        ridge prior (how the shipped cascade is made: a deep prior that starts where the one-layer one ended).

        Example:
            >>> ridge = GradNetPrior(n_filters=4, kernel_size=3)
            >>> deep = ridge.deepen(3)
            >>> x = torch.rand(1, 1, 8, 8)
            >>> bool((deep.grad(x) - ridge.grad(x)).abs().max() < 1e-3 * ridge.grad(x).abs().max())
            True
        """
        if self.depth != 1:
            raise ValueError(f"deepen starts from a one-layer (depth 1) prior, this one has depth {self.depth}")
        depth = check_positive_int(depth, "depth", minimum=2)
        if not (0 < coupling and math.isfinite(coupling)):
            raise ValueError(f"coupling must be a finite number > 0, got {coupling!r}")
        deep = type(self)(self.channels, self.n_filters, self.kernel_size, depth, self.activation,
                          hidden_channels=self.hidden_channels, zero_mean=self.zero_mean, cost_nodes=self.cost_nodes,
                          frequency_grid=self.frequency_grid, boundary=self.boundary)
        deep = deep.to(self.weight)
        with torch.no_grad():
            for mine, theirs in zip((*self.factors, self.weight), (*deep.factors, deep.weight)):
                theirs.copy_(mine)
            for name in ("hidden_bias", "log_beta", "log_alpha" if self._monotone else "alpha"):
                getattr(deep, name)[-1] = getattr(self, name)[0]
            if self._monotone:
                deep.log_alpha[-2] = math.log(coupling)
            else:
                deep.alpha[-2] = coupling
            deep.activations[-1].load_state_dict(self.activations[0].state_dict())
        return deep

    @classmethod
    def pretrained(cls, name: str | None = None):
        """A shipped prior by name (see ``list_pretrained``), float32 on the CPU in eval mode; no name gives
        the default Gaussian-denoising convex prior for 0-1 grayscale images. ``prior.sigma`` is the
        noise level it was trained at (it denoises at that level with lam = 1)."""
        from ._pretrained import load_pretrained

        return load_pretrained(name, cls)

    def extra_repr(self):
        hidden = f", hidden_channels={self.hidden_channels}" if self.hidden_channels else ""
        return (f"channels={self.channels}, n_filters={self.n_filters}, kernel_size={self.kernel_size}{hidden}, "
                f"depth={self.depth}, activation={self.activation!r}")


class GradNetPrior(_ConvRidge):
    r"""Convex learned prior whose gradient is a convolutional monotone gradient network.

    R(x) = sum_{i=1}^m sum_{pixels} G_i((w_i * x)), grad R(x) = W^T g(W x), Hess R = W^T diag(g') W PSD:

    * W: ``n_filters`` convolutions (m, C, k, k) of the image extended by reflection (``boundary="reflect"``,
      the default: every pixel is regularised like an interior one) or only where the kernel fits
      (``"valid"``: pixels near the border are seen by fewer filter windows), zero-mean filters by default
      (R is then invariant to adding a constant); W^T is the exact adjoint (``conv_transpose2d`` with the
      same weights, then the reflected border folded back);
    * g: per-channel nondecreasing profile, the cascaded mGradNet-C profile of ``depth`` layers with
      ``activation`` ("weighted_tanh", learnable, by default; "tanh", "sigmoid"); depth 1 is the
      one-layer convex ridge regulariser of CRR-NN, deeper cascades give richer profiles.

    ``lipschitz_bound()`` is certified (frequency-domain bound of ||D^(1/2) W||^2, D = sup g', times 4 for
    the reflection, which repeats a pixel at most twice along each axis); ``cost``
    is exact for depth 1 and tabulated per channel (cubic Hermite, exact slopes) otherwise. The scale of R is
    learned, so a prior trained by :func:`train_prior` at noise level sigma denoises with lam = 1.
    ``GradNetPrior.pretrained(name)`` loads a shipped prior (see ``list_pretrained``).

    Args:
        channels: image channels C.
        n_filters: m, the number of convolutions.
        kernel_size: odd k.
        hidden_channels: W as the composition of ``len(hidden_channels) + 1`` valid convolutions of size
            (k - 1) / (len + 1) + 1 with these intermediate channel counts (CRR-NN's parameterisation: a
            large bank, e.g. 13x13, trained through small factors); empty: one k x k convolution.
        depth: cascade layers of the profile (1: ridge form).
        zero_mean: project filters to zero mean.
        boundary: "reflect" (default) or "valid" (see above).
        cost_nodes: cells of the table of the ridge antiderivatives used by ``cost`` for depth > 1.
        frequency_grid: FFT grid of the Lipschitz bound (within a factor 1 / (1 - 2 (pi (k-1) / grid)^2)
            of the exact constant).

    Example:
        >>> prior = GradNetPrior(n_filters=8, kernel_size=5, depth=2).double()
        >>> v = torch.rand(1, 1, 12, 12, dtype=torch.float64)
        >>> x = prior.prox(v, 0.5)
        >>> bool(((x - v) + 0.5 * prior.grad(x)).abs().max() < 1e-6)
        True
    """

    def __init__(self, channels: int = 1, n_filters: int = 32, kernel_size: int = 7, depth: int = 1,
                 activation: str = "weighted_tanh", *, hidden_channels=(), zero_mean: bool = True,
                 cost_nodes: int = 1024, frequency_grid: int = 128, boundary: str = "reflect"):
        super().__init__(channels, n_filters, kernel_size, depth, activation, zero_mean, cost_nodes,
                         frequency_grid, monotone=True, hidden_channels=hidden_channels, boundary=boundary)


class GradStepPrior(_ConvRidge):
    r"""Non-convex learned potential g for a gradient-step denoiser D = Id - grad g (Hurault et al. 2022).

    Same architecture as :class:`GradNetPrior` (grad g = W^T g(W x)) with unconstrained profile scales
    and activation weights, so g may be non-convex; ``lipschitz_bound()`` still bounds Lip(grad g), which
    makes plug-and-play iterations (``solve(..., method="pnp")``) provably convergent with step
    1 / (lam L). ``prox(v, tau)`` needs tau L < 1.

    Example:
        >>> g = GradStepPrior(n_filters=8, kernel_size=5)
        >>> x = torch.rand(1, 1, 16, 16)
        >>> g.denoise(x).shape
        torch.Size([1, 1, 16, 16])
    """

    def __init__(self, channels: int = 1, n_filters: int = 32, kernel_size: int = 7, depth: int = 1,
                 activation: str = "weighted_tanh", *, hidden_channels=(), zero_mean: bool = True,
                 cost_nodes: int = 1024, frequency_grid: int = 128, boundary: str = "reflect"):
        super().__init__(channels, n_filters, kernel_size, depth, activation, zero_mean, cost_nodes,
                         frequency_grid, monotone=False, hidden_channels=hidden_channels, boundary=boundary)

    def denoise(self, x: torch.Tensor) -> torch.Tensor:
        """The gradient-step denoiser D(x) = x - grad g(x)."""
        return x - self.grad(x)


class WeaklyConvexPrior(_ConvRidge):
    r"""Weakly convex learned prior: a convolutional ridge gradient network whose profile is a convex part
    minus a bounded one, with a certified lower bound on its Hessian.

    R(x) = sum_{i, pixels} (G_i^+ - G_i^-)((W x)_i), grad R(x) = W^T (g^+ - g^-)(W x) with two nondecreasing
    one-layer profiles g^{+/-}(u) = alpha^{+/-} s^{+/-}(beta^{+/-} (u + c^{+/-})) (``activation``, learnable
    weighted tanh by default) and W as in :class:`GradNetPrior`. Since 0 <= (g^{+/-})' <= d^{+/-} =
    alpha^{+/-} beta^{+/-} sup s', Hess R = W^T diag(g^+' - g^-') W lies between -W^T diag(d^-) W and
    W^T diag(d^+) W, so

    * ``rho_bound()`` = ||diag(d^-)^(1/2) W||^2 >= -lambda_min(Hess R) (the weak-convexity modulus rho);
    * ``lipschitz_bound()`` = max(||diag(d^+)^(1/2) W||^2, rho) >= ||Hess R||,

    both certified like :meth:`GradNetPrior.lipschitz_bound`. The concave part is rescaled so that rho never
    exceeds ``rho_max``: 1/2 ||x - y||^2 + lam R(x) is then (1 - lam rho)-strongly convex for lam < 1 / rho
    (denoising has a unique minimiser and the solvers converge to it), as in the weakly convex ridge
    regularisers of Goujon et al. (2024). ``is_convex`` is False; the solvers report whether the objective
    is certified convex (``SolveResult.convex``).

    Args:
        channels, n_filters, kernel_size, zero_mean, boundary, frequency_grid, activation: as
            :class:`GradNetPrior` (the profiles have one layer).
        rho_max: the largest rho the concave part may reach (> 0).

    Example:
        >>> prior = WeaklyConvexPrior(n_filters=8, kernel_size=5, rho_max=0.5)
        >>> x = torch.rand(1, 1, 16, 16)
        >>> bool(prior.rho_bound() <= 0.5 + 1e-6), prior.grad(x).shape
        (True, torch.Size([1, 1, 16, 16]))
    """

    def __init__(self, channels: int = 1, n_filters: int = 32, kernel_size: int = 7,
                 activation: str = "weighted_tanh", *, rho_max: float = 0.9, zero_mean: bool = True,
                 frequency_grid: int = 128, boundary: str = "reflect"):
        super().__init__(channels, n_filters, kernel_size, 1, activation, zero_mean, 1, frequency_grid,
                         monotone=True, boundary=boundary)
        self.rho_max = check_number(rho_max, "rho_max", minimum=0.0, strict=True)
        self.is_convex = False
        self._scales_cache = None
        m = self.n_filters
        self.concave_activation = make_elementwise_activation(activation, (m, 1, 1), True)
        self.concave_bias = nn.Parameter(torch.zeros(m, 1, 1))
        # a gentle start: a wide concave part (beta 2.5) of small amplitude
        self.concave_log_beta = nn.Parameter(torch.full((m, 1, 1), math.log(2.5)))
        self.concave_log_alpha = nn.Parameter(torch.full((m, 1, 1), math.log(1e-3)))

    def _concave_raw_slope(self) -> torch.Tensor:
        alpha, beta = self.concave_log_alpha.exp(), self.concave_log_beta.exp()
        return (alpha * beta * self.concave_activation.sup_abs_derivative()).flatten()

    def _concave_scales(self):
        """(alpha^-, beta^-) (m, 1, 1), alpha^- shrunk so that the certified rho is at most ``rho_max``
        (remembered between calls without autograd while no parameter changes)."""
        key = None
        if not torch.is_grad_enabled():
            key = tuple((id(p), p._version) for p in self.parameters())
            if self._scales_cache is not None and self._scales_cache[0] == key:
                return self._scales_cache[1]
        raw = self._scaled_norm_squared(self._concave_raw_slope())
        shrink = torch.clamp(self.rho_max / raw, max=1.0)
        scales = self.concave_log_alpha.exp() * shrink, self.concave_log_beta.exp()
        if key is not None:
            self._scales_cache = (key, scales)
        return scales

    def _concave_profile(self, u):
        alpha, beta = self._concave_scales()
        return alpha * self.concave_activation(beta * (u + self.concave_bias))

    def profile(self, u: torch.Tensor) -> torch.Tensor:
        """g(u) = g^+(u) - g^-(u) for filter responses u (..., m, H, W)."""
        return super().profile(u) - self._concave_profile(u)

    def rho_bound(self) -> torch.Tensor:
        """rho = ||diag(d^-)^(1/2) W P||^2 (<= ``rho_max``): Hess R >= -rho I."""
        alpha, beta = self._concave_scales()
        d = (alpha * beta * self.concave_activation.sup_abs_derivative()).flatten()
        return self._scaled_norm_squared(d)

    def lipschitz_bound(self) -> torch.Tensor:
        """max(||diag(d^+)^(1/2) W P||^2, rho) >= ||Hess R(x)|| for every x."""
        return torch.maximum(super().lipschitz_bound(), self.rho_bound())

    def _ridge_cost(self, u):
        alpha, beta = self._concave_scales()
        act, c = self.concave_activation, self.concave_bias
        concave = alpha / beta * (act.antiderivative(beta * (u + c)) - act.antiderivative(beta * c))
        return super()._ridge_cost(u) - concave.flatten(1).sum(1)

    def _fused_ridge(self, u):
        convex_cost, g = super()._fused_ridge(u)
        alpha, beta = self._concave_scales()
        concave_cost, g_minus = _fused_tanh_mixture(u, alpha, beta, self.concave_bias, self.concave_activation)
        return convex_cost - concave_cost, g.sub_(g_minus)

    def deepen(self, depth: int, coupling: float = 1e-3):
        """Not available: the weakly convex prior's profiles have one layer (raises NotImplementedError)."""
        raise NotImplementedError("WeaklyConvexPrior has one-layer profiles")

    @classmethod
    def from_convex(cls, prior: GradNetPrior, **options) -> WeaklyConvexPrior:
        """A weakly convex prior whose convex part is the one-layer ``prior`` (same filters, profile and
        boundary) and whose concave part is wide (beta^- = 2.5) with rho = ``rho_max`` / 2: the starting point of
        the shipped weakly convex prior.

        Example:
            >>> ridge = GradNetPrior(n_filters=4, kernel_size=3)
            >>> wc = WeaklyConvexPrior.from_convex(ridge)
            >>> x = torch.rand(1, 1, 8, 8)
            >>> round(float(wc.rho_bound() / wc.rho_max), 4)
            0.5
        """
        if not isinstance(prior, GradNetPrior) or prior.depth != 1 or prior.hidden_channels:
            raise ValueError("from_convex needs a one-layer GradNetPrior without hidden_channels")
        wc = cls(prior.channels, prior.n_filters, prior.kernel_size, prior.activation, zero_mean=prior.zero_mean,
                 frequency_grid=prior.frequency_grid, boundary=prior.boundary, **options).to(prior.weight)
        wc.load_state_dict(prior.state_dict(), strict=False)  # every key but the concave part's
        with torch.no_grad():  # the concave part's amplitude: half the allowed rho
            raw = float(wc._scaled_norm_squared(wc._concave_raw_slope()))
            wc.concave_log_alpha += math.log(0.5 * wc.rho_max / raw)
        return wc

    def extra_repr(self):
        return super().extra_repr() + f", rho_max={self.rho_max:g}"


def finite_differences(x: torch.Tensor) -> torch.Tensor:
    """Forward differences with Neumann boundary, D x of shape (B, C, 2, H, W) (vertical, horizontal);
    the last row / column of each difference is zero. ||D||^2 <= 8."""
    dv = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    dh = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    return torch.stack((dv, dh), dim=2)


def _finite_differences_adjoint(p: torch.Tensor) -> torch.Tensor:
    """D^T p (= minus the discrete divergence) for p (B, C, 2, H, W)."""
    pv, ph = p[:, :, 0, :-1, :], p[:, :, 1, :, :-1]
    return F.pad(pv, (0, 0, 1, 0)) - F.pad(pv, (0, 0, 0, 1)) + F.pad(ph, (1, 0)) - F.pad(ph, (0, 1))


class TotalVariation(Prior):
    r"""Isotropic total variation TV(x) = sum_pixels ||(D x)_pixel||_2 (forward differences, Neumann).

    With ``eps = 0`` (default) R is the exact, non-smooth TV: ``prox`` is exact up to ``tol`` (the fast
    gradient projection of Beck & Teboulle on the dual), ``grad`` is not defined (use a proximal method:
    ``solve(..., method="fista")``). With ``eps > 0``, R is the smoothed TV sum sqrt(||D x||^2 + eps^2) - eps,
    differentiable with Lipschitz gradient (L = 8 / eps).

    Example:
        >>> tv = TotalVariation()
        >>> float(tv.cost(torch.ones(1, 1, 4, 4)))
        0.0
    """

    def __init__(self, eps: float = 0.0):
        super().__init__()
        self.eps = check_number(eps, "eps", minimum=0.0)

    def _cost(self, x):
        d = finite_differences(x).square().sum(2)
        return ((d + self.eps**2).sqrt() - self.eps).flatten(1).sum(1)

    def _grad(self, x):
        if self.eps == 0:
            raise ValueError("TotalVariation(eps=0) is not differentiable: use eps > 0 or a proximal solver "
                             "(method='fista' or 'pgd')")
        d = finite_differences(x)
        return _finite_differences_adjoint(d / (d.square().sum(2, keepdim=True) + self.eps**2).sqrt())

    def lipschitz_bound(self) -> torch.Tensor:
        return torch.tensor(8.0 / self.eps if self.eps > 0 else math.inf)

    def prox(self, v, tau, *, tol=None, max_iter=500):
        """prox_{tau TV}(v); exact TV (eps = 0): v - tau D^T p with p the dual solution, by fast gradient
        projection with step 1 / (8 tau) until the primal iterate moves by <= tol max(1, ||v||)."""
        if self.eps > 0:
            return super().prox(v, tau, tol=tol, max_iter=max_iter)
        tau, tol = self._check_prox_arguments(v, tau, tol, max_iter)
        if tau == 0:
            return v.clone()
        scale = _per_image_norm(v).clamp_min(1.0)
        p = q = v.new_zeros(*v.shape[:2], 2, *v.shape[2:])
        t = 1.0
        x = v
        for _ in range(max_iter):
            x_new = v - tau * _finite_differences_adjoint(q)
            p_new = q + finite_differences(x_new) / (8.0 * tau)
            p_new = p_new / p_new.square().sum(2, keepdim=True).sqrt().clamp_min(1.0)
            t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
            q = p_new + (t - 1) / t_new * (p_new - p)
            p, t = p_new, t_new
            x_prev, x = x, v - tau * _finite_differences_adjoint(p)
            if float((_per_image_norm(x - x_prev) / scale).max()) <= tol:
                break
        return x


class Tikhonov(Prior):
    r"""Quadratic regulariser: R(x) = 1/2 ||x||^2 (``kind="identity"``) or 1/2 ||D x||^2 (``"gradient"``,
    forward differences). grad R = x or D^T D x; L = 1 or 8; prox = v / (1 + tau) or the inner solve.

    Example:
        >>> float(Tikhonov("identity").cost(torch.ones(1, 1, 2, 2)))
        2.0
    """

    def __init__(self, kind: str = "gradient"):
        super().__init__()
        self.kind = check_choice(kind, "Tikhonov kind", ("identity", "gradient"))

    def _cost(self, x):
        t = x if self.kind == "identity" else finite_differences(x)
        return 0.5 * t.square().flatten(1).sum(1)

    def _grad(self, x):
        return x.clone() if self.kind == "identity" else _finite_differences_adjoint(finite_differences(x))

    def lipschitz_bound(self) -> torch.Tensor:
        return torch.tensor(1.0 if self.kind == "identity" else 8.0)

    def prox(self, v, tau, *, tol=None, max_iter=500):
        if self.kind == "identity":
            tau, _ = self._check_prox_arguments(v, tau, tol, max_iter)
            return v / (1.0 + tau)
        return super().prox(v, tau, tol=tol, max_iter=max_iter)

    def extra_repr(self):
        return f"kind={self.kind!r}"
