"""Closed-form Gaussian maps and the metrics of OT-map quality (private)."""

from __future__ import annotations

import math

import torch

from .._validation import check_finite, check_number, check_positive_int

__all__ = ["AffineMap", "bures_map", "cosine_similarity", "gaussian_map", "l2_uvp", "sinkhorn_plan", "w2"]


def check_samples(x, name: str, min_rows: int = 1, dim: int | None = None) -> torch.Tensor:
    """Validate an (N, d) floating tensor of samples with N >= ``min_rows`` (and d == ``dim``)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, d), got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be a float32 or float64 tensor, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, d) with d >= 1, got {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {x.shape[0]}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}), got {tuple(x.shape)}")
    check_finite(x, name)
    return x


def _sym_sqrt(S: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    w, V = torch.linalg.eigh(0.5 * (S + S.mT))
    w = w.clamp_min(0.0)
    return (V * (w.rsqrt() if inverse else w.sqrt())) @ V.mT


def _check_mean_cov(mean, cov, name: str, positive_definite: bool) -> tuple[torch.Tensor, torch.Tensor]:
    for value, what in ((mean, "mean"), (cov, "cov")):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise ValueError(f"{what}_{name} must be a floating-point torch.Tensor, got {type(value).__name__}")
        check_finite(value, f"{what}_{name}")
    if mean.ndim != 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(
            f"mean_{name} must have shape (d,) and cov_{name} shape (d, d); got {tuple(mean.shape)} and "
            f"{tuple(cov.shape)}"
        )
    cov = cov.to(torch.float64)
    if not torch.allclose(cov, cov.mT, rtol=1e-5, atol=1e-8 * (1 + float(cov.abs().max()))):
        raise ValueError(f"cov_{name} must be symmetric")
    lowest = float(torch.linalg.eigvalsh(cov).min())
    scale = 1e-12 * (1.0 + float(cov.abs().max()))
    if lowest < -scale or (positive_definite and lowest <= scale):
        raise ValueError(
            f"cov_{name} must be positive {'definite' if positive_definite else 'semidefinite'}; "
            f"its smallest eigenvalue is {lowest:.3g}"
        )
    return mean.to(torch.float64), cov


class AffineMap:
    """The affine map T(x) = A (x - m) + c with symmetric positive definite A, i.e. the gradient of the
    convex quadratic psi(x) = 1/2 (x - m)^T A (x - m) + c^T x.

    Attributes:
        matrix: A, (d, d). mean_in: m, (d,). mean_out: c, (d,).

    ``T(x)`` maps (..., d) -> (..., d); ``T.inverse(y)`` = m + A^{-1} (y - c); ``T.potential(x)``
    is psi(x), (..., d) -> (...).
    """

    def __init__(self, matrix: torch.Tensor, mean_in: torch.Tensor, mean_out: torch.Tensor):
        square = isinstance(matrix, torch.Tensor) and matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1] > 0
        d = matrix.shape[0] if square else None
        for value, name, shape in ((matrix, "matrix", "(d, d) with d >= 1"), (mean_in, "mean_in", f"({d},)"),
                                   (mean_out, "mean_out", f"({d},)")):
            ok = square if name == "matrix" else isinstance(value, torch.Tensor) and value.shape == (d,)
            if not ok or not value.is_floating_point():
                got = (f"shape {tuple(value.shape)}, dtype {value.dtype}" if isinstance(value, torch.Tensor)
                       else type(value).__name__)
                raise ValueError(f"{name} must be a floating-point tensor of shape {shape}, got {got}")
            check_finite(value, name)
        self.matrix, self.mean_in, self.mean_out = matrix, mean_in, mean_out

    @property
    def dim(self) -> int:
        return self.matrix.shape[0]

    def _cast(self, x: torch.Tensor, name: str):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim == 0 or x.shape[-1] != self.dim:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a floating-point tensor of shape (..., {self.dim}), got {got}")
        check_finite(x, name)
        return (t.to(dtype=x.dtype, device=x.device) for t in (self.matrix, self.mean_in, self.mean_out))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        A, m, c = self._cast(x, "x")
        return (x - m) @ A + c

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        A, m, c = self._cast(y, "y")
        return torch.linalg.solve(A, (y - c).unsqueeze(-1)).squeeze(-1) + m

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        A, m, c = self._cast(x, "x")
        z = x - m
        return 0.5 * ((z @ A) * z).sum(-1) + x @ c

    def __repr__(self) -> str:
        return f"AffineMap(dim={self.dim})"


def gaussian_map(mean_p: torch.Tensor, cov_p: torch.Tensor, mean_q: torch.Tensor, cov_q: torch.Tensor) -> AffineMap:
    r"""The optimal (Brenier) map between Gaussians N(m_P, S_P) -> N(m_Q, S_Q) for the quadratic cost:

        T(x) = m_Q + A (x - m_P),   A = S_P^{-1/2} (S_P^{1/2} S_Q S_P^{1/2})^{1/2} S_P^{-1/2},

    computed in float64 and returned in the dtype of ``mean_p``. ``cov_p`` must be positive definite and
    ``cov_q`` positive semidefinite. W2^2 between the two is ||m_P - m_Q||^2 + Bures(S_P, S_Q)^2.

    Example:
        >>> T = gaussian_map(torch.zeros(2), torch.eye(2), torch.ones(2), 4 * torch.eye(2))
        >>> T(torch.tensor([1.0, 0.0]))
        tensor([3., 1.])
    """
    dtype = mean_p.dtype if isinstance(mean_p, torch.Tensor) else torch.float32
    mp, Sp = _check_mean_cov(mean_p, cov_p, "p", positive_definite=True)
    mq, Sq = _check_mean_cov(mean_q, cov_q, "q", positive_definite=False)
    if mp.shape != mq.shape:
        raise ValueError(f"P and Q must have the same dimension, got {mp.shape[0]} and {mq.shape[0]}")
    root = _sym_sqrt(Sp)
    inv_root = _sym_sqrt(Sp, inverse=True)
    A = inv_root @ _sym_sqrt(root @ Sq @ root) @ inv_root
    A = 0.5 * (A + A.mT)
    device = mean_p.device
    return AffineMap(A.to(dtype=dtype, device=device), mp.to(dtype=dtype, device=device),
                     mq.to(dtype=dtype, device=device))


def sample_moments(x: torch.Tensor, shrinkage: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of samples (N, d) in float64, with the covariance nudged to be positive definite."""
    x64 = x.detach().to(torch.float64)
    mean = x64.mean(0)
    z = x64 - mean
    cov = z.mT @ z / max(x.shape[0] - 1, 1)
    cov = cov + shrinkage * (1.0 + cov.diagonal().mean()) * torch.eye(x.shape[1], dtype=torch.float64, device=x.device)
    return mean, cov


def bures_map(x: torch.Tensor, y: torch.Tensor) -> AffineMap:
    """The linear (Bures) baseline: :func:`gaussian_map` between the sample means and covariances of
    ``x`` (N, d) from P and ``y`` (M, d) from Q. Exact when P and Q are Gaussian (up to sampling error).

    Example:
        >>> x = torch.randn(1000, 2); T = bures_map(x, 2 * x + 1)
        >>> torch.allclose(T(x), 2 * x + 1, atol=1e-3)
        True
    """
    check_samples(x, "x", min_rows=2)
    check_samples(y, "y", min_rows=2, dim=x.shape[1])
    T = gaussian_map(*sample_moments(x), *sample_moments(y))
    return AffineMap(*(t.to(x.dtype) for t in (T.matrix, T.mean_in, T.mean_out)))


def _evaluate(T, x: torch.Tensor, name: str) -> torch.Tensor:
    values = T(x) if callable(T) else T
    if not isinstance(values, torch.Tensor) or values.shape != x.shape:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"{name} must be a tensor of shape {tuple(x.shape)} or a map returning one, got {got}")
    check_finite(values, name)
    return values.detach().to(torch.float64)


def l2_uvp(T, T_true, x: torch.Tensor, target_var: float) -> float:
    r"""Unexplained variance percentage of a map (Korotin et al. 2021), in percent:

        L2-UVP(T) = 100 E_{x~P} ||T(x) - T*(x)||^2 / Var(Q),    Var(Q) = E ||y - E y||^2,

    estimated on samples ``x`` (N, d) from P. ``T`` and ``T_true`` are maps (callables) or their values
    at ``x``; ``target_var`` is Var(Q) (the trace of Q's covariance). The constant map x -> E[Y] scores 100.

    Example:
        >>> x = torch.randn(100, 3)
        >>> round(l2_uvp(lambda z: z, lambda z: z + 0.1, x, target_var=3.0), 6)
        1.0
    """
    check_samples(x, "x")
    var = check_number(target_var, "target_var", minimum=0, strict=True)
    diff = _evaluate(T, x, "T") - _evaluate(T_true, x, "T_true")
    return float(100.0 * diff.square().sum(-1).mean() / var)


def cosine_similarity(T, T_true, x: torch.Tensor) -> float:
    r"""Cosine similarity of displacements, E<T(x) - x, T*(x) - x> / sqrt(E||T(x) - x||^2 E||T*(x) - x||^2),
    on samples ``x`` (N, d) from P (Korotin et al. 2021); 1 for a perfect map. ``T`` and ``T_true`` are
    maps or their values at ``x``.
    """
    check_samples(x, "x")
    x64 = x.detach().to(torch.float64)
    u = _evaluate(T, x, "T") - x64
    v = _evaluate(T_true, x, "T_true") - x64
    denom = math.sqrt(float(u.square().sum(-1).mean()) * float(v.square().sum(-1).mean()))
    if denom == 0.0:
        raise ValueError("cosine similarity is undefined: a displacement is zero everywhere")
    return float((u * v).sum(-1).mean()) / denom


def sinkhorn_plan(cost: torch.Tensor, reg: float, iters: int = 200, tol: float = 1e-5) -> torch.Tensor:
    """Entropic plan between uniform weights for ``cost`` (n, m) (scaled by its mean), log-domain Sinkhorn."""
    n, m = cost.shape
    C = cost / (reg * cost.mean())
    log_a, log_b = -math.log(n), -math.log(m)
    f = torch.zeros(n, dtype=cost.dtype, device=cost.device)
    g = torch.zeros(m, dtype=cost.dtype, device=cost.device)
    for i in range(iters):
        f = log_a - torch.logsumexp(g - C, dim=1)
        g = log_b - torch.logsumexp(f.unsqueeze(1) - C, dim=0)
        if i % 10 == 9:  # the column marginals are exact after the g update; check the rows
            rows = torch.logsumexp(f.unsqueeze(1) + g - C, dim=1).exp()
            if float((rows * n - 1.0).abs().max()) < tol:
                break
    return torch.exp(f.unsqueeze(1) + g - C)


def w2(x: torch.Tensor, y: torch.Tensor, *, exact: bool | None = None, reg: float = 0.01,
       max_exact: int = 5000, iters: int = 1000, squared: bool = False) -> float:
    r"""Wasserstein-2 distance between the empirical measures of ``x`` (N, d) and ``y`` (M, d) (uniform
    weights), with POT:

    * exact (``ot.emd2``, network simplex: O(n^3) time, O(NM) memory) when ``exact=True``, or by default
      when max(N, M) <= ``max_exact``;
    * otherwise entropic (log-domain Sinkhorn in torch, at most ``iters`` iterations, O(NM) memory) with
      regularisation ``reg`` times the mean squared distance, returning the transport cost <P_eps, C> of
      the entropic plan (above the exact W2^2 once converged, and tending to it as ``reg`` -> 0).

    Returns W2 (or W2^2 with ``squared=True``) as a float.

    Example:
        >>> x = torch.randn(200, 2, dtype=torch.float64)
        >>> round(w2(x, x + torch.tensor([3.0, 4.0], dtype=torch.float64)), 6)
        5.0
    """
    check_samples(x, "x")
    check_samples(y, "y", dim=x.shape[1])
    if isinstance(reg, bool) or not (isinstance(reg, (int, float)) and math.isfinite(reg) and reg > 0):
        raise ValueError(f"reg must be a finite number > 0, got {reg!r}")
    check_positive_int(iters, "iters")
    check_positive_int(max_exact, "max_exact", minimum=0)
    if exact is not None and not isinstance(exact, bool):
        raise ValueError(f"exact must be True, False or None, got {exact!r}")
    cost = torch.cdist(x.detach().to(torch.float64), y.detach().to(torch.float64)).square()
    use_exact = max(len(x), len(y)) <= max_exact if exact is None else bool(exact)
    if use_exact:
        import numpy as np
        import ot

        a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
        value = float(ot.emd2(a, b, cost.cpu().numpy(), numItermax=10_000_000))
    else:
        value = float((sinkhorn_plan(cost, reg, iters=iters) * cost).sum())
    value = max(value, 0.0)
    return value if squared else math.sqrt(value)
