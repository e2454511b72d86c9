"""OTMap: a fitted optimal transport map T = grad psi with psi convex (private)."""

from __future__ import annotations

import math
import numbers
import os

import torch

from .._validation import check_field_input, from_numpy
from ..potentials import ConvergenceError, MonotonePotential, create_potential
from ..train import CheckpointError, load_checkpoint, save_checkpoint
from ._conjugate import DENSE_NEWTON_MAX_DIM, newton_cg
from ._methods import amortized_inverse_net
from ._potential import DEFAULT_MODULES, BrenierNet, default_net

__all__ = ["OTMap", "build_potential"]

_FORMAT = "gradflow.transport.OTMap/1"
#: names accepted for ``potential`` in :func:`fit_ot_map` (besides a MonotonePotential instance)
POTENTIAL_NAMES = ("brenier", "icnn", "mgradnet_c", "mgradnet_m")
_CHUNK = 4096  # points per matrix-free inverse solve
_EVAL_CHUNK = 65_536  # points per forward pass without a graph
#: the entries every saved map holds
_FIELDS = frozenset({"spec", "dtype", "state_dict", "method", "history", "steps", "stop_reason", "seconds"})
_CG_ITERS = 16  # CG iterations per Newton step of the matrix-free inverse (at most d)


def build_potential(spec: dict) -> MonotonePotential:
    """Rebuild a potential from the spec stored with an :class:`OTMap` (``{"name", "dim", ...}``)."""
    name, dim = spec["name"], spec["dim"]
    mu = spec.get("strong_convexity", 0.0)
    if name == "brenier":
        # maps saved before the module count was recorded used 4 modules
        return BrenierNet(dim, default_net(dim, spec["net"], spec.get("n_modules", 4)), strong_convexity=mu)
    if name not in POTENTIAL_NAMES:
        raise ValueError(f"unknown potential {name!r}; valid: {', '.join(POTENTIAL_NAMES)}")
    return create_potential(name, dim, strong_convexity=mu)


class OTMap:
    r"""An optimal transport map T = grad psi from P to Q, psi convex (returned by :func:`fit_ot_map`).

    * ``T(x)``: (..., d) -> (..., d), the map, one forward pass of the monotone network;
    * ``T.inverse(y)``: T^{-1}(y) = grad psi^*(y), by Newton on the strongly convex psi (the map from Q to P),
      started from the amortised inverse network's prediction when the fit trained one;
    * ``T.potential(x)``: psi(x), (..., d) -> (...), the Brenier potential (up to a constant);
    * ``T.interpolate(x, t)``: McCann's displacement interpolation (1 - t) x + t T(x), the geodesic
      between P (t = 0) and Q (t = 1) in W2;
    * ``T.transport_cost(x)``: mean ||T(x) - x||^2 over samples x ~ P, an estimate of W2^2(P, Q);
    * ``T.save(path)`` / ``OTMap.load(path)``: a ``weights_only`` checkpoint.

    Attributes: ``model`` (the :class:`~gradflow.potentials.MonotonePotential`), ``inverse_net`` (a network
    approximating T^{-1}, from fits with an :class:`Amortized` conjugate, else None), ``method``, ``history`` (one dict
    per logged step, as :class:`~gradflow.train.FitResult`; entries at evaluations carry ``val_loss``, the
    held-out objective), ``steps`` (optimizer steps done), ``stop_reason`` (``"completed"``,
    ``"early_stopping"`` or ``"max_time"``), ``best_step`` and ``best_val_loss`` (the step whose weights
    ``model`` holds, 0 for the initial ones, and its held-out objective, chosen by :func:`fit_ot_map`'s
    one-standard-error rule; None for a fit without held-out samples), ``seconds`` (fit
    wall time), ``spec`` (how to rebuild ``model``, or None for a user-supplied network).

    Example:
        >>> from gradflow.transport import fit_ot_map
        >>> x = torch.randn(500, 2); y = 2 * x + 1
        >>> T = fit_ot_map(x, y, method="plan", steps=20, progress=False, device="cpu")
        >>> T(torch.zeros(1, 2)).shape, T.interpolate(torch.zeros(3, 2), 0.5).shape
        (torch.Size([1, 2]), torch.Size([3, 2]))
    """

    def __init__(self, model: MonotonePotential, *, method: str = "unknown", spec: dict | None = None,
                 history=(), steps: int = 0, stop_reason: str | None = None, seconds: float = 0.0,
                 inverse_net: BrenierNet | None = None, best_step: int | None = None,
                 best_val_loss: float | None = None):
        if not isinstance(model, MonotonePotential):
            raise ValueError(f"model must be a MonotonePotential, got {type(model).__name__}")
        if inverse_net is not None and (not isinstance(inverse_net, BrenierNet) or inverse_net.dim != model.dim):
            raise ValueError(f"inverse_net must be a BrenierNet on R^{model.dim} or None, got {inverse_net!r}")
        self.model, self.method, self.spec, self.inverse_net = model, method, spec, inverse_net
        self.history, self.steps, self.stop_reason, self.seconds = list(history), steps, stop_reason, seconds
        self.best_step, self.best_val_loss = best_step, best_val_loss

    @property
    def dim(self) -> int:
        return self.model.dim

    def _evaluate(self, fn, x: torch.Tensor, name: str) -> torch.Tensor:
        """fn over points x (..., d): with autograd when x requires grad, else without a graph, in chunks of
        65536 points (bounded memory for any batch)."""
        x = self._points(x, name)
        if x.requires_grad:
            return fn(x)
        flat = x.reshape(-1, self.dim)
        with torch.no_grad():
            out = torch.cat([fn(c) for c in flat.split(_EVAL_CHUNK)]) if len(flat) else fn(flat)
        return out.reshape(*x.shape[:-1], *out.shape[1:])

    def _points(self, x, name: str) -> torch.Tensor:
        """x as a tensor of points (..., d) on the model's dtype and device (a NumPy array is converted), checked."""
        param = next(self.model.parameters())
        x = from_numpy(x, like=param)
        check_field_input(x, self.dim, param, name)
        return x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """T(x) = grad psi(x), (..., d) -> (..., d). A plain tensor unless ``x`` requires grad, in which case the
        result carries the graph (``T.model(x)`` always does). ``x`` (here and in the other methods) may be a
        NumPy array: it is converted to the model's dtype; the result is a tensor."""
        return self._evaluate(self.model, x, "x")

    def inverse(self, y: torch.Tensor, tol: float | None = None, max_iter: int = 50) -> torch.Tensor:
        """T^{-1}(y) = grad psi*(y), (..., d) -> (..., d), without gradients (``T.model.inverse`` gives
        implicit-function gradients). Damped Newton, started from the amortised inverse network's prediction
        when the fit trained one, else from 0: on the dense Jacobian up to d = 16, matrix-free
        (:func:`newton_cg`, CG on Jacobian-vector products) above; in chunks of 4096 points. Converged when
        ||grad psi(x) - y||_inf <= tol (1 + ||y||_inf) (tol: 1e-5 in float32, 1e-10 in float64); raises
        :class:`~gradflow.potentials.ConvergenceError` otherwise."""
        y = self._points(y, "y")
        if tol is None:
            tol = 1e-10 if y.dtype == torch.float64 else 1e-5
        flat = y.detach().reshape(-1, self.dim)
        parts, worst = [], 0.0
        for part in flat.split(_CHUNK):
            with torch.no_grad():
                x0 = None if self.inverse_net is None else self.inverse_net(part)
            if self.dim <= DENSE_NEWTON_MAX_DIM:
                try:
                    with torch.no_grad():
                        x = self.model.inverse(part, tol=tol, max_iter=max_iter, x0=x0)
                except ConvergenceError as err:
                    x, worst = err.x, max(worst, err.residual)
            else:
                x, res = newton_cg(self.model, part, x0, tol=tol, max_iter=max_iter,
                                   cg_iters=min(self.dim, _CG_ITERS))
                worst = max(worst, float(res.max()) if res.numel() else 0.0)
            parts.append(x)
        x = (torch.cat(parts) if parts else flat.clone()).reshape(y.shape)
        if worst > tol:
            solver = "Newton" if self.dim <= DENSE_NEWTON_MAX_DIM else "Newton-CG"
            raise ConvergenceError(f"inverse did not converge in {max_iter} {solver} iterations: worst scaled "
                                   f"residual {worst:.3g} > tol {tol:.3g}", x, worst)
        return x

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """psi(x) with T = grad psi, (..., d) -> (...); a plain tensor unless ``x`` requires grad."""
        return self._evaluate(self.model.energy, x, "x")

    def interpolate(self, x: torch.Tensor, t) -> torch.Tensor:
        """McCann interpolation x_t = (1 - t) x + t T(x) for t in [0, 1]: a float, or a tensor broadcasting
        against x's batch shape (...); returns (..., d). Pushing samples of P gives samples of the W2
        geodesic P_t. A plain tensor unless ``x`` requires grad."""
        x = self._points(x, "x")
        number = isinstance(t, numbers.Real) and not isinstance(t, bool)
        if not (number or (isinstance(t, torch.Tensor) and t.is_floating_point())):
            raise ValueError(f"t must be a number or a floating-point tensor in [0, 1], got {t!r}")
        y = self(x)
        tt = torch.as_tensor(t, dtype=x.dtype)
        if not bool(((tt >= 0) & (tt <= 1)).all()):
            raise ValueError(f"t must lie in [0, 1], got {t!r}")
        tt = tt.to(x.device).unsqueeze(-1) if tt.ndim else tt.to(x.device)
        return x + tt * (y - x)

    def transport_cost(self, x: torch.Tensor) -> float:
        """mean_n ||T(x_n) - x_n||^2 over samples x (N, d) of P: the cost of T, ~W2^2(P, Q) if T is optimal."""
        x = from_numpy(x, like=next(self.model.parameters()))
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"x must be a tensor of shape (N, {self.dim}) with N >= 1, got {getattr(x, 'shape', x)}")
        return float((self(x.detach()) - x).square().sum(-1).mean())

    def to(self, *args, **kwargs) -> OTMap:
        """Move/cast the network (as ``torch.nn.Module.to``); returns self."""
        self.model.to(*args, **kwargs)
        if self.inverse_net is not None:
            self.inverse_net.to(*args, **kwargs)
        return self

    def save(self, path: str | os.PathLike) -> None:
        """Write the map to ``path`` (loads with ``torch.load(weights_only=True)``)."""
        dtype = next(self.model.parameters()).dtype
        history = [{k: v for k, v in h.items() if isinstance(v, (int, float, str)) or v is None}
                   for h in self.history]
        save_checkpoint(path, format=_FORMAT, spec=self.spec, dtype=str(dtype).removeprefix("torch."),
                        state_dict={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                        method=self.method, history=history, steps=self.steps, stop_reason=self.stop_reason,
                        seconds=self.seconds, best_step=self.best_step, best_val_loss=self.best_val_loss,
                        inverse_state_dict=None if self.inverse_net is None else
                        {k: v.detach().cpu() for k, v in self.inverse_net.state_dict().items()},
                        inverse_n_modules=getattr(getattr(self.inverse_net, "net", None), "n_modules", None))

    @classmethod
    def load(cls, path: str | os.PathLike, model: MonotonePotential | None = None,
             map_location="cpu") -> OTMap:
        """Read a map written by :meth:`save`. A map fitted with a user-supplied network needs ``model``, a
        network of the same architecture to load the weights into. A file that is not a readable map, or
        whose weights do not fit the network, raises :class:`~gradflow.train.CheckpointError`."""
        if model is not None and not isinstance(model, MonotonePotential):
            raise ValueError(f"model must be a MonotonePotential (the fitted network's architecture) or None, "
                             f"got {type(model).__name__}")
        state = load_checkpoint(path, map_location=map_location)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise CheckpointError(f"{path} is not a gradflow OT map ({_FORMAT})")
        missing = sorted(_FIELDS - set(state))
        if missing:
            raise CheckpointError(f"{path} is a malformed OT map: it lacks {', '.join(missing)}")
        if model is None and state["spec"] is None:
            raise ValueError(f"{path} holds a user-supplied network: pass model= with the same architecture")
        try:
            if model is None:
                model = build_potential(state["spec"])
            model = model.to(getattr(torch, state["dtype"]))
            model.load_state_dict(state["state_dict"])
            inverse_net = None
            if state.get("inverse_state_dict") is not None:
                # files saved before the module count was recorded used 4 modules
                n_modules = state.get("inverse_n_modules", 4) or DEFAULT_MODULES
                inverse_net = amortized_inverse_net(model.dim, n_modules).to(getattr(torch, state["dtype"]))
                inverse_net.load_state_dict(state["inverse_state_dict"])
        except (KeyError, TypeError, AttributeError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"{path} does not hold weights for this network: {err}") from err
        return cls(model, method=state["method"], spec=state["spec"], history=state["history"],
                   steps=state["steps"], stop_reason=state["stop_reason"], seconds=state["seconds"],
                   inverse_net=inverse_net, best_step=state.get("best_step"),
                   best_val_loss=state.get("best_val_loss"))

    def __repr__(self) -> str:
        seconds = f"{self.seconds:.1f}" if math.isfinite(self.seconds) else "?"
        return f"OTMap(dim={self.dim}, method={self.method!r}, steps={self.steps}, seconds={seconds})"
