"""Known-truth transport pairs: the optimal map between P and Q is known in closed form, at any dimension.

* :func:`gaussian_pair`: P = N(m_P, S_P), Q = N(m_Q, S_Q); the map is :func:`~gradflow.transport.gaussian_map`.
* :func:`mixture_pair` (the "same family" pair): P a 3-component Gaussian mixture and Q = (grad psi0) # P for a
  fixed random strongly convex potential psi0 (a random modular mGradNet, a smoothed maximum of affine
  functions, plus 0.05 ||x||^2); by Brenier's theorem the optimal map is T* = grad psi0. psi0 has the
  architecture that :func:`~gradflow.transport.fit_ot_map` fits by default.
* :func:`icnn_pair`: the same P and Q = (grad psi) # P with psi the mean of two dense input-convex networks
  (quadratic skip connections), each trained briefly by minibatch-OT regression towards a random
  10-component Gaussian mixture, plus 0.025 ||x||^2: the construction of the continuous W2 benchmark of
  Korotin et al. (NeurIPS 2021), made in code and run on a CPU at any d.
* :func:`smoothed_norm_pair`: the same P and Q = (grad psi) # P with psi a quadratic plus a sum of smoothed
  norms sqrt(eps^2 + ||B_k (x - c_k)||^2) of rank-2 affine maps (neither a GradNet nor an ICNN).

Each pair is a :class:`TransportPair` exposing seeded samplers, the true map and its inverse, Var(P),
Var(Q) and both laws as ``torch.distributions`` objects (with ``log_prob``).

Example:
    >>> pair = create_pair("mixture", 4, seed=0)
    >>> x = pair.sample_source(1000, torch.Generator().manual_seed(0))
    >>> pair.true_inverse(pair.true_map(x)).sub(x).abs().max() < 1e-5
    tensor(True)
"""

from __future__ import annotations

import functools
import math
from itertools import pairwise
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch import nn

from .._validation import check_choice, check_positive_int
from ..potentials import MGradNetM, MonotonePotential
from ._metrics import gaussian_map
from ._potential import BrenierNet

__all__ = [
    "PushforwardDistribution",
    "TransportPair",
    "create_pair",
    "gaussian_pair",
    "icnn_pair",
    "list_pairs",
    "mixture_pair",
    "smoothed_norm_pair",
]

_VAR_SAMPLES = 100_000


class PushforwardDistribution(D.Distribution):
    r"""The law of grad psi(X) for X ~ ``base`` and a strongly convex ``psi`` (a :class:`MonotonePotential`):

        log q(y) = log p(x) - log det J_psi(x),   grad psi(x) = y   (x by Newton, ``psi.inverse``).

    ``sample`` pushes base samples through grad psi; ``log_prob`` is differentiable in y.
    """

    arg_constraints: ClassVar[dict] = {}
    has_rsample = False

    def __init__(self, base: D.Distribution, psi):
        self.base, self.psi = base, psi
        super().__init__(batch_shape=torch.Size(), event_shape=base.event_shape, validate_args=False)

    def sample(self, sample_shape=()):
        with torch.no_grad():
            return self.psi(self.base.sample(sample_shape))

    def log_prob(self, value):
        x = self.psi.inverse(value)
        return self.base.log_prob(x) - self.psi.logdet_jacobian(x)


class TransportPair:
    """A source P and target Q whose optimal quadratic-cost map T* is known.

    Attributes:
        name, dim: the family and d.
        source, target: P and Q as ``torch.distributions`` (float64) with ``sample`` and ``log_prob``.
        source_var, target_var: Var(P), Var(Q) = E||X - E X||^2 (the L2-UVP denominators).

    Methods ``sample_source(n, generator=None, dtype=torch.float32)`` / ``sample_target(...)`` draw
    (n, d) samples reproducibly from a ``torch.Generator``; ``true_map(x)`` and ``true_inverse(y)`` map
    (..., d) -> (..., d) in the input's dtype (computed in float64).
    """

    def __init__(self, name: str, dim: int, source: D.Distribution, target: D.Distribution, true_map,
                 true_inverse, sample_base, source_var: float, target_var: float):
        self.name, self.dim, self.source, self.target = name, dim, source, target
        self._map, self._inverse, self._sample_base = true_map, true_inverse, sample_base
        self.source_var, self.target_var = float(source_var), float(target_var)

    def _apply(self, fn, x):
        with torch.no_grad():
            return fn(x.detach().to(torch.float64)).to(x.dtype)

    def true_map(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(self._map, x)

    def true_inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._apply(self._inverse, y)

    def sample_source(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
        check_positive_int(n, "n")
        return self._sample_base(n, generator).to(dtype)

    def sample_target(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
        check_positive_int(n, "n")
        with torch.no_grad():
            return self._map(self._sample_base(n, generator)).to(dtype)

    def __repr__(self) -> str:
        return (f"TransportPair({self.name!r}, dim={self.dim}, Var(P)={self.source_var:.4g}, "
                f"Var(Q)={self.target_var:.4g})")


def _random_spd(dim: int, generator: torch.Generator, low: float, high: float) -> torch.Tensor:
    """A random SPD matrix with eigenvalues log-uniform in [low, high] and Haar-random eigenvectors."""
    Q, R = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    Q = Q * torch.sign(torch.diagonal(R))
    w = torch.exp(math.log(low) + (math.log(high) - math.log(low)) * torch.rand(dim, generator=generator,
                                                                                  dtype=torch.float64))
    return (Q * w) @ Q.mT


def _gaussian_sampler(mean, cov):
    chol = torch.linalg.cholesky(cov)
    return lambda n, g: mean + torch.randn(n, mean.shape[0], generator=g, dtype=torch.float64) @ chol.mT


def gaussian_pair(dim: int, seed: int = 0) -> TransportPair:
    """P = N(m_P, S_P) -> Q = N(m_Q, S_Q) with random means (entries N(0, 1)) and covariances (eigenvalues
    log-uniform in [0.25, 4]) drawn from ``seed``; T*(x) = m_Q + A (x - m_P) (:func:`gaussian_map`)."""
    check_positive_int(dim, "dim")
    g = torch.Generator().manual_seed(seed)
    mp, mq = (torch.randn(dim, generator=g, dtype=torch.float64) for _ in range(2))
    Sp, Sq = (_random_spd(dim, g, 0.25, 4.0) for _ in range(2))
    T = gaussian_map(mp, Sp, mq, Sq)
    return TransportPair("gaussian", dim, D.MultivariateNormal(mp, Sp), D.MultivariateNormal(mq, Sq), T, T.inverse,
                         _gaussian_sampler(mp, Sp), float(Sp.trace()), float(Sq.trace()))


def _true_potential(dim: int, seed: int) -> BrenierNet:
    """psi0 = a random mGradNet-M (4 softmax modules of width max(8, d), weights N(0, 25 / d)) + 0.05 ||x||^2
    in float64: a smoothed maximum of affine functions, strongly convex with modulus 0.1."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MGradNetM(dim, width=max(8, dim), n_modules=4)
        with torch.no_grad():
            net.weight.mul_(5.0)
        psi = BrenierNet(dim, net, gate=1.0, strong_convexity=0.1).double()
    zero = torch.zeros(dim, dtype=torch.float64)
    psi.init_affine(torch.zeros(dim, dim, dtype=torch.float64), zero, zero)
    for p in psi.parameters():
        p.requires_grad_(False)
    return psi


def _mixture_source(dim: int, g: torch.Generator, n_components: int = 3):
    """The source law of the mixture-based pairs, drawn from ``g``: ``n_components`` equal-weight Gaussians
    with means in random directions at norm 2.5 and covariances 0.5 * random SPD (eigenvalues in [0.25, 4]).
    Returns (distribution, sampler(n, generator) -> (n, d) float64)."""
    means = torch.randn(n_components, dim, generator=g, dtype=torch.float64)
    means = 2.5 * means / means.norm(dim=-1, keepdim=True)
    covs = torch.stack([0.5 * _random_spd(dim, g, 0.25, 4.0) for _ in range(n_components)])
    chols = torch.linalg.cholesky(covs)
    weights = torch.full((n_components,), 1.0 / n_components, dtype=torch.float64)
    source = D.MixtureSameFamily(D.Categorical(probs=weights), D.MultivariateNormal(means, scale_tril=chols))

    def sample(n, gen):
        k = torch.multinomial(weights, n, replacement=True, generator=gen)
        z = torch.randn(n, dim, generator=gen, dtype=torch.float64)
        for j in range(n_components):  # per component: no (n, d, d) gather
            rows = k == j
            z[rows] = means[j] + z[rows] @ chols[j].mT
        return z

    return source, sample


def _pushforward_pair(name: str, dim: int, source, sample, psi, seed: int) -> TransportPair:
    """The pair (P, grad psi # P), with Var(P) and Var(Q) estimated from 100k samples (drawn from seed + 2)."""
    with torch.no_grad():
        x = sample(_VAR_SAMPLES, torch.Generator().manual_seed(seed + 2))
        source_var = float(x.var(0).sum())
        target_var = float(torch.cat([psi(chunk) for chunk in x.split(16384)]).var(0).sum())
    return TransportPair(name, dim, source, PushforwardDistribution(source, psi), psi, psi.inverse, sample,
                         source_var, target_var)


def mixture_pair(dim: int, seed: int = 0, n_components: int = 3) -> TransportPair:
    """The "same family" pair: its true potential has the architecture that :func:`~gradflow.transport.fit_ot_map`
    fits by default (a :class:`BrenierNet` around an mGradNet-M): a fit of that architecture can be exact.

    P = a Gaussian mixture (``n_components`` equal weights, means in random directions at norm 2.5,
    covariances 0.5 * random SPD with eigenvalues in [0.25, 4]), Q = (grad psi0) # P with psi0 a fixed random
    strongly convex potential (random mGradNet-M + 0.05 ||x||^2), so T* = grad psi0.
    Var(Q) is estimated once from 100k samples."""
    check_positive_int(dim, "dim")
    check_positive_int(n_components, "n_components")
    source, sample = _mixture_source(dim, torch.Generator().manual_seed(seed), n_components)
    psi = _true_potential(dim, seed)
    with torch.no_grad():
        x = sample(_VAR_SAMPLES, torch.Generator().manual_seed(seed + 2))
        source_var = float(x.var(0).sum())
        target_var = float(psi(x).var(0).sum())
    inverse = psi.inverse
    return TransportPair("mixture", dim, source, PushforwardDistribution(source, psi), psi, inverse, sample,
                         source_var, target_var)


_BETA = 4.0  # sharpness of the ICNN activation


class _DenseICNNs(nn.Module):
    r"""m independent dense input-convex networks with input-quadratic skip connections (the architecture of
    Korotin et al., NeurIPS 2021, with a smooth activation s(a) = log(1 + exp(4 a)) / 4 in place of CELU),
    evaluated together; for each net

        a_1 = (U_1 x)^2 + W_1 x + b_1,   z_1 = a_1,
        a_l = P_l z_{l-1} + (U_l x)^2 + W_l x + b_l,   z_l = s(a_l)   (l = 2..L),   f(x) = w^T z_L,

    squares elementwise (one rank-1 convex quadratic per unit), P_l >= 0 and w >= 0 (kept so by
    :meth:`project` while training), hence f convex. Gradient and Hessian are in closed form. Every weight
    has a leading axis of length m; inputs are (m or 1, N, d) (net k sees row k, or all nets the same
    points), outputs (m, N, ...). Weights are drawn N(0, 0.1^2) from ``generator`` (P_l, w then clipped at
    0), in float64.
    """

    def __init__(self, n_nets: int, dim: int, widths: tuple[int, ...], generator: torch.Generator,
                 std: float = 0.1):
        super().__init__()

        def draw(*shape, nonnegative=False):
            w = std * torch.randn(n_nets, *shape, generator=generator, dtype=torch.float64)
            return nn.Parameter(w.clamp_min(0.0) if nonnegative else w)

        self.quadratic = nn.ParameterList(draw(h, dim) for h in widths)
        self.linear = nn.ParameterList(draw(h, dim) for h in widths)
        self.bias = nn.ParameterList(draw(h) for h in widths)
        self.hidden = nn.ParameterList(draw(h_out, h_in, nonnegative=True) for h_in, h_out in pairwise(widths))
        self.output = draw(widths[-1], nonnegative=True)

    @torch.no_grad()
    def project(self) -> None:
        """Clip P_l and w at 0 (restores convexity after an optimiser step)."""
        for weight in (*self.hidden, self.output):
            weight.clamp_(min=0.0)

    def _layers(self, x):
        """Pre-activations a_l (m, N, h_l), quadratic features U_l x and the last layer z_L."""
        pre, features, z = [], [], None
        for layer, (U, W, b) in enumerate(zip(self.quadratic, self.linear, self.bias)):
            u = x @ U.mT
            a = u.square() + x @ W.mT + b.unsqueeze(1)
            if layer:
                a = a + z @ self.hidden[layer - 1].mT
            z = F.softplus(a, beta=_BETA, threshold=40.0) if layer else a  # the default cut at 20 errs by 2e-9
            pre.append(a)
            features.append(u)
        return pre, features, z

    def _adjoints(self, pre):
        """c_l = df/dz_l and g_l = df/da_l for every layer."""
        c = self.output.unsqueeze(1).expand_as(pre[-1])
        cs, gs = [None] * len(pre), [None] * len(pre)
        for layer in reversed(range(len(pre))):
            cs[layer] = c
            gs[layer] = c * torch.sigmoid(_BETA * pre[layer]) if layer else c
            if layer:
                c = gs[layer] @ self.hidden[layer - 1]
        return cs, gs

    def energy(self, x):
        return (self._layers(x)[2] * self.output.unsqueeze(1)).sum(-1)

    def gradient(self, x):
        pre, features, _ = self._layers(x)
        _, gs = self._adjoints(pre)
        return sum((2.0 * u * g) @ U + g @ W for u, g, U, W in zip(features, gs, self.quadratic, self.linear))

    def hessian(self, x):
        r"""H = sum_l U_l^T diag(2 g_l) U_l + sum_{l >= 2} A_l^T diag(c_l s''(a_l)) A_l with A_l = da_l/dx,
        in chunks of points so that the (m, chunk, h, d) tensors A_l stay small."""
        m, h, d = self.output.shape[0], max(b.shape[-1] for b in self.bias), x.shape[-1]
        chunk = max(1, 2**21 // (m * h * d))
        return torch.cat([self._hessian(part) for part in x.split(chunk, dim=1)], dim=1)

    def _hessian(self, x):
        pre, features, _ = self._layers(x)
        cs, gs = self._adjoints(pre)
        H, dz = 0.0, None
        for layer, (U, W) in enumerate(zip(self.quadratic, self.linear)):
            U_, W_ = U.unsqueeze(1), W.unsqueeze(1)  # (m, 1, h, d): broadcast over points
            H = H + (U_.mT * (2.0 * gs[layer]).unsqueeze(-2)) @ U_
            A = 2.0 * features[layer].unsqueeze(-1) * U_ + W_
            if layer:
                A = A + self.hidden[layer - 1].unsqueeze(1) @ dz
                slope = torch.sigmoid(_BETA * pre[layer])
                H = H + (A * (cs[layer] * _BETA * slope * (1.0 - slope)).unsqueeze(-1)).mT @ A
                dz = slope.unsqueeze(-1) * A
            else:
                dz = A
        return H


class _ICNNPotential(MonotonePotential):
    """psi(x) = mean_k f_k(x) + mu/2 ||x||^2 over the dense ICNNs f_k of a :class:`_DenseICNNs` stack.

    No certified Lipschitz bound: the quadratic skip connections leave the Hessian unbounded a priori.
    """

    def __init__(self, nets: _DenseICNNs, strong_convexity: float):
        super().__init__(nets.quadratic[0].shape[-1], strong_convexity)
        self.nets = nets

    def _mean(self, fn, x, event_shape=()):
        values = fn(x.reshape(1, -1, self.dim)).mean(0)
        return values.reshape(*x.shape[:-1], *event_shape)

    def _energy(self, x):
        return self._mean(self.nets.energy, x)

    def _gradient(self, x):
        return self._mean(self.nets.gradient, x, (self.dim,))

    def _jacobian(self, x):
        return self._mean(self.nets.hessian, x, (self.dim, self.dim))

    def _lipschitz_bound(self):
        raise NotImplementedError("the ICNN benchmark potential has no certified Lipschitz bound")


def _grid_mixture_sample(dim: int, n: int, g: torch.Generator, n_components: int = 10, std: float = 0.4):
    """n samples of a random Gaussian mixture drawn from ``g`` (the "RandomGaussianMixSampler" of Korotin et
    al. 2021): equal weights; in every coordinate the centres are a random permutation of
    {0, ..., K-1} - (K-1)/2; component j has covariance std^2 M_j M_j^T (M_j Gaussian with unit-norm rows);
    all scaled by 1 / sqrt((K^2 - 1)/12 + std^2), so that every coordinate has variance ~1."""
    grid = torch.stack([torch.randperm(n_components, generator=g) for _ in range(dim)], dim=1)
    maps = torch.randn(n_components, dim, dim, generator=g, dtype=torch.float64)
    maps = std * maps / maps.norm(dim=-1, keepdim=True)
    scale = 1.0 / math.sqrt((n_components**2 - 1) / 12 + std**2)
    k = torch.randint(n_components, (n,), generator=g)
    noise = torch.randn(n, dim, 1, generator=g, dtype=torch.float64)
    return scale * (grid[k].to(torch.float64) - (n_components - 1) / 2 + (maps[k] @ noise).squeeze(-1))


# the recipe of icnn_pair (its docstring states these values)
_ICNN_MU, _ICNN_POINTS, _ICNN_STEPS, _ICNN_BATCH, _ICNN_LR = 0.05, 512, 300, 128, 3e-2


def _icnn_potential(dim: int, g: torch.Generator, sample) -> _ICNNPotential:
    import ot  # POT: a dependency, imported on first use as elsewhere in the package

    h = max(64, 2 * dim)
    nets = _DenseICNNs(2, dim, (h, h, max(32, dim)), g)
    weights = torch.full((_ICNN_POINTS,), 1.0 / _ICNN_POINTS, dtype=torch.float64).numpy()
    xs, targets = [], []
    for _ in range(2):
        x = sample(_ICNN_POINTS, g)
        y = _grid_mixture_sample(dim, _ICNN_POINTS, g)
        plan = ot.emd(weights, weights, torch.cdist(x, y).square().numpy(), numItermax=1_000_000)
        xs.append(x)
        targets.append(_ICNN_POINTS * torch.from_numpy(plan) @ y)  # barycentric projection
    x, target = torch.stack(xs), torch.stack(targets)
    optimizer = torch.optim.Adam(nets.parameters(), lr=_ICNN_LR, foreach=True)
    with torch.enable_grad():
        for _ in range(_ICNN_STEPS):
            rows = torch.randperm(_ICNN_POINTS, generator=g)[:_ICNN_BATCH]
            # the sum of the nets' mean losses: each net gets the gradient of its own loss
            loss = (nets.gradient(x[:, rows]) - target[:, rows]).square().sum(-1).mean(-1).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            nets.project()
    return _ICNNPotential(nets.requires_grad_(False), _ICNN_MU)


def icnn_pair(dim: int, seed: int = 0) -> TransportPair:
    r"""P = the Gaussian mixture of :func:`mixture_pair` (3 components), Q = (grad psi) # P with

        psi = (f_1 + f_2) / 2 + (mu / 2) ||x||^2,   mu = 0.05,

    so T* = grad psi (Brenier). Each f_k is a dense input-convex network with input-quadratic skip
    connections (:class:`_DenseICNNs`: widths (max(64, 2d), max(64, 2d), max(32, d)), activation
    s(a) = log(1 + exp(4 a)) / 4, initial weights N(0, 0.1^2) with the nonnegative ones clipped at 0),
    trained towards a random Gaussian mixture R_k as in Korotin et al. (NeurIPS 2021), but briefly: draw
    512 points x_i ~ P and 512 points y_j ~ R_k (:func:`_grid_mixture_sample`: 10 equal-weight components,
    centres on a randomly permuted grid in every coordinate, unit variance per coordinate), solve the exact
    OT plan between the two clouds (``ot.emd``, squared Euclidean cost) and regress grad f_k(x_i) on its
    barycentric projection ybar_i with 300 Adam steps (lr 3e-2, 128 rows per step drawn without
    replacement, loss mean ||grad f_k(x) - ybar||^2, P_l and w clipped at 0 after every step). Every draw
    comes from one ``torch.Generator`` seeded with ``seed`` (P first, then the networks, then the training
    data); the global RNG is untouched and the result is deterministic on a CPU for a given thread count.
    float64 throughout; the parameters are frozen.

    grad psi and its Jacobian are in closed form; ``true_inverse`` is damped Newton (``psi.inverse``);
    psi is mu-strongly convex. ``psi.lipschitz_bound()`` is not available (no certified bound).
    Pairs are cached per (dim, seed), so treat them as immutable. Var(Q) is estimated once from 100k samples.
    """
    check_positive_int(dim, "dim")
    check_positive_int(seed, "seed", minimum=0)
    return _icnn_pair(dim, seed)


@functools.lru_cache(maxsize=32)
def _icnn_pair(dim: int, seed: int) -> TransportPair:
    g = torch.Generator().manual_seed(seed)
    source, sample = _mixture_source(dim, g)
    return _pushforward_pair("icnn", dim, source, sample, _icnn_potential(dim, g, sample), seed)


class _SmoothedNormPotential(MonotonePotential):
    r"""psi(x) = 1/2 x^T A_0 x + sum_k w_k sqrt(eps^2 + ||B_k (x - c_k)||^2) + mu/2 ||x||^2 (w_k, eps > 0,
    A_0 PSD): a quadratic plus pseudo-Huber norms of affine maps, with

        grad psi(x) = A_0 x + sum_k w_k B_k^T u_k / s_k + mu x,   u_k = B_k (x - c_k),  s_k = sqrt(eps^2 + ||u_k||^2),
        J(x) = A_0 + sum_k w_k B_k^T (I / s_k - u_k u_k^T / s_k^3) B_k + mu I   (each term PSD).

    Args: ``quadratic`` A_0 (d, d), ``projections`` B (K, r, d), ``centres`` c (K, d), ``weights`` w (K,).
    """

    def __init__(self, quadratic, projections, centres, weights, eps: float, strong_convexity: float):
        super().__init__(quadratic.shape[0], strong_convexity)
        frozen = lambda t: nn.Parameter(t, requires_grad=False)  # noqa: E731
        self.quadratic, self.projections = frozen(quadratic), frozen(projections)
        self.centres, self.weights = frozen(centres), frozen(weights)
        self.eps = float(eps)

    def _terms(self, x):
        u = torch.einsum("krd,...kd->...kr", self.projections, x.unsqueeze(-2) - self.centres)
        return u, (self.eps**2 + u.square().sum(-1)).sqrt()

    def _energy(self, x):
        return 0.5 * ((x @ self.quadratic) * x).sum(-1) + (self.weights * self._terms(x)[1]).sum(-1)

    def _gradient(self, x):
        u, s = self._terms(x)
        pushes = u * (self.weights / s).unsqueeze(-1)
        return x @ self.quadratic + torch.einsum("krd,...kr->...d", self.projections, pushes)

    def _jacobian(self, x):
        u, s = self._terms(x)
        v = u / s.unsqueeze(-1)
        eye = torch.eye(u.shape[-1], dtype=u.dtype, device=u.device)
        inner = (self.weights / s).unsqueeze(-1).unsqueeze(-1) * (eye - v.unsqueeze(-1) * v.unsqueeze(-2))
        return self.quadratic + torch.einsum("kri,...krs,ksj->...ij", self.projections, inner, self.projections)

    def _lipschitz_bound(self):
        norms = torch.linalg.matrix_norm(self.projections, ord=2)
        return torch.linalg.matrix_norm(self.quadratic, ord=2) + (self.weights * norms.square()).sum() / self.eps


# the recipe of smoothed_norm_pair (its docstring states these values)
_SN_TERMS, _SN_RANK, _SN_SCALE, _SN_EPS = 8, 2, 2.0, 0.1


def smoothed_norm_pair(dim: int, seed: int = 0) -> TransportPair:
    r"""P = the Gaussian mixture of :func:`mixture_pair` (3 components), Q = (grad psi) # P with

        psi(x) = 1/2 x^T A x + sum_{k=1}^{K} w_k sqrt(eps^2 + ||B_k (x - c_k)||^2),

    a quadratic plus smoothed (pseudo-Huber) norms of rank-r affine maps, so T* = grad psi (Brenier).
    Drawn from one ``torch.Generator`` seeded with ``seed``, after P: A SPD with eigenvalues log-uniform in
    [0.25, 1] and Haar eigenvectors (psi is lambda_min(A)-strongly convex); K = 8 and r = min(d, 2);
    B_k (r, d) with i.i.d. N(0, 1/d) entries; c_k K independent samples of P;
    w_k = 2 sqrt(d / K) U_k with U_k ~ U(0.5, 1.5); eps = 0.1. Gradient, Jacobian and a certified Lipschitz
    bound are in closed form (:class:`_SmoothedNormPotential`); ``true_inverse`` is damped Newton.
    Pairs are cached per (dim, seed), so treat them as immutable. Var(Q) is estimated once from 100k samples.
    """
    check_positive_int(dim, "dim")
    check_positive_int(seed, "seed", minimum=0)
    return _smoothed_norm_pair(dim, seed)


@functools.lru_cache(maxsize=32)
def _smoothed_norm_pair(dim: int, seed: int) -> TransportPair:
    g = torch.Generator().manual_seed(seed)
    source, sample = _mixture_source(dim, g)
    A = _random_spd(dim, g, 0.25, 1.0)
    mu = float(torch.linalg.eigvalsh(A)[0])
    rank = min(dim, _SN_RANK)
    B = torch.randn(_SN_TERMS, rank, dim, generator=g, dtype=torch.float64) / math.sqrt(dim)
    centres = sample(_SN_TERMS, g)
    spread = 0.5 + torch.rand(_SN_TERMS, generator=g, dtype=torch.float64)
    weights = _SN_SCALE * math.sqrt(dim / _SN_TERMS) * spread
    A0 = A - mu * torch.eye(dim, dtype=torch.float64)
    psi = _SmoothedNormPotential(A0, B, centres, weights, _SN_EPS, mu)
    return _pushforward_pair("smoothed_norm", dim, source, sample, psi, seed)


_PAIRS = {"gaussian": gaussian_pair, "icnn": icnn_pair, "mixture": mixture_pair,
          "smoothed_norm": smoothed_norm_pair}


def list_pairs() -> list[str]:
    """Names accepted by :func:`create_pair`."""
    return sorted(_PAIRS)


def create_pair(name: str, dim: int, seed: int = 0) -> TransportPair:
    """The known-truth pair ``name`` (one of :func:`list_pairs`) on R^dim drawn from ``seed``."""
    check_choice(name, "pair", _PAIRS)
    return _PAIRS[name](dim, seed)
