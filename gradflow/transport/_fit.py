"""fit_ot_map: fit an OT map as the gradient of a convex network, through gradflow.train.fit (private)."""

from __future__ import annotations

import inspect
import math
import time

import torch
from torch import distributions as D
from torch import nn

from .._validation import check_choice, check_positive_int, from_numpy
from ..potentials import MonotonePotential
from ..train import fit
from ._map import POTENTIAL_NAMES, OTMap, build_potential
from ._methods import METHODS, PlanRegression, SemiDual, TransportMethod, sum_of_means
from ._metrics import bures_map, check_samples
from ._potential import DEFAULT_MODULES, BrenierNet

__all__ = ["fit_ot_map"]

_FIT_OPTIONS = set(inspect.signature(fit).parameters) - {
    "model", "loss", "data", "steps", "epochs", "batch_size", "lr", "max_time", "seed", "device", "progress",
    "val_data", "val_loss", "val_grad",
}
_MOMENT_SAMPLES = 20_000
_WHOLE_PLAN = 1024  # method='auto' regresses on one exact plan between sample tensors up to this size
_DEFAULT_VAL_FRACTION = 0.2  # share of a sample tensor's rows held out for validation (SemiDual)
_MAX_HELD_OUT = 2048  # rows held out per side at most: every evaluation solves a conjugate per held-out point
_DEFAULT_PATIENCE = 10  # evaluations without a new best held-out objective before stopping


class _Law:
    """A probability law given as samples, a sampler callable or a torch Distribution, seen uniformly."""

    def __init__(self, obj, name: str, dtype):
        self.name, self.samples, self.log_prob = name, None, None
        obj = from_numpy(obj)
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
                f"{name} must be a tensor (or NumPy array) of samples (N, d), a callable sample(n) -> (n, d) tensor "
                f"or a torch.distributions.Distribution; got {type(obj).__name__}"
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


def _resolve_method(method, source: _Law, target: _Law) -> TransportMethod:
    """The method object for ``method`` (a :class:`TransportMethod` or a name), bound to the two laws."""
    if isinstance(method, str):
        check_choice(method, "method", {"auto", *METHODS})
        if method == "auto":
            small = [law.samples is not None and law.samples.shape[0] <= _WHOLE_PLAN for law in (source, target)]
            method = PlanRegression(whole_data=True) if all(small) else SemiDual()
        else:
            method = METHODS[method]()
    elif not isinstance(method, TransportMethod):
        raise ValueError(f"method must be 'auto', one of {', '.join(sorted(METHODS))} or a TransportMethod "
                         f"(SemiDual, PlanRegression, MongeAmpere), got {type(method).__name__}")
    if method.needs_log_prob and (source.log_prob is None or target.log_prob is None):
        raise ValueError(
            f"method {method.name!r} needs log-densities: pass source and target as torch.distributions "
            "objects with log_prob (or use method='dual' or 'plan' for samples)"
        )
    return method.bind(source, target)


def _make_potential(potential, dim: int, dtype) -> tuple[MonotonePotential, dict | None]:
    if potential is None or isinstance(potential, str):
        name = "brenier" if potential is None else potential
        check_choice(name, "potential", POTENTIAL_NAMES)
        spec = {"name": name, "dim": dim, "strong_convexity": 1e-3}
        if name == "brenier":
            spec.update(net="mgradnet_m", n_modules=DEFAULT_MODULES)
        return build_potential(spec).to(dtype), spec
    if not isinstance(potential, MonotonePotential):
        raise ValueError(
            f"potential must be None, one of {', '.join(POTENTIAL_NAMES)} or a MonotonePotential "
            f"(a convex potential with inverse), got {type(potential).__name__}"
        )
    if potential.dim != dim:
        raise ValueError(f"potential acts on R^{potential.dim} but the data are in R^{dim}")
    return potential.to(dtype), None


def _cosine(steps: int):
    """``scheduler="cosine"``: the learning-rate factor 0.01 + 0.99 (1 + cos(pi t / steps)) / 2 at step t,
    a decay to 1% over the step budget (on steps, never wall time, so that a seeded run is reproducible)."""
    def factory(optimizer):
        def factor(step: int) -> float:
            return 0.01 + 0.495 * (1.0 + math.cos(math.pi * min(step / steps, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    return factory


class _HeldOutSelection:
    r"""The held-out objective as ``fit``'s ``val_loss``, and the choice of the weights to keep.

    ``terms(model, (X_val, Y_val))`` gives per-point terms a (m_P,) and b (m_Q,) (b may be empty) with
    J_val = mean(a) + mean(b). :meth:`loss` is the ``val_loss``; :meth:`record` (also as ``callback``)
    stores each evaluation's terms with a CPU copy of the weights. :meth:`select` applies the
    one-standard-error rule (Breiman et al. 1984; Hastie et al., ESL 7.10) between evaluation t and the
    lowest one, b*: it keeps the latest t with

        J_t - J_b* <= SE_t,   SE_t^2 = Var_i(a_t,i - a_b*,i) / m_P + Var_j(b_t,j - b_b*,j) / m_Q,

    the paired standard error of the difference on the same held-out points. A small held-out set cannot
    rank maps that differ by less than this noise, while an overfitting fit drifts many standard errors away.
    """

    def __init__(self, terms):
        self.terms, self.last, self.evaluations = terms, None, []

    def loss(self, model, batch) -> torch.Tensor:
        a, b = self.terms(model, batch)
        self.last = [t.detach().to("cpu", torch.float64) for t in (a, b)]
        return sum_of_means((a, b))

    def record(self, step: int, model: nn.Module) -> None:
        a, b = self.last
        value = float(sum_of_means((a, b)))
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


def _held_out(source: _Law, target: _Law, val_fraction, seed: int, method: TransportMethod):
    """Split the validation sets (x_val (m_P, d), y_val (m_Q, d)) off the training samples, or None.

    A tensor of N rows gives up m = min(2048, max(1, round(val_fraction * N))) random rows (a permutation
    drawn from ``seed``); a sampler or distribution facing a tensor contributes a fixed draw of as many
    points. ``val_fraction=None`` means 0.2 for method "dual" when a side is a tensor, else no validation.
    """
    tensors = [law for law in (source, target) if law.samples is not None]
    if val_fraction is None:
        val_fraction = _DEFAULT_VAL_FRACTION if tensors and method.validates_samples else 0.0
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


def fit_ot_map(source, target, *, method="auto", potential=None, steps: int = 2000, batch_size: int | None = None,
               lr: float | None = None, max_time: float | None = None, seed: int = 0, device="auto",
               progress: bool = True, dtype: torch.dtype | None = None, init: str = "bures",
               val_fraction: float | None = None, **options) -> OTMap:
    r"""Fit the optimal transport map (quadratic cost) from P to Q as T = grad psi with psi convex.

    By Brenier's theorem the optimal map is the unique gradient of a convex function pushing P to Q, and a
    monotone gradient network is such a gradient by construction.

    Args:
        source, target: P and Q, each a tensor of samples (N, d) (N >= d + 1), a callable
            ``sample(n) -> (n, d)`` tensor, or a ``torch.distributions.Distribution`` over R^d.
        method: a :class:`TransportMethod` (:class:`SemiDual`, :class:`PlanRegression`,
            :class:`MongeAmpere`, configured by their arguments), or a name for one with its defaults:
            ``"dual"``, ``"plan"``, ``"monge_ampere"``, or ``"auto"``: ``PlanRegression(whole_data=True)``
            (regression on POT's exact plan between the two sample sets) when both inputs are tensors of at
            most 1024 samples, ``SemiDual()`` otherwise.
        potential: psi; by default a :class:`BrenierNet` (PSD quadratic + mGradNet-M + 1e-3 ||x||^2 / 2),
            or "mgradnet_c", "mgradnet_m", "icnn", or any :class:`~gradflow.potentials.MonotonePotential`.
        init: ``"bures"`` starts a BrenierNet (and an amortised inverse network) at the Bures map between
            the sample moments; ``"none"`` keeps the network's own initialisation.
        steps, batch_size, lr, max_time: Adam steps (a batch of ``batch_size`` per side from each law,
            default the method's, 512), learning rate (default the method's: 1e-2, 1e-3 for
            :class:`MongeAmpere`), and a wall-clock limit that stops the run early.
        val_fraction: share of each sample tensor's rows held out (see below); default 0.2 for
            :class:`SemiDual`, 0 (no validation) otherwise.
        seed, device, progress, dtype: as :func:`gradflow.train.fit`; ``dtype`` defaults to the samples'
            (float32 for distributions).
        options: passed to :func:`gradflow.train.fit` (``scheduler``, ``grad_clip``, ``eval_every``,
            ``early_stopping``, ``checkpoint_dir``, ``history_path``, ``callbacks``, ...; not ``val_data``,
            ``val_loss``, ``val_grad``, which are set here). ``scheduler`` defaults to ``"cosine"``: the
            learning rate decays to 1% over ``steps`` (``scheduler=None`` keeps it constant).

    Held-out validation: the semi-dual on N samples per side overfits the empirical measures, the more so
    the fewer samples per dimension. So m = min(2048, max(1, round(val_fraction * N))) of each tensor's rows
    are held out (a permutation drawn from ``seed``; a sampler or distribution facing a tensor gives a fixed
    draw of as many points) and the rest train (and give the moments of the Bures start). Every
    ``eval_every`` steps (default ``max(1, steps // 50)``), and before the first step, the method's held-out
    objective J_val is evaluated (for :class:`SemiDual`, the semi-dual on the held-out sets with x* solved
    to tolerance). Training stops after ``early_stopping`` (default 10) evaluations without a new lowest
    J_val (``early_stopping=None`` runs the whole budget), and the map keeps the weights of the latest
    evaluation whose J_val exceeds the lowest by at most one paired standard error over the held-out points
    (the one-standard-error rule). Samplers and distributions draw fresh samples at every step and are not
    validated.

    Returns:
        :class:`OTMap` holding the trained network (on ``device``): the weights chosen on the held-out
        objective when samples were held out, else the last weights; ``best_step`` and ``best_val_loss``
        say which evaluation they come from.

    Example:
        >>> x = torch.randn(2000, 2); y = x @ torch.tensor([[2.0, 0.5], [0.5, 1.0]]) + 1
        >>> T = fit_ot_map(x, y, method="dual", steps=50, progress=False, device="cpu")
        >>> (T(x) - y).square().sum(-1).mean() < 0.05
        tensor(True)
    """
    if check_positive_int(seed, "seed", minimum=0) >= 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    with torch.random.fork_rng(devices=[]):  # seeded initialisation and draws; the caller's generator is kept
        torch.manual_seed(seed)
        return _fit_ot_map(source, target, method=method, potential=potential, steps=steps, batch_size=batch_size,
                           lr=lr, max_time=max_time, seed=seed, device=device, progress=progress, dtype=dtype,
                           init=init, val_fraction=val_fraction, **options)


def _fit_ot_map(source, target, *, method, potential, steps, batch_size, lr, max_time, seed, device, progress, dtype,
                init, val_fraction, **options) -> OTMap:
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
    method = _resolve_method(method, src, tgt)
    unknown = sorted(set(options) - _FIT_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)}; options go to gradflow.train.fit (method settings such "
            "as conjugate=, plan= or reg= are arguments of SemiDual, PlanRegression, MongeAmpere)"
        )
    held_out = _held_out(src, tgt, val_fraction, seed, method)
    if held_out is None and options.get("early_stopping") is not None:
        raise ValueError("early_stopping needs held-out samples: pass a sample tensor as source or target "
                         "with val_fraction > 0")
    psi, spec = _make_potential(potential, src.dim, dtype)
    affine = None
    if init == "bures":
        generator = torch.Generator().manual_seed(seed)
        T0 = bures_map(src.moment_samples(generator), tgt.moment_samples(generator))
        param = next(psi.parameters())
        affine = [t.to(dtype=param.dtype, device=param.device) for t in (T0.matrix, T0.mean_in, T0.mean_out)]
        if isinstance(psi, BrenierNet):
            psi.init_affine(*affine)
    model = method.setup(psi, affine)
    batch = batch_size or method.batch_size

    start = time.perf_counter()
    if options.setdefault("scheduler", "cosine") == "cosine":
        options["scheduler"] = _cosine(steps)
    if held_out is not None:
        selection = _HeldOutSelection(method.held_out_terms)
        callbacks = options.get("callbacks", ())
        if isinstance(callbacks, (list, tuple)):  # anything else: fit's error
            callbacks = [selection.callback, *callbacks]
        options.update(val_data=lambda g: held_out, val_loss=selection.loss, callbacks=callbacks,
                       early_stopping=options.get("early_stopping", _DEFAULT_PATIENCE))
        with torch.no_grad():  # the initial map (step 0) is a candidate too
            selection.loss(model, held_out)
        selection.record(0, model)
    result = fit(model, method.loss, lambda g: method.draw(batch, g), steps=steps,
                 lr=method.lr if lr is None else lr, max_time=max_time, seed=seed, device=device,
                 progress=progress, **options)
    best_step, best_val_loss = result.best_step, result.best_val_loss
    chosen = None if held_out is None else selection.select()
    if chosen is not None and (best_step is None or any(e[0] == best_step for e in selection.evaluations)):
        best_step, best_val_loss, state = chosen  # (else a resumed run: fit's best from before the resume)
        result.model.load_state_dict(state)
    psi, inverse_net = method.result(result.model)
    return OTMap(psi, method=method.name, spec=spec, history=result.history, steps=result.steps,
                 stop_reason=result.stop_reason, seconds=time.perf_counter() - start, inverse_net=inverse_net,
                 best_step=best_step, best_val_loss=best_val_loss)
