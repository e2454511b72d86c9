"""fit_ot_map: fit an OT map as the gradient of a convex network, through gradflow.train.fit (private)."""

from __future__ import annotations

import inspect
import math
import time

import torch
from torch import distributions as D
from torch import nn

from .._validation import check_choice, check_positive_int
from ..potentials import ConvergenceError, MonotonePotential
from ..train import fit
from ._conjugate import AMORTIZATION_LOSSES, AmortizedConjugate, newton_cg
from ._map import POTENTIAL_NAMES, OTMap, _inverse_net, build_potential
from ._metrics import bures_map, check_samples, sinkhorn_plan
from ._potential import BrenierNet

__all__ = ["METHODS", "fit_ot_map"]

#: method -> one-line description (see :func:`fit_ot_map`)
METHODS = {
    "dual": "sample-based semi-dual: min E_P psi + E_Q psi*, psi* by Newton inversion (dense, matrix-free or "
            "warm-started by an amortised conjugate network)",
    "monge_ampere": "density-based: |log det J_T(x) - log p(x) + log q(T(x))|, analytic log-det (needs log_prob)",
    "plan": "regress T on barycentric projections of minibatch exact (POT emd) or entropic OT plans",
}
_METHOD_OPTIONS = {"dual": {"conjugate", "inverse_iters", "cg_iters", "amortization"}, "monge_ampere": set(),
                   "plan": {"plan", "reg"}}
#: conjugate solvers of method "dual" (see :func:`fit_ot_map`)
CONJUGATES = ("newton", "newton_cg", "amortized")
_DENSE_NEWTON_MAX_DIM = 16  # conjugate="auto": dense Newton up to this d, amortised + Newton-CG above
_DEFAULT_BATCH = {"dual": 512, "monge_ampere": 512, "plan": 512}
_DEFAULT_LR = {"dual": 1e-2, "monge_ampere": 1e-3, "plan": 1e-2}
_FIT_OPTIONS = set(inspect.signature(fit).parameters) - {
    "model", "loss", "data", "steps", "epochs", "batch_size", "lr", "max_time", "seed", "device", "progress",
    "val_data", "val_loss", "val_grad",
}
_MOMENT_SAMPLES = 20_000
_WHOLE_PLAN = 1024  # method='auto' regresses on one exact plan between data sets up to this size
_DEFAULT_VAL_FRACTION = 0.2  # share of a sample tensor's rows held out for validation (method "dual")
_MAX_HELD_OUT = 2048  # rows held out per side at most: every evaluation solves a conjugate per held-out point
_DEFAULT_PATIENCE = 10  # evaluations without a new best held-out objective before stopping
_HELD_OUT_ITERS = 50  # conjugate solver iterations at most for the held-out objective


class _Law:
    """A probability law given as samples, a sampler callable or a torch Distribution, seen uniformly."""

    def __init__(self, obj, name: str, dtype):
        self.name, self.samples, self.log_prob = name, None, None
        if isinstance(obj, torch.Tensor):
            check_samples(obj, name)
            if obj.shape[0] < obj.shape[1] + 1:
                raise ValueError(
                    f"{name} has {obj.shape[0]} samples in d={obj.shape[1]}; at least d + 1 = {obj.shape[1] + 1} "
                    "are needed to estimate a covariance"
                )
            self.samples = obj.detach()
            self.dim = obj.shape[1]
            self.dtype = obj.dtype if dtype is None else dtype
        elif isinstance(obj, D.Distribution):
            if len(obj.event_shape) != 1 or len(obj.batch_shape) != 0:
                raise ValueError(
                    f"{name} must be a distribution over vectors (event_shape (d,), batch_shape ()), got "
                    f"event_shape {tuple(obj.event_shape)} and batch_shape {tuple(obj.batch_shape)}"
                )
            self.dist, self.dim = obj, obj.event_shape[0]
            self.dtype = torch.float32 if dtype is None else dtype
            self.log_prob = obj.log_prob
            with torch.no_grad():
                self.native_dtype = obj.sample().dtype  # the dtype log_prob expects
        elif callable(obj):
            self.sampler = obj
            probe = self._call_sampler(2)
            self.dim = probe.shape[1]
            self.dtype = probe.dtype if dtype is None else dtype
        else:
            raise ValueError(
                f"{name} must be a tensor of samples (N, d), a callable sample(n) -> (n, d) tensor or a "
                f"torch.distributions.Distribution; got {type(obj).__name__}"
            )

    def _call_sampler(self, n: int) -> torch.Tensor:
        out = self.sampler(n)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != n:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"{self.name}: sample({n}) must return a tensor of shape ({n}, d), got {got}")
        return check_samples(out, f"{self.name} sample({n})")

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n samples: a random subset of a tensor (with replacement only if n > N) drawn with ``generator``;
        samplers and distributions use torch's global generator (seeded by fit)."""
        if self.samples is not None:
            N = self.samples.shape[0]
            idx = torch.randperm(N, generator=generator)[:n] if n <= N else torch.randint(N, (n,), generator=generator)
            out = self.samples[idx.to(self.samples.device)].cpu()
        elif hasattr(self, "dist"):
            with torch.no_grad():
                out = self.dist.sample((n,))
        else:
            out = self._call_sampler(n).detach()
        return out.to(self.dtype)

    def hold_out(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """Remove ``count`` random rows (drawn with ``generator``) from a tensor law's training samples and
        return them; a sampler or distribution returns ``count`` fresh samples, drawn from torch's global
        generator seeded by ``generator``'s initial seed (its global state is left as it was)."""
        if self.samples is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(generator.initial_seed())
                return self.draw(count, generator)
        perm = torch.randperm(self.samples.shape[0], generator=generator).to(self.samples.device)
        held_out, self.samples = self.samples[perm[:count]], self.samples[perm[count:]]
        return held_out.cpu().to(self.dtype)

    def moment_samples(self, generator: torch.Generator) -> torch.Tensor:
        if self.samples is not None and self.samples.shape[0] <= _MOMENT_SAMPLES:
            return self.samples.to(self.dtype)
        return self.draw(_MOMENT_SAMPLES, generator)


def _resolve_method(method: str, source: _Law, target: _Law) -> str:
    check_choice(method, "method", {"auto", *METHODS})
    if method == "auto":
        small = [law.samples is not None and law.samples.shape[0] <= _WHOLE_PLAN for law in (source, target)]
        return "plan" if all(small) else "dual"
    if method == "monge_ampere" and (source.log_prob is None or target.log_prob is None):
        raise ValueError(
            "method='monge_ampere' needs log-densities: pass source and target as torch.distributions "
            "objects with log_prob (or use method='dual' or 'plan' for samples)"
        )
    return method


def _make_potential(potential, dim: int, dtype) -> tuple[MonotonePotential, dict | None]:
    if potential is None or isinstance(potential, str):
        name = "brenier" if potential is None else potential
        check_choice(name, "potential", POTENTIAL_NAMES)
        spec = {"name": name, "dim": dim, "strong_convexity": 1e-3}
        if name == "brenier":
            spec["net"] = "mgradnet_m"
        return build_potential(spec).to(dtype), spec
    if not isinstance(potential, MonotonePotential):
        raise ValueError(
            f"potential must be None, one of {', '.join(POTENTIAL_NAMES)} or a MonotonePotential "
            f"(a convex potential with inverse), got {type(potential).__name__}"
        )
    if potential.dim != dim:
        raise ValueError(f"potential acts on R^{potential.dim} but the data are in R^{dim}")
    return potential.to(dtype), None


def _barycentric_targets(x: torch.Tensor, y: torch.Tensor, plan: str, reg: float) -> torch.Tensor:
    """sum_j P_ij y_j / sum_j P_ij for the exact (POT ot.emd) or entropic (log Sinkhorn) plan between batches."""
    with torch.no_grad():
        cost = torch.cdist(x.double(), y.double()).square()
        if plan == "exact":
            import numpy as np
            import ot

            a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
            P = torch.from_numpy(ot.emd(a, b, cost.cpu().numpy(), numItermax=10_000_000)).to(cost.device)
        else:
            P = sinkhorn_plan(cost, reg)
        return ((P @ y.double()) / P.sum(1, keepdim=True)).to(y.dtype)


def _plan_residuals(plan: str, reg: float):
    """Per-point plan-regression terms: ||T(x_i) - sum_j P_ij y_j / sum_j P_ij||^2, (N,), and an empty (0,)."""
    def terms(model, batch):
        x, y = batch
        return (model(x) - _barycentric_targets(x, y, plan, reg)).square().sum(-1), x.new_zeros(0)

    return terms


class _PotentialAndConjugate(nn.Module):
    """psi and its amortised conjugate trained together by one optimizer (method "dual", "amortized")."""

    def __init__(self, psi: MonotonePotential, conjugate: AmortizedConjugate):
        super().__init__()
        self.psi, self.conjugate = psi, conjugate


def _budget_cosine(steps: int, max_time: float | None):
    """``scheduler="cosine"`` over the whole budget: the learning-rate factor 0.01 + 0.99 (1 + cos(pi u)) / 2
    with u the fraction used of the step budget or of ``max_time`` (wall clock, from the first step),
    whichever is larger, so that a time-limited run still ends its decay when the time is up."""
    def factory(optimizer):
        start = time.monotonic()

        def factor(step: int) -> float:
            used = step / steps if max_time is None else max(step / steps, (time.monotonic() - start) / max_time)
            return 0.01 + 0.495 * (1.0 + math.cos(math.pi * min(used, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    return factory


def _solve_conjugate(psi, y, x0, solver: str, iters: int, cg_iters: int) -> torch.Tensor:
    """x* with grad psi(x*) = y (no grad), loosely: the envelope-theorem gradient only needs it approximately.
    Any x gives a lower bound <x, y> - psi(x) on psi*(y), so an unconverged iterate is used as is."""
    tol = 1e-6 if y.dtype == torch.float64 else 1e-4
    if iters == 0:
        return x0
    if solver == "newton":
        with torch.no_grad():
            try:
                return psi.inverse(y, tol=tol, max_iter=iters, x0=x0)
            except ConvergenceError as err:
                return err.x
    return newton_cg(psi, y, x0, tol=tol, max_iter=iters, cg_iters=cg_iters)[0]


def _semi_dual_terms(psi, x: torch.Tensor, y: torch.Tensor, x_star: torch.Tensor):
    """Per-point terms of the semi-dual E_P[psi(x)] + E_Q[<x*, y> - psi(x*)] on samples x (N, d) and y (M, d):
    psi(x_i), (N,), and <x*_j, y_j> - psi(x*_j), (M,), with x* (M, d) the conjugate's argmax for y (any x*
    gives a lower bound of psi*(y), exact at grad psi(x*) = y)."""
    return psi.energy(x), (x_star * y).sum(-1) - psi.energy(x_star)


def _dual_terms(conjugate: str, iters: int, cg_iters: int, *, held_out: bool = False):
    """Per-point terms of the training loss of method "dual": the semi-dual's (N,) and (M,), and for an
    amortised conjugate its amortisation loss (a scalar). ``held_out=True`` gives the held-out objective's instead:
    the semi-dual's alone, with x* solved by the training solver (Newton from 0, or Newton-CG from the
    amortised prediction) but for up to 50 iterations (it stops at the tolerance): an unconverged x*
    underestimates psi*(y), which would make weights on which the solver fails look best."""
    solver = "newton" if conjugate == "newton" else "newton_cg"
    if held_out:
        iters = max(iters, _HELD_OUT_ITERS)

    def terms(model, batch):
        x, y = batch
        if conjugate == "amortized":
            psi, amortized = model.psi, model.conjugate
            x_pred = amortized(y)
            x_star = _solve_conjugate(psi, y, x_pred.detach(), solver, iters, cg_iters)
        else:
            psi, x_star = model, _solve_conjugate(model, y, None, solver, iters, cg_iters)
        semi_dual = _semi_dual_terms(psi, x, y, x_star)
        if conjugate == "amortized" and not held_out:
            return *semi_dual, amortized.loss(psi, y, x_pred, x_star)
        return semi_dual

    return terms


def _sum_of_means(values) -> torch.Tensor:
    """The sum of the means of per-point terms (an empty set of terms adds nothing)."""
    return sum(t.mean() for t in values if t.numel())


def _mean_of_terms(terms):
    """The loss: :func:`_sum_of_means` of the terms of the batch."""
    def loss(model, batch):
        return _sum_of_means(terms(model, batch))

    return loss


class _HeldOutSelection:
    r"""The held-out objective as ``fit``'s ``val_loss``, and the choice of the weights to keep.

    ``terms(model, (X_val, Y_val))`` gives per-point terms a (m_P,) and b (m_Q,) (b may be empty) with
    J_val = mean(a) + mean(b). :meth:`loss` is the ``val_loss``; :meth:`record` (also as ``callback``)
    stores each evaluation's terms with a CPU copy of the weights. :meth:`select` applies the
    one-standard-error rule (Breiman et al. 1984; Hastie et al., ESL 7.10) between evaluation t and the
    lowest one, b*: it keeps the latest t with

        J_t - J_b* <= SE_t,   SE_t^2 = Var_i(a_t,i - a_b*,i) / m_P + Var_j(b_t,j - b_b*,j) / m_Q,

    the paired standard error of the difference on the same held-out points. A small held-out set cannot
    rank maps that differ by less than this noise (on the d = 2 mixture pair 51 held-out points preferred a
    6% L2-UVP map to later 2.5% ones), while an overfitting fit drifts many standard errors away.
    """

    def __init__(self, terms):
        self.terms, self.last, self.evaluations = terms, None, []

    def loss(self, model, batch) -> torch.Tensor:
        a, b = self.terms(model, batch)
        self.last = [t.detach().to("cpu", torch.float64) for t in (a, b)]
        return _sum_of_means((a, b))

    def record(self, step: int, model: nn.Module) -> None:
        a, b = self.last
        value = float(_sum_of_means((a, b)))
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.evaluations.append((step, value, a, b, state))

    def callback(self, info: dict) -> None:
        if info["val_loss"] is not None:
            self.record(info["step"], info["model"])

    def select(self):
        """(step, J_val, weights) of the evaluation to keep, or None if no evaluation is finite."""
        finite = [e for e in self.evaluations if math.isfinite(e[1])]
        if not finite:
            return None
        best = min(finite, key=lambda e: e[1])
        for step, value, a, b, state in reversed(finite):
            var = (a - best[2]).var() / len(a) if len(a) > 1 else 0.0
            if len(b) > 1:
                var = var + (b - best[3]).var() / len(b)
            if value - best[1] <= math.sqrt(var):
                return step, value, state
        return None  # unreachable: the best evaluation itself qualifies


def _dual_options(opts: dict, dim: int) -> tuple[str, int, int, str]:
    conjugate = check_choice(opts.get("conjugate", "auto"), "conjugate", {"auto", *CONJUGATES})
    if conjugate == "auto":
        conjugate = "newton" if dim <= _DENSE_NEWTON_MAX_DIM else "amortized"
    default_iters = 6 if conjugate == "amortized" else 20
    iters = check_positive_int(opts.get("inverse_iters", default_iters), "inverse_iters",
                               minimum=0 if conjugate == "amortized" else 1)
    cg_iters = check_positive_int(opts.get("cg_iters", 8), "cg_iters")
    amortization = check_choice(opts.get("amortization", "regression"), "amortization", AMORTIZATION_LOSSES)
    if conjugate != "amortized" and "amortization" in opts:
        raise ValueError(f"amortization applies only to conjugate='amortized', got conjugate={conjugate!r}")
    if amortization == "regression" and iters == 0:
        raise ValueError("amortization='regression' regresses on the fine-tuned solution and needs "
                         "inverse_iters >= 1; use 'cycle' or 'objective' for the network alone")
    return conjugate, iters, cg_iters, amortization


def _monge_ampere_loss(source: _Law, target: _Law):
    def loss(model, x):
        y = model(x)
        log_q = target.log_prob(y.to(target.native_dtype)).to(y.dtype)
        log_p = source.log_prob(x.to(source.native_dtype)).to(x.dtype)
        return (model.logdet_jacobian(x) - log_p + log_q).abs().mean()

    return loss


def _held_out(source: _Law, target: _Law, val_fraction, seed: int, method: str):
    """Split the validation sets (x_val (m_P, d), y_val (m_Q, d)) off the training samples, or None.

    A tensor of N rows gives up m = min(2048, max(1, round(val_fraction * N))) random rows (a permutation
    drawn from ``seed``); a sampler or distribution facing a tensor contributes a fixed draw of as many
    points. ``val_fraction=None`` means 0.2 for method "dual" when a side is a tensor, else no validation.
    """
    tensors = [law for law in (source, target) if law.samples is not None]
    if val_fraction is None:
        val_fraction = _DEFAULT_VAL_FRACTION if tensors and method == "dual" else 0.0
    ok = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
    if not (ok and 0 <= val_fraction < 1):
        raise ValueError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    if val_fraction > 0 and not tensors:
        raise ValueError("val_fraction applies to sample tensors; samplers and distributions draw fresh samples "
                         "at every step, so there is nothing to hold out (leave val_fraction unset)")
    if val_fraction == 0:
        return None
    counts = {}
    for law in tensors:
        n = law.samples.shape[0]
        counts[law.name] = min(_MAX_HELD_OUT, max(1, round(val_fraction * n)))
        if n - counts[law.name] < law.dim + 1:
            raise ValueError(
                f"val_fraction={val_fraction} leaves {n - counts[law.name]} of the {n} {law.name} samples for "
                f"training in d={law.dim}; at least d + 1 = {law.dim + 1} are needed (lower val_fraction or pass 0)"
            )
    generator = torch.Generator().manual_seed(seed)
    return tuple(law.hold_out(counts.get(law.name, max(counts.values())), generator) for law in (source, target))


def fit_ot_map(source, target, *, method: str = "auto", potential=None, steps: int = 2000,
               batch_size: int | None = None, lr: float | None = None, max_time: float | None = None, seed: int = 0,
               device="auto", progress: bool = True, dtype: torch.dtype | None = None, init: str = "bures",
               val_fraction: float | None = None, **options) -> OTMap:
    r"""Fit the optimal transport map (quadratic cost) from P to Q as T = grad psi with psi convex.

    ``source`` (P) and ``target`` (Q) may each be a tensor of samples (N, d) (N >= d + 1; each batch is a
    random subset of the training rows, the whole set if ``batch_size`` >= N; see ``val_fraction`` below), a
    callable ``sample(n) -> (n, d)`` tensor, or a ``torch.distributions.Distribution`` over R^d (needed for
    ``"monge_ampere"``). By Brenier's theorem the optimal map is the unique gradient of a convex function
    pushing P to Q, and a monotone gradient network is such a gradient by construction.

    Methods (``method``):
        * ``"dual"`` (samples; Makkuva et al. 2020, Korotin et al. 2019): minimise the semi-dual
          E_P[psi(x)] + E_Q[psi*(y)] over convex psi, with psi*(y) = <x*, y> - psi(x*) and grad psi(x*) = y
          (the network is strongly convex, hence invertible). Unbiased when x* is exact. How x* is found
          (option ``conjugate``):

          - ``"newton"``: dense damped Newton from 0 (``MonotonePotential.inverse``; ``inverse_iters``
            iterations at most, default 20). Each iteration forms a (d, d) Jacobian per point: cheapest
            for small d.
          - ``"newton_cg"``: matrix-free Newton, each step ``cg_iters`` (default 8) preconditioned CG
            iterations on Jacobian-vector products (:func:`newton_cg`); no (d, d) Jacobians.
          - ``"amortized"`` (Amos 2023): a second network x_phi(y) (a :class:`BrenierNet` started at the
            inverse Bures map) predicts x*, which at most ``inverse_iters`` (default 6) Newton-CG steps
            fine-tune (they stop early where the residual is below tolerance);
            x_phi is trained alongside psi by the ``amortization`` loss, ``"regression"`` on the fine-tuned
            x* (default), ``"cycle"`` ||grad psi(x_phi(y)) - y||^2 or ``"objective"`` (Makkuva's minimax).
            With ``inverse_iters=0`` the network alone gives x* (a minimax; unstable at lr 1e-2, so the
            default lr is then 1e-3). The fitted :class:`OTMap` keeps x_phi as ``inverse_net``: a one-pass
            approximate inverse and the start of :meth:`OTMap.inverse`.
          - ``"auto"`` (default): ``"newton"`` up to d = 16, ``"amortized"`` above. On the mixture pair
            (batch 512, one thread) a step costs ~0.27 s with dense Newton and ~0.035 s amortised (2
            fine-tuning steps) at d = 32, ~0.9 s and ~0.10 s at d = 64. With 2 fine-tuning steps the
            amortised fit reached an L2-UVP of 0.02% at d = 32 in 300 s but stalled at 16-17% at d = 64
            (biased x*); with 6, d = 64 reached 1.7% in 300 s, and 5.4% and 9.8% in two 150 s runs (a
            time-driven cosine schedule makes runs differ); ``benchmarks/results/transport_accuracy_300s.md``,
            ``transport_accuracy_d64.md``, ``transport_accuracy_d64_300s.md``.
        * ``"plan"`` (samples; simplest, out-of-sample map for POT users): solve exact (``plan="exact"``,
          ``ot.emd``) or entropic (``plan="entropic"``, ``reg`` relative to the mean cost, default 0.05) OT
          between minibatches of P and Q and regress T(x) on the barycentric projection. Fast per step; the
          minibatch plan is biased (the bias grows with d and shrinks with ``batch_size``). Its inverse is
          poor: the regression learns E[matched y | x], a contraction of the optimal map (on the d = 4
          mixture pair after 300 steps Var(T#P) = 0.95 Var(Q) and the smallest Jacobian eigenvalue fell to
          ~0.1), so T^{-1} = grad psi* magnifies forward errors ~10x and runs off in Q's tails (inverse
          L2-UVP 17% for 1.2% forward, and worse with longer training); use ``"dual"`` when the inverse
          map matters.
        * ``"monge_ampere"`` (densities; the GradNetOT paper): minimise
          E_P | log det J_T(x) - log p(x) + log q(T(x)) | with the analytic log-determinant; needs both
          ``log_prob``. Best when densities are known and d is small.
        * ``"auto"``: ``"plan"`` with the whole data sets as one batch (regression on POT's exact plan) when
          both inputs are tensors of at most 1024 samples, ``"dual"`` otherwise. ``"monge_ampere"`` is never
          chosen automatically: on the mixture benchmark (sharply varying target density) it started ~200
          nats off and was worse than the linear map after 60 s, while ``"dual"`` was the most accurate
          method in every dimension tested (``benchmarks/results/transport_accuracy.md``).

    The default ``potential`` is a :class:`BrenierNet` (PSD quadratic + mGradNet-M sized from d + 1e-3 x),
    started at the Bures map between the sample moments (``init="bures"``; ``"none"`` keeps its own
    initialisation); ``potential`` may also be "mgradnet_c", "mgradnet_m", "icnn" or any
    :class:`~gradflow.potentials.MonotonePotential` (then ``init`` applies only to a BrenierNet).

    Training runs through :func:`gradflow.train.fit` with a sampler of fresh batches (``batch_size`` per
    side; default 512) for ``steps`` Adam steps (learning rate ``lr``, default 1e-2, 1e-3 for
    ``"monge_ampere"``) or until
    ``max_time`` seconds; other keyword arguments go to ``fit`` (``scheduler``, ``grad_clip``, ``eval_every``,
    ``early_stopping``, ``checkpoint_dir``, ``history_path``, ``callbacks``, ...; not ``val_data``,
    ``val_loss``, ``val_grad``, which ``fit_ot_map`` sets). ``scheduler="cosine"`` decays the learning
    rate to 1% over the whole budget: ``steps``, or ``max_time`` (wall clock) if that is reached first.
    ``dtype`` defaults to the samples' dtype (float32 for distributions).

    Held-out validation (method ``"dual"`` with a sample tensor; on request for ``"plan"``): the semi-dual on N
    samples per side overfits the empirical measures, the more so the fewer samples per dimension (on the
    d = 32 mixture pair, 2000 steps, without it: 61% L2-UVP from N = 1024 and 7.9e6% from N = 256, against
    34-40% for the linear map; ``benchmarks/results/transport_samples.md``). So a fraction ``val_fraction``
    (default 0.2 for ``"dual"``, 0 for ``"plan"``; 0 disables) of each tensor's N rows, m =
    min(2048, max(1, round(val_fraction * N))), is held out (a permutation drawn from ``seed``; a sampler or
    distribution facing a tensor gives a fixed draw of as many points). The rest trains, and gives the
    moments of the Bures start. Every ``eval_every`` steps (default ``max(1, steps // 50)``) and before
    the first step, the held-out objective is evaluated; for ``"dual"`` it is the semi-dual that training
    minimises, on the held-out sets X_val (m_P, d) and Y_val (m_Q, d):

        J_val(psi) = mean_{x in X_val} psi(x) + mean_{y in Y_val} [<x*(y), y> - psi(x*(y))],

    with x*(y) from the training solver (dense Newton or Newton-CG from 0, or Newton-CG from the amortised
    network's prediction; no amortisation loss) run to its tolerance, up to 50 iterations. Any x* gives a
    lower bound <x*, y> - psi(x*) <= psi*(y), exact when grad psi(x*) = y; with the training's few
    iterations an unconverged solve made weights look spuriously good. For ``"plan"`` J_val is the
    plan-regression loss between the held-out sets. Training stops after ``early_stopping`` (default 10)
    evaluations without a new lowest J_val (``early_stopping=None`` runs the whole budget). The map returned
    holds the weights of the latest evaluation (the initial weights count as step 0) whose J_val exceeds
    the lowest by at most one paired standard error over the held-out points (the one-standard-error rule):
    a few dozen held-out points cannot rank maps closer than that noise, and an overfitting fit drifts many
    standard errors away. History entries at evaluations carry ``val_loss``; ``OTMap.best_step`` and
    ``OTMap.best_val_loss`` give the evaluation whose weights were kept. Samplers and distributions draw
    fresh samples at every step and are not validated (``val_fraction`` > 0 or ``early_stopping`` with
    neither side a tensor raises ValueError). On the benchmark above, with the defaults: 22% from N = 1024 and
    40% (the linear map's level) from N = 256 at d = 32; at N >= 16384 the same accuracy as before within the
    run-to-run spread, the evaluations adding ~13% CPU time at d = 32. Where the fit does not overfit, the
    held-out rows cost accuracy (d = 2, N = 256: 2.7% instead of 1.0-1.2%); ``val_fraction=0`` restores the
    behaviour without validation.

    Returns:
        :class:`OTMap` holding the trained network (on ``device``): the weights chosen on the held-out
        objective when samples were held out, else the last weights.

    Example:
        >>> x = torch.randn(2000, 2); y = x @ torch.tensor([[2.0, 0.5], [0.5, 1.0]]) + 1
        >>> T = fit_ot_map(x, y, method="dual", steps=50, progress=False, device="cpu")
        >>> (T(x) - y).square().sum(-1).mean() < 0.05
        tensor(True)
    """
    check_positive_int(steps, "steps")
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size", minimum=2)
    check_choice(init, "init", {"bures", "none"})
    if dtype is not None and dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    src, tgt = _Law(source, "source", dtype), _Law(target, "target", dtype)
    if src.dim != tgt.dim:
        raise ValueError(f"source and target must have the same dimension, got {src.dim} and {tgt.dim}")
    dtype = src.dtype if dtype is None else dtype
    src.dtype = tgt.dtype = dtype
    chose_whole_plan = method == "auto"
    method = _resolve_method(method, src, tgt)
    chose_whole_plan = chose_whole_plan and method == "plan"
    allowed = _METHOD_OPTIONS[method]
    unknown = sorted(set(options) - allowed - _FIT_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for method {method!r}; method options: "
            f"{', '.join(sorted(allowed)) or 'none'}; other options go to gradflow.train.fit"
        )
    method_opts = {k: options.pop(k) for k in list(options) if k in allowed}
    held_out = _held_out(src, tgt, val_fraction, seed, method)
    if held_out is None and options.get("early_stopping") is not None:
        raise ValueError("early_stopping needs held-out samples: pass a sample tensor as source or target "
                         "with val_fraction > 0")
    model, spec = _make_potential(potential, src.dim, dtype)
    generator = torch.Generator().manual_seed(seed)
    if method == "dual":
        conjugate, iters, cg_iters, amortization = _dual_options(method_opts, src.dim)
    amortized = method == "dual" and conjugate == "amortized"
    T0 = None
    if init == "bures" and (isinstance(model, BrenierNet) or amortized):
        params = next(model.parameters())
        T0 = bures_map(src.moment_samples(generator), tgt.moment_samples(generator))
        T0 = [t.to(dtype=params.dtype, device=params.device) for t in (T0.matrix, T0.mean_in, T0.mean_out)]
    if T0 is not None and isinstance(model, BrenierNet):
        model.init_affine(*T0)
    if amortized:
        # x*(y) = grad psi*(y) is a monotone gradient too: a BrenierNet started at the inverse Bures map
        inverse_net = _inverse_net(src.dim).to(dtype)
        if T0 is not None:
            inverse_net.init_affine(torch.linalg.inv(T0[0].double()).to(dtype), T0[2], T0[1])
        model = _PotentialAndConjugate(model, AmortizedConjugate(inverse_net, amortization))
    if batch_size is None and chose_whole_plan:
        batch_size = max(src.samples.shape[0], tgt.samples.shape[0])
    batch = batch_size or _DEFAULT_BATCH[method]
    if method == "plan":
        plan = check_choice(method_opts.get("plan", "exact"), "plan", {"exact", "entropic"})
        reg = method_opts.get("reg", 0.05)
        if not (isinstance(reg, (int, float)) and math.isfinite(reg) and reg > 0):
            raise ValueError(f"reg must be a finite number > 0, got {reg!r}")
        terms = val_terms = _plan_residuals(plan, float(reg))
    elif method == "dual":
        terms = _dual_terms(conjugate, iters, cg_iters)
        val_terms = _dual_terms(conjugate, iters, cg_iters, held_out=True)
    loss = _monge_ampere_loss(src, tgt) if method == "monge_ampere" else _mean_of_terms(terms)

    if method == "monge_ampere":
        def data(g):
            return src.draw(batch, g)
    else:
        def data(g):
            return src.draw(batch, g), tgt.draw(batch, g)

    start = time.perf_counter()
    if lr is None:  # the network-alone minimax (no fine-tuning) diverged at 1e-2, worked at 1e-3 (see docstring)
        lr = _DEFAULT_LR[method] if not (amortized and iters == 0) else 1e-3
    if options.get("scheduler") == "cosine":
        options["scheduler"] = _budget_cosine(steps, max_time)
    if held_out is not None:
        selection = _HeldOutSelection(val_terms)
        callbacks = options.get("callbacks", ())
        if isinstance(callbacks, (list, tuple)):  # anything else: fit's error
            callbacks = [selection.callback, *callbacks]
        options.update(val_data=lambda g: held_out, val_loss=selection.loss, callbacks=callbacks,
                       early_stopping=options.get("early_stopping", _DEFAULT_PATIENCE))
        with torch.no_grad():  # the initial map (step 0) is a candidate too
            selection.loss(model, held_out)
        selection.record(0, model)
    result = fit(model, loss, data, steps=steps, lr=lr, max_time=max_time, seed=seed, device=device,
                 progress=progress, **options)
    best_step, best_val_loss = result.best_step, result.best_val_loss
    chosen = None if held_out is None else selection.select()
    if chosen is not None and (best_step is None or any(e[0] == best_step for e in selection.evaluations)):
        best_step, best_val_loss, state = chosen  # (else a resumed run: fit's best from before the resume)
        result.model.load_state_dict(state)
    model, inverse_net = (result.model.psi, result.model.conjugate.net) if amortized else (result.model, None)
    return OTMap(model, method=method, spec=spec, history=result.history, steps=result.steps,
                 stop_reason=result.stop_reason, seconds=time.perf_counter() - start, inverse_net=inverse_net,
                 best_step=best_step, best_val_loss=best_val_loss)
