"""The fitting methods of :func:`fit_ot_map` as objects, each owning its loss, held-out terms and defaults (private).

* :class:`SemiDual`: min over convex psi of E_P[psi(x)] + E_Q[psi*(y)] (samples), psi* by a :class:`Conjugate`;
* :class:`PlanRegression`: regress T on barycentric projections of OT plans (minibatch or whole data);
* :class:`MongeAmpere`: E_P |log det J_T(x) - log p(x) + log q(T(x))| (log-densities).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .._validation import check_choice
from ..potentials import MonotonePotential
from ._conjugate import Amortized, AmortizedConjugate, Conjugate, DenseNewton, NewtonCG
from ._metrics import sinkhorn_plan
from ._potential import DEFAULT_MODULES, BrenierNet, default_net

__all__ = ["CONJUGATES", "METHODS", "MongeAmpere", "PlanRegression", "SemiDual",
           "TransportMethod", "amortized_inverse_net", "sum_of_means"]

#: conjugate solver names accepted by :class:`SemiDual` (besides :class:`Conjugate` objects)
CONJUGATES = {"newton": DenseNewton, "newton_cg": NewtonCG, "amortized": Amortized}
_HELD_OUT_ITERS = 50  # conjugate iterations at most for the held-out objective (it stops at the tolerance)


def sum_of_means(values) -> torch.Tensor:
    """The sum of the means of per-point terms (an empty set of terms adds nothing)."""
    return sum(t.mean() for t in values if t.numel())


def amortized_inverse_net(dim: int, n_modules: int = DEFAULT_MODULES) -> BrenierNet:
    """The amortised inverse network of :class:`Amortized` fits (x*(y) = grad psi*(y) is monotone)."""
    return BrenierNet(dim, default_net(dim, n_modules=n_modules), strong_convexity=1e-3)


class TransportMethod:
    r"""A way to fit T = grad psi: the loss over batches, the held-out objective and the defaults.

    :func:`fit_ot_map` calls :meth:`bind` once per fit, then :meth:`setup` to build the module that
    ``gradflow.train.fit`` trains (psi itself, or psi with auxiliary networks), :meth:`draw` for each batch,
    :meth:`terms` for the per-point loss terms (the loss is the sum of their means), :meth:`held_out_terms`
    for the held-out objective and :meth:`result` to take psi (and an inverse network, if any) back out.

    Class attributes: ``name`` (the string shortcut), ``lr`` and ``batch_size`` (defaults),
    ``needs_log_prob`` (the laws must be distributions with ``log_prob``), ``validates_samples``
    (hold samples out by default when a side is a sample tensor).
    """

    name = "method"
    lr = 1e-2
    batch_size = 512
    needs_log_prob = False
    validates_samples = False

    def bind(self, source, target) -> TransportMethod:
        """A copy of this method for one fit between the laws ``source`` and ``target``."""
        bound = copy.copy(self)
        bound.source, bound.target = source, target
        return bound

    def setup(self, psi: MonotonePotential, affine) -> nn.Module:
        """The module to train; ``affine`` is the Bures start (A, m_P, m_Q) or None."""
        return psi

    def draw(self, n: int, generator: torch.Generator):
        """A training batch of n samples per side."""
        return self.source.draw(n, generator), self.target.draw(n, generator)

    def terms(self, module: nn.Module, batch) -> tuple[torch.Tensor, ...]:
        """Per-point loss terms of a batch; the loss is the sum of their means."""
        raise NotImplementedError

    def held_out_terms(self, module: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-point terms (a (m_P,), b (m_Q,) or empty) of the held-out objective mean(a) + mean(b)."""
        return self.terms(module, batch)[:2]

    def loss(self, module: nn.Module, batch) -> torch.Tensor:
        return sum_of_means(self.terms(module, batch))

    def result(self, module: nn.Module) -> tuple[MonotonePotential, BrenierNet | None]:
        """(psi, inverse network or None) from the trained module."""
        return module, None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if k not in ("source", "target") and not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class _PotentialAndConjugate(nn.Module):
    """psi and its amortised conjugate trained together by one optimizer."""

    def __init__(self, psi: MonotonePotential, conjugate: AmortizedConjugate):
        super().__init__()
        self.psi, self.conjugate = psi, conjugate


class SemiDual(TransportMethod):
    r"""The semi-dual (Makkuva et al. 2020; Korotin et al. 2019):

        min over convex psi of  E_P[psi(x)] + E_Q[psi*(y)],   psi*(y) = <x*, y> - psi(x*),  grad psi(x*) = y,

    unbiased when x* is exact (the network is strongly convex, hence invertible). ``conjugate`` finds x*:
    a :class:`Conjugate` (:class:`DenseNewton`, :class:`NewtonCG`, :class:`Amortized`) or one of their names
    ``"newton"``, ``"newton_cg"``, ``"amortized"`` (default settings; the default is ``Amortized()``: a
    network predicts x*, which a few dense (d <= 16) or matrix-free Newton steps refine). The held-out
    objective is the same semi-dual with x* solved to tolerance (up to 50 iterations) by the training
    solver: an unconverged x* underestimates psi*(y), which would make weights on which the solver fails
    look best.

    Example:
        >>> SemiDual(conjugate=NewtonCG(max_iter=10))
        SemiDual(conjugate=NewtonCG(max_iter=10, tol=None, cg_iters=8, cg_rtol=0.0))
    """

    name = "dual"
    validates_samples = True

    def __init__(self, conjugate: Conjugate | str = "amortized"):
        if isinstance(conjugate, str):
            conjugate = CONJUGATES[check_choice(conjugate, "conjugate", CONJUGATES)]()
        elif not isinstance(conjugate, Conjugate):
            raise ValueError(f"conjugate must be one of {', '.join(CONJUGATES)} or a Conjugate "
                             f"(DenseNewton, NewtonCG, Amortized), got {type(conjugate).__name__}")
        self.conjugate = conjugate

    @property
    def lr(self) -> float:
        # the network-alone minimax (no fine-tuning) diverged at 1e-2 and works at 1e-3
        conjugate = self.conjugate
        return 1e-3 if isinstance(conjugate, Amortized) and conjugate.max_iter == 0 else 1e-2

    def setup(self, psi, affine):
        if not self.conjugate.amortized:
            return psi
        net = amortized_inverse_net(psi.dim).to(next(psi.parameters()).dtype)
        if affine is not None:
            A, m_p, m_q = affine
            net.init_affine(torch.linalg.inv(A.double()).to(A.dtype), m_q, m_p)
        return _PotentialAndConjugate(psi, AmortizedConjugate(net, self.conjugate.loss))

    def _solve(self, module, y, held_out: bool):
        conjugate = self.conjugate
        max_iter = max(conjugate.max_iter, _HELD_OUT_ITERS) if held_out else None
        tol = conjugate.strict_tol(y) if held_out else None
        if not conjugate.amortized:
            return module, None, conjugate.solve(module, y, max_iter=max_iter, tol=tol)
        x_pred = module.conjugate(y)
        return module.psi, x_pred, conjugate.solve(module.psi, y, x_pred.detach(), max_iter=max_iter, tol=tol)

    def terms(self, module, batch):
        """psi(x_i), (N,); <x*_j, y_j> - psi(x*_j), (M,); and for an amortised conjugate its loss (a scalar)."""
        x, y = batch
        psi, x_pred, x_star = self._solve(module, y, held_out=False)
        semi_dual = psi.energy(x), (x_star * y).sum(-1) - psi.energy(x_star)
        if x_pred is None:
            return semi_dual
        return *semi_dual, module.conjugate.loss(psi, y, x_pred, x_star)

    def held_out_terms(self, module, batch):
        x, y = batch
        psi, _, x_star = self._solve(module, y, held_out=True)
        return psi.energy(x), (x_star * y).sum(-1) - psi.energy(x_star)

    def result(self, module):
        if isinstance(module, _PotentialAndConjugate):
            return module.psi, module.conjugate.net
        return module, None


class PlanRegression(TransportMethod):
    r"""Regress T(x_i) on the barycentric projection sum_j P_ij y_j / sum_j P_ij of an OT plan P between samples
    of P and Q: exact (``plan="exact"``, POT ``ot.emd``) or entropic (``plan="entropic"``, log-domain Sinkhorn
    with ``reg`` relative to the mean cost). With ``whole_data=True`` (sample tensors on both sides) one plan
    between all training samples is solved once (O(N M) memory, network simplex time) and the steps regress
    on minibatches of its projections; otherwise every step solves the plan between its two batches, which
    is biased (less so with larger batches). An out-of-sample map, fast per step, but the regression learns
    E[matched y | x], a contraction of the optimal map, so its inverse is poor: prefer :class:`SemiDual`
    when it matters.

    Example:
        >>> PlanRegression(plan="entropic", reg=0.1)
        PlanRegression(plan='entropic', reg=0.1, whole_data=False)
    """

    name = "plan"

    def __init__(self, plan: str = "exact", reg: float = 0.05, whole_data: bool = False):
        self.plan = check_choice(plan, "plan", {"exact", "entropic"})
        if isinstance(reg, bool) or not (isinstance(reg, (int, float)) and math.isfinite(reg) and reg > 0):
            raise ValueError(f"reg must be a finite number > 0, got {reg!r}")
        if not isinstance(whole_data, bool):
            raise ValueError(f"whole_data must be True or False, got {whole_data!r}")
        self.reg, self.whole_data = float(reg), whole_data

    def bind(self, source, target) -> PlanRegression:
        if self.whole_data and (source.samples is None or target.samples is None):
            raise ValueError("PlanRegression(whole_data=True) needs sample tensors as source and target")
        bound = super().bind(source, target)
        bound._matched = None
        return bound

    def _targets(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            cost = torch.cdist(x.double(), y.double()).square()
            if self.plan == "exact":
                import numpy as np
                import ot

                a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
                P = torch.from_numpy(ot.emd(a, b, cost.cpu().numpy(), numItermax=10_000_000)).to(cost.device)
            else:
                P = sinkhorn_plan(cost, self.reg)
            return ((P @ y.double()) / P.sum(1, keepdim=True)).to(y.dtype)

    def draw(self, n, generator):
        if not self.whole_data:
            return super().draw(n, generator)
        if self._matched is None:  # after fit_ot_map has held its validation rows out
            x = self.source.samples.to(self.source.dtype)
            self._matched = x, self._targets(x, self.target.samples.to(self.target.dtype))
        x, targets = self._matched
        rows = torch.randperm(len(x), generator=generator)[:n].to(x.device)
        return x[rows], targets[rows]

    def terms(self, module, batch):
        """||T(x_i) - barycentric target_i||^2, (N,), and an empty (0,)."""
        x, y = batch
        targets = y if self.whole_data else self._targets(x, y)
        return (module(x) - targets).square().sum(-1), x.new_zeros(0)

    def held_out_terms(self, module, batch):
        x, y = batch
        return (module(x) - self._targets(x, y)).square().sum(-1), x.new_zeros(0)


class MongeAmpere(TransportMethod):
    r"""The Monge-Ampere residual (the GradNetOT paper): E_P | log det J_T(x) - log p(x) + log q(T(x)) | with
    the analytic log-determinant of the monotone network; needs ``log_prob`` of both laws (pass them as
    ``torch.distributions``). Best when densities are known and d is small.

    Example:
        >>> MongeAmpere()
        MongeAmpere()
    """

    name = "monge_ampere"
    lr = 1e-3
    needs_log_prob = True

    def draw(self, n, generator):
        return self.source.draw(n, generator)

    def terms(self, module, x):
        y = module(x)
        log_q = self.target.log_prob(y.to(self.target.native_dtype)).to(y.dtype)
        log_p = self.source.log_prob(x.to(self.source.native_dtype)).to(x.dtype)
        return ((module.logdet_jacobian(x) - log_p + log_q).abs(),)


#: method name -> class (``fit_ot_map(method=name)`` uses the class's defaults)
METHODS = {cls.name: cls for cls in (SemiDual, PlanRegression, MongeAmpere)}
