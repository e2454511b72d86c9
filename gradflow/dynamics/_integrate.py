"""``odeint``: torchdiffeq's solvers plus symplectic integrators written here (private).

The symplectic methods are data: a :class:`SplittingTableau` (drift and kick coefficients) consumed by one
generic splitting stepper, and the implicit midpoint rule solved by Newton or fixed-point iteration.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch
from torch import nn

from .._validation import check_choice, check_finite, check_number, check_positive_int
from ..potentials import ConvergenceError

__all__ = ["SPLITTING_METHODS", "TORCHDIFFEQ_METHODS", "SplittingTableau", "list_methods", "odeint"]

#: torchdiffeq's methods (fixed-grid ones take ``step_size``; "scipy_solver" takes ``solver``)
TORCHDIFFEQ_METHODS = (
    "adaptive_heun", "bosh3", "dopri5", "dopri8", "euler", "explicit_adams", "fehlberg2", "fixed_adams",
    "heun2", "heun3", "implicit_adams", "midpoint", "rk4", "scipy_solver",
)


@dataclass(frozen=True)
class SplittingTableau:
    """A splitting (partitioned) method for separable fields f(q, p) = (f_q(p), f_p(q)).

    One step of size h applies, for i = 1..s, the drift q <- q + drift[i] h f_q and then the kick
    p <- p + kick[i] h f_p, each with the field evaluated at the current (q, p). Zero coefficients are
    skipped (no field evaluation). Consistency needs sum(drift) = sum(kick) = 1. For time-dependent
    fields, time advances with the drifts and each drift evaluates the field at the middle of its
    time interval (the stated order holds for autonomous fields).
    """

    drift: tuple[float, ...]
    kick: tuple[float, ...]
    order: int

    def __post_init__(self):
        if len(self.drift) != len(self.kick):
            raise ValueError("drift and kick must have the same number of stages")
        if abs(sum(self.drift) - 1.0) > 1e-12 or abs(sum(self.kick) - 1.0) > 1e-12:
            raise ValueError("drift and kick coefficients must each sum to 1")


def _yoshida4() -> SplittingTableau:
    # Triple-jump composition of Stormer-Verlet with weights (w1, w0, w1) (Yoshida 1990; Forest-Ruth).
    cbrt2 = 2.0 ** (1.0 / 3.0)
    w1 = 1.0 / (2.0 - cbrt2)
    w0 = -cbrt2 / (2.0 - cbrt2)
    return SplittingTableau(
        drift=(w1 / 2, (w0 + w1) / 2, (w0 + w1) / 2, w1 / 2), kick=(w1, w0, w1, 0.0), order=4
    )


#: name -> tableau of the explicit symplectic splitting methods (separable fields only)
SPLITTING_METHODS = {
    "leapfrog": SplittingTableau(drift=(0.5, 0.5), kick=(1.0, 0.0), order=2),  # Stormer-Verlet, drift-kick-drift
    "yoshida4": _yoshida4(),
}
_IMPLICIT_METHODS = ("implicit_midpoint",)
_IMPLICIT_SOLVERS = ("newton", "fixed_point")
_RTOL, _ATOL = 1e-7, 1e-9  # odeint's default tolerances


def list_methods() -> list[str]:
    """Every method name :func:`odeint` accepts."""
    return sorted((*TORCHDIFFEQ_METHODS, *SPLITTING_METHODS, *_IMPLICIT_METHODS))


def _takes_time(field) -> bool:
    """True for torchdiffeq-style ``f(t, z)``, False for ``f(z)`` (decided from the signature)."""
    target = field.forward if isinstance(field, nn.Module) else field
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume f(z)
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return len(required) >= 2 or (len(positional) >= 2 and positional[0].name == "t")


class _TimeField(nn.Module):
    """``field`` as f(t, z) with its output checked; a Module so that adjoints find its parameters."""

    def __init__(self, field):
        super().__init__()
        if not callable(field):
            raise ValueError(f"field must be callable as f(z) or f(t, z), got {type(field).__name__}")
        self.field = field  # registered as a submodule when it is one
        self.takes_time = _takes_time(field)

    def forward(self, t, z):
        out = self.field(t, z) if self.takes_time else self.field(z)
        if not isinstance(out, torch.Tensor) or out.shape != z.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"field must return a tensor shaped like the state {tuple(z.shape)}, got {shape}")
        self.__dict__["last"] = (t, out)  # read only when an adaptive solve fails (no sync per evaluation)
        return out


def _check_state_and_time(z0, t) -> torch.Tensor:
    if not isinstance(z0, torch.Tensor) or not z0.is_floating_point():
        raise ValueError(f"z0 must be a floating-point tensor of shape (..., 2n), got {getattr(z0, 'dtype', z0)!r}")
    if z0.ndim == 0 or z0.shape[-1] == 0 or z0.shape[-1] % 2:
        raise ValueError(f"z0 must have shape (..., 2n) with an even state size (q, p), got {tuple(z0.shape)}")
    if z0.numel() == 0:
        raise ValueError(f"z0 holds no initial states (shape {tuple(z0.shape)}); pass at least one")
    check_finite(z0, "z0")
    return check_times(t, z0.dtype, z0.device)


def check_times(t, dtype: torch.dtype, device: torch.device | None = None, *, minimum: int = 1) -> torch.Tensor:
    """``t`` as a 1-D tensor of ``dtype``: at least ``minimum`` finite times, strictly increasing or strictly
    decreasing, on ``device`` (when given). A sequence of numbers is converted (``torch.as_tensor``), an
    integer tensor cast; anything else raises ValueError naming ``t``."""
    if not isinstance(t, torch.Tensor):
        try:
            t = torch.as_tensor(t, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"t must be a 1-D tensor (or sequence) of times, got {type(t).__name__}") from None
    if not t.is_floating_point() and t.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"t must be a real 1-D tensor of times, got dtype {t.dtype}")
    if t.ndim != 1 or t.numel() < minimum:
        raise ValueError(f"t must be a 1-D tensor of at least {minimum} time{'s' * (minimum > 1)}, "
                         f"got shape {tuple(t.shape)}")
    if device is not None and t.device != device:
        raise ValueError(f"t is on {t.device} but z0 is on {device}; move one of them")
    t = t.to(dtype)
    check_finite(t, "t")
    if t.numel() > 1:
        dt = t[1:] - t[:-1]
        if not (bool((dt > 0).all()) or bool((dt < 0).all())):
            raise ValueError("t must be strictly increasing or strictly decreasing")
    return t


def _torchdiffeq_options(method: str) -> frozenset[str] | None:
    """The option names torchdiffeq's solver for ``method`` takes (read from its constructors' signatures;
    None if torchdiffeq's internals cannot be inspected, in which case options are passed unchecked)."""
    try:
        from torchdiffeq._impl.odeint import SOLVERS
    except ImportError:  # pragma: no cover - a torchdiffeq without this layout
        return None
    names = {"norm"}  # torchdiffeq's odeint consumes it for every method
    for cls in SOLVERS[method].__mro__:
        init = vars(cls).get("__init__")
        if init is None:
            continue
        names.update(p.name for p in inspect.signature(init).parameters.values()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return frozenset(names - {"self", "func", "y0", "rtol", "atol"})


def _check_tolerance(value, name: str) -> None:
    try:
        tensor = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if isinstance(value, bool) or tensor.numel() == 0 or not bool((torch.isfinite(tensor) & (tensor >= 0)).all()):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_arguments(method, rtol, atol, step_size, options) -> None:
    """Validate the solver arguments of :func:`odeint` (everything but the field, state and times)."""
    check_choice(method, "method", list_methods())
    _check_tolerance(rtol, "rtol")
    _check_tolerance(atol, "atol")
    if not bool(torch.as_tensor(rtol, dtype=torch.float64).any() | torch.as_tensor(atol, dtype=torch.float64).any()):
        raise ValueError("rtol and atol cannot both be 0 (the adaptive step size would have no error target)")
    if step_size is not None:
        check_number(step_size, "step_size", minimum=0.0, strict=True)
    if method in TORCHDIFFEQ_METHODS:
        valid = _torchdiffeq_options(method)
        if valid is None:
            return
        if step_size is not None and "step_size" not in valid:
            raise ValueError(f"step_size applies to fixed-step methods; {method!r} is adaptive "
                             f"(its options: {', '.join(sorted(valid))})")
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(f"unknown options for {method!r}: {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    elif options:
        raise ValueError(f"unknown options for {method!r}: {', '.join(sorted(options))}; the symplectic methods "
                         "take step_size (and implicit_midpoint solver, tol, max_iter) only")


def check_odeint_options(method: str, options: dict) -> None:
    """Validate keyword arguments that a caller will forward to :func:`odeint` with ``method`` (private
    helper of the training and metric entry points, so that they fail before any work)."""
    named = ("rtol", "atol", "step_size", "adjoint", "solver", "tol", "max_iter")
    _check_arguments(method, options.get("rtol", _RTOL), options.get("atol", _ATOL), options.get("step_size"),
                     {k: v for k, v in options.items() if k not in named})


def odeint(field, z0: torch.Tensor, t, method: str = "dopri5", *, rtol: float = _RTOL, atol: float = _ATOL,
           step_size: float | None = None, adjoint: bool = False, solver: str | None = None, tol: float | None = None,
           max_iter: int | None = None, **options) -> torch.Tensor:
    r"""Integrate dz/dt = f(z) (or f(t, z)) from z(t[0]) = z0 and return z at every time in ``t``.

    Args:
        field: the vector field, ``f(z)`` (the models and systems of gradflow.dynamics) or torchdiffeq-style
            ``f(t, z)`` (decided from its signature); it maps (..., 2n) -> (..., 2n) and acts on every
            batch entry independently.
        z0: initial states, shape (..., 2n) with z = (q, p); float32 or float64, any device.
        t: 1-D times, strictly increasing or strictly decreasing (backward integration).
        method: a torchdiffeq method (``"dopri5"``, ``"rk4"``, ..., see :data:`TORCHDIFFEQ_METHODS`) or
            a symplectic method written here:

            * ``"leapfrog"``: Stormer-Verlet (drift-kick-drift), order 2, and ``"yoshida4"``: the
              Yoshida / Forest-Ruth triple jump, order 4. Explicit and symplectic for **separable**
              fields f = (dH/dp(p), -dH/dq(q)); the field is evaluated on the full state and the half
              needed by each stage is used, or, for a field with ``velocity(p)`` and ``force(q)`` methods
              (:class:`SeparableHamiltonianNet`), only that half. Not symplectic (and not accurate to their
              order) otherwise.
            * ``"implicit_midpoint"``: z1 = z0 + h f((z0 + z1) / 2), order 2, symplectic for any
              Hamiltonian field; each step solves the equation by ``solver="newton"`` (the default; Jacobian
              by autograd, d backward passes) or ``"fixed_point"`` until the update is below
              ``tol (1 + |z1|_inf)`` (``tol``: 1e-6 for float32, 1e-12 for float64), else
              :class:`~gradflow.potentials.ConvergenceError` after ``max_iter`` (default 50) iterations. Gradients
              (when enabled) follow the implicit function theorem: one Newton correction at the solution.
        rtol, atol: tolerances of torchdiffeq's adaptive methods: finite, >= 0, not both 0 (checked for
            every method).
        step_size: largest internal step of the fixed-step methods (torchdiffeq's fixed-grid ones and
            the symplectic ones), a finite number > 0; default: the spacing of ``t``. Passing it to an
            adaptive method raises ValueError (use ``first_step`` / ``max_step``).
        adjoint: integrate the backward pass with torchdiffeq's adjoint method (torchdiffeq methods only;
            pass an ``nn.Module`` field so that its parameters receive gradients).
        solver: implicit_midpoint's iteration (above), or for ``method="scipy_solver"`` the scipy method
            (e.g. ``"RK45"``, ``"LSODA"``); ``solver``, ``tol`` and ``max_iter`` given to any other method
            raise ValueError.
        options: further options of the torchdiffeq solver (e.g. ``first_step``, ``max_num_steps``); a name
            the chosen solver does not take raises ValueError listing those it does.

    Returns:
        (len(t), \*z0.shape) tensor, differentiable with respect to z0 and the field's parameters.

    Example:
        >>> field = lambda z: torch.cat([z[..., 1:], -z[..., :1]], -1)  # H = (q^2 + p^2) / 2
        >>> z = odeint(field, torch.tensor([1.0, 0.0]), torch.linspace(0, 6.283, 50), method="leapfrog")
        >>> z.shape, bool((z[-1] - z[0]).abs().max() < 1e-2)
        (torch.Size([50, 2]), True)
    """
    _check_arguments(method, rtol, atol, step_size, options)
    implicit = {"solver": solver, "tol": tol, "max_iter": max_iter}
    if method == "scipy_solver":
        implicit.pop("solver")
    given = sorted(k for k, v in implicit.items() if v is not None)
    if given and method not in _IMPLICIT_METHODS:
        raise ValueError(f"{', '.join(given)} apply to implicit_midpoint"
                         f"{' (solver also to scipy_solver)' if 'solver' in given else ''}, not to {method!r}")
    t = _check_state_and_time(z0, t)
    func = _TimeField(field)
    if method in TORCHDIFFEQ_METHODS:
        import torchdiffeq

        if step_size is not None:
            options["step_size"] = step_size
        if solver is not None:  # scipy_solver's scipy method
            options["solver"] = solver
        kwargs = {"rtol": rtol, "atol": atol, "method": method, "options": options or None}
        try:
            if adjoint:
                return torchdiffeq.odeint_adjoint(func, z0, t, **kwargs)
            return torchdiffeq.odeint(func, z0, t, **kwargs)
        except AssertionError as err:  # torchdiffeq's "underflow in dt": say why
            if "underflow" not in str(err):
                raise
            when, out = func.__dict__.get("last", (t[0], None))
            if out is not None and not bool(torch.isfinite(out).all()):
                raise ValueError(f"field returned NaN or inf (for the states from z0), so the adaptive {method!r} "
                                 "step size underflowed; check the field and z0") from None
            raise ValueError(f"the adaptive {method!r} step size underflowed near t = {float(when):.6g} (the field "
                             "is too stiff or the solution blows up); lower rtol/atol or use a fixed-step method "
                             "(e.g. method='rk4' with step_size)") from None
    if adjoint:
        raise ValueError(f"adjoint=True needs a torchdiffeq method; {method!r} is differentiated by backprop")
    if method in SPLITTING_METHODS:
        step = _splitting_step(SPLITTING_METHODS[method])
    else:
        solver = "newton" if solver is None else check_choice(solver, "implicit solver", _IMPLICIT_SOLVERS)
        max_iter = 50 if max_iter is None else check_positive_int(max_iter, "max_iter")
        if tol is None:
            tol = 1e-12 if z0.dtype == torch.float64 else 1e-6
        elif not (tol > 0 and math.isfinite(tol)):
            raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
        step = _implicit_midpoint_step(solver, tol, max_iter)
    return _fixed_grid(func, step, z0, t, step_size)


def _fixed_grid(func, step, z0, t, step_size):
    """Advance z0 along the grid t with ``step(func, t, h, z)``, taking equal substeps no longer than
    ``step_size`` inside each interval."""
    states = [z0]
    z = z0
    for i in range(len(t) - 1):
        dt = float(t[i + 1] - t[i])
        n_sub = 1 if step_size is None else max(1, math.ceil(abs(dt) / step_size - 1e-9))
        h = dt / n_sub
        for k in range(n_sub):
            z = step(func, t[i] + k * h, h, z)  # times are 0-dim tensors, as torchdiffeq passes them
        states.append(z)
    return torch.stack(states)


def _halves(func: _TimeField):
    """(velocity(p), force(q)) of an autonomous separable field that provides them (e.g.
    SeparableHamiltonianNet), else None: a drift then evaluates only dq/dt and a kick only dp/dt."""
    velocity, force = getattr(func.field, "velocity", None), getattr(func.field, "force", None)
    return (velocity, force) if callable(velocity) and callable(force) and not func.takes_time else None


def _splitting_step(tableau: SplittingTableau):
    def step(func, t, h, z):
        n = z.shape[-1] // 2
        q, p = z[..., :n], z[..., n:]
        time, halves = t, _halves(func)
        for a, b in zip(tableau.drift, tableau.kick):
            if a:  # time advances with the drifts; a drift sees the middle of its time interval
                dq = halves[0](p) if halves else func(time + 0.5 * a * h, torch.cat([q, p], -1))[..., :n]
                q = q + (a * h) * dq
                time = time + a * h
            if b:
                dp = halves[1](q) if halves else func(time, torch.cat([q, p], -1))[..., n:]
                p = p + (b * h) * dp
        return torch.cat([q, p], -1)

    return step


def _state_jacobian(f, z):
    """Detached J[..., i, j] = d f(z)_i / d z_j of a field acting on each batch entry independently
    (zero for a field that does not depend on z)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        y = f(z)
        if not y.requires_grad:
            return torch.zeros(*z.shape, z.shape[-1], dtype=z.dtype, device=z.device)
        rows = [torch.autograd.grad(y[..., i].sum(), z, retain_graph=True, allow_unused=True)[0]
                for i in range(y.shape[-1])]
    return torch.stack([torch.zeros_like(z) if r is None else r for r in rows], -2)


def _implicit_midpoint_step(solver: str, tol: float, max_iter: int):
    def step(func, t, h, z0):
        tm = t + 0.5 * h

        def residual(z1, start):
            return z1 - start - h * func(tm, 0.5 * (start + z1))

        def newton_matrix(z1):
            eye = torch.eye(z1.shape[-1], dtype=z1.dtype, device=z1.device)
            return eye - (0.5 * h) * _state_jacobian(lambda m: func(tm, m), 0.5 * (z0.detach() + z1))

        start = z0.detach()
        with torch.no_grad():
            z1 = start + h * func(t, start)  # explicit Euler predictor
            for _ in range(max_iter):
                if solver == "newton":
                    update = torch.linalg.solve(newton_matrix(z1), residual(z1, start).unsqueeze(-1)).squeeze(-1)
                    z_next = z1 - update
                else:
                    z_next = start + h * func(tm, 0.5 * (start + z1))
                change = float((z_next - z1).abs().max())
                z1 = z_next
                if change <= tol * (1.0 + float(z1.abs().max())):
                    break
            else:
                raise ConvergenceError(
                    f"implicit_midpoint: the {solver} iteration did not converge in {max_iter} iterations "
                    f"(last update {change:.3g} > tol {tol:.3g}); reduce step_size or raise max_iter", z1, change
                )
        if not torch.is_grad_enabled():
            return z1
        r = residual(z1, z0)  # zero in value; carries the dependence on z0 and the parameters
        if not r.requires_grad:
            return z1
        # Implicit function theorem: dz1 = -A^{-1} dr with A = I - h/2 J detached (one Newton correction).
        return z1 - torch.linalg.solve(newton_matrix(z1), r.unsqueeze(-1)).squeeze(-1)

    return step
