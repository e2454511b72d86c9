"""Known-truth transport pairs: the optimal map between P and Q is known in closed form, at any dimension.

* :func:`gaussian_pair`: P = N(m_P, S_P), Q = N(m_Q, S_Q); the map is :func:`~gradflow.transport.gaussian_map`.
* :func:`mixture_pair`: P a 3-component Gaussian mixture and Q = (grad psi0) # P for a fixed random strongly
  convex potential psi0 (a random modular mGradNet, a smoothed maximum of affine functions, plus 0.05 ||x||^2);
  by Brenier's theorem the optimal map is T* = grad psi0. This is how the continuous W2 benchmark of
  Korotin et al. (NeurIPS 2021) is built, with ICNNs there; this one runs on a CPU at any d.

Each pair is a :class:`TransportPair` exposing seeded samplers, the true map and its inverse, Var(P),
Var(Q) and both laws as ``torch.distributions`` objects (with ``log_prob``).

Example:
    >>> pair = create_pair("mixture", 4, seed=0)
    >>> x = pair.sample_source(1000, torch.Generator().manual_seed(0))
    >>> pair.true_inverse(pair.true_map(x)).sub(x).abs().max() < 1e-5
    tensor(True)
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import distributions as D

from .._validation import check_choice, check_positive_int
from ..potentials import MGradNetM
from ._metrics import gaussian_map
from ._potential import BrenierNet

__all__ = ["PushforwardDistribution", "TransportPair", "create_pair", "gaussian_pair", "list_pairs", "mixture_pair"]

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


def mixture_pair(dim: int, seed: int = 0, n_components: int = 3) -> TransportPair:
    """P = a Gaussian mixture (``n_components`` equal weights, means in random directions at norm 2.5,
    covariances 0.5 * random SPD with eigenvalues in [0.25, 4]), Q = (grad psi0) # P with psi0 a fixed random
    strongly convex potential (random mGradNet-M + 0.05 ||x||^2), so T* = grad psi0. The linear (Bures) map
    scores an L2-UVP of ~18% (d=2) to ~38% (d=64).
    Var(Q) is estimated once from 100k samples (relative error ~0.5%)."""
    check_positive_int(dim, "dim")
    check_positive_int(n_components, "n_components")
    g = torch.Generator().manual_seed(seed)
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

    psi = _true_potential(dim, seed)
    with torch.no_grad():
        x = sample(_VAR_SAMPLES, torch.Generator().manual_seed(seed + 2))
        source_var = float(x.var(0).sum())
        target_var = float(psi(x).var(0).sum())
    inverse = psi.inverse
    return TransportPair("mixture", dim, source, PushforwardDistribution(source, psi), psi, inverse, sample,
                         source_var, target_var)


_PAIRS = {"gaussian": gaussian_pair, "mixture": mixture_pair}


def list_pairs() -> list[str]:
    """Names accepted by :func:`create_pair`."""
    return sorted(_PAIRS)


def create_pair(name: str, dim: int, seed: int = 0) -> TransportPair:
    """The known-truth pair ``name`` ("gaussian" or "mixture") on R^dim drawn from ``seed``."""
    check_choice(name, "pair", _PAIRS)
    return _PAIRS[name](dim, seed)
