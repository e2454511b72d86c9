"""Metrics of learned dynamics: derivative error, rollout state and energy errors, energy drift (private)."""

from __future__ import annotations

import copy
import math

import torch

from .._validation import check_field_input, check_number
from ._integrate import _TimeField, check_odeint_options, check_times, odeint
from ._systems import HamiltonianSystem, TrajectoryData

__all__ = ["derivative_mse", "energy_drift", "error_db", "rollout_error", "rollout_metrics"]


def error_db(mse: float) -> float:
    """10 log10(mse): the error in decibels used by the GradNets paper (lower is better).

    ``mse`` must be a finite number >= 0. A zero error is a perfect score and gives -inf; a negative,
    NaN or infinite ``mse`` (a bug, or a model that blew up) raises ValueError instead of being
    reported as a score.

    Example:
        >>> error_db(1e-3)
        -30.0
    """
    if isinstance(mse, torch.Tensor) and mse.numel() == 1:
        mse = mse.item()
    value = check_number(mse, "mse (a mean squared error)", minimum=0.0)
    return 10.0 * math.log10(value) if value > 0 else -math.inf


def derivative_mse(model, data: TrajectoryData) -> float:
    """mean over entries of (model(z) - dz/dt)^2 on every (state, exact derivative) pair of ``data``."""
    if not isinstance(data, TrajectoryData) or len(data) == 0:
        raise ValueError(f"data must be non-empty TrajectoryData, got {type(data).__name__}")
    if not callable(model):
        raise ValueError(f"model must be a vector field (an nn.Module or callable), got {type(model).__name__}")
    z, dz = data.pairs()
    reference = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    if reference is not None:
        z, dz = z.to(reference), dz.to(reference)
    with torch.no_grad():
        return float((model(z) - dz).square().mean())


def _check_system(system) -> None:
    if not isinstance(system, HamiltonianSystem):
        raise ValueError(f"system must be a HamiltonianSystem, got {type(system).__name__}")


def energy_drift(system: HamiltonianSystem, trajectory: torch.Tensor) -> torch.Tensor:
    """``|H(z_t) - H(z_0)| / |H(z_0)|`` under the true H along ``trajectory`` (T, ..., 2n), T >= 1 finite states:
    shape (T, ...).

    Example:
        >>> from gradflow.dynamics import MassSpring
        >>> energy_drift(MassSpring(), torch.tensor([[1.0, 0.0], [0.0, 1.1]]))
        tensor([0.0000, 0.2100])
    """
    _check_system(system)
    check_field_input(trajectory, system.dim, name="trajectory")
    if trajectory.ndim < 2 or trajectory.shape[0] == 0:
        raise ValueError(f"trajectory must have shape (T, ..., {system.dim}) with T >= 1 states, "
                         f"got {tuple(trajectory.shape)}")
    with torch.no_grad():
        H = system.energy(trajectory)
    return (H - H[:1]).abs() / H[:1].abs().clamp_min(torch.finfo(H.dtype).tiny)


def rollout_metrics(model, system: HamiltonianSystem, z0: torch.Tensor, t: torch.Tensor, *,
                    method: str = "dopri5", rtol: float = 1e-9, atol: float = 1e-9, **options) -> dict:
    """Roll ``model`` out from the initial states z0 (B, 2n) over the times ``t`` (in float64, on a copy of
    the model) and compare with the true flow of ``system``.

    Returns a dict with ``state_mse`` (mean over times, trajectories and coordinates of the squared state
    error), ``energy_mse`` (mean of (H(z_model) - H(z_true))^2 under the true H, HNN's energy metric),
    ``energy_drift`` (mean over trajectories of the largest ``|H(z_model(t)) - H(z0)| / |H(z0)|``) and the
    trajectories ``model_trajectory``, ``true_trajectory`` ((T, B, 2n)).

    Every argument is checked first: an unknown ``method``, a bad tolerance, step size or option, or a
    model that does not map the system's states (..., 2n) to (..., 2n) raises ValueError. Only a rollout
    of a valid model that fails along the way (blows up, the adaptive step underflows, the implicit
    solver does not converge) gives inf errors.
    """
    _check_system(system)
    check_field_input(z0, system.dim, name="z0")
    check_odeint_options(method, {"rtol": rtol, "atol": atol, **options})
    if not callable(model):
        raise ValueError(f"model must be a vector field (an nn.Module or callable), got {type(model).__name__}")
    z0 = z0.detach().to(torch.float64)
    t = check_times(t, torch.float64, z0.device)
    model64 = copy.deepcopy(model)
    if isinstance(model64, torch.nn.Module):
        model64 = model64.to(torch.float64).eval()
    try:  # one evaluation at the initial states: the model must act on this system's states
        with torch.no_grad():
            _TimeField(model64)(t[0], z0)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"model cannot be evaluated on the system's states of shape {tuple(z0.shape)} "
                         f"(state size {system.dim}): {err}") from err
    except ValueError as err:
        raise ValueError(f"model does not fit the system (state size {system.dim}): {err}") from err
    true = system.simulate(z0, t)
    try:
        with torch.no_grad():
            predicted = odeint(model64, z0, t, method=method, rtol=rtol, atol=atol, **options)
    except (AssertionError, RuntimeError, ValueError, OverflowError):  # torchdiffeq's step-size underflow et al.
        predicted = None
    if predicted is None or not bool(torch.isfinite(predicted).all()):
        inf = math.inf
        return {"state_mse": inf, "energy_mse": inf, "energy_drift": inf, "model_trajectory": predicted,
                "true_trajectory": true}
    with torch.no_grad():
        energy_error = system.energy(predicted) - system.energy(true)
    return {
        "state_mse": float((predicted - true).square().mean()),
        "energy_mse": float(energy_error.square().mean()),
        "energy_drift": float(energy_drift(system, predicted).amax(0).mean()),
        "model_trajectory": predicted,
        "true_trajectory": true,
    }


def rollout_error(model, data: TrajectoryData, *, method: str = "dopri5", **options) -> dict:
    """Roll ``model`` out from the first observed state of every trajectory of ``data`` over its times
    (:func:`odeint` with ``method`` and ``options``, no gradients, in the model's dtype) and compare with
    the observed states: the check for data without a known system (e.g. from :func:`trajectory_data`).

    Returns ``state_mse`` (mean over the later times, trajectories and coordinates of the squared error
    to the observed states, which include their noise) and ``model_trajectory`` ((T, N, 2n)). A rollout
    that blows up gives ``state_mse`` inf (the trajectory is kept as far as it is finite).
    """
    if not isinstance(data, TrajectoryData) or len(data) == 0:
        raise ValueError(f"data must be non-empty TrajectoryData, got {type(data).__name__}")
    if not callable(model):
        raise ValueError(f"model must be a vector field (an nn.Module or callable), got {type(model).__name__}")
    check_odeint_options(method, options)
    states, t = data.states, data.t
    reference = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    if reference is not None:
        states, t = states.to(reference), t.to(reference)
    with torch.no_grad():
        predicted = odeint(model, states[:, 0], t - t[0], method=method, **options)
    error = (predicted[1:] - states[:, 1:].transpose(0, 1)).square().mean()
    mse = float(error) if bool(torch.isfinite(error)) else math.inf
    return {"state_mse": mse, "model_trajectory": predicted}
