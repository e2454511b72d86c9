"""Metrics of learned dynamics: derivative error, rollout state and energy errors, energy drift (private)."""

from __future__ import annotations

import copy
import math

import torch

from .._validation import check_field_input
from ._integrate import odeint
from ._systems import HamiltonianSystem, TrajectoryData

__all__ = ["derivative_mse", "energy_drift", "error_db", "rollout_metrics"]


def error_db(mse: float) -> float:
    """10 log10(mse): the error in decibels used by the GradNets paper (-inf for 0)."""
    return 10.0 * math.log10(mse) if mse > 0 else -math.inf


def derivative_mse(model, data: TrajectoryData) -> float:
    """mean over entries of (model(z) - dz/dt)^2 on every (state, exact derivative) pair of ``data``."""
    if not isinstance(data, TrajectoryData) or len(data) == 0:
        raise ValueError(f"data must be non-empty TrajectoryData, got {type(data).__name__}")
    z, dz = data.pairs()
    reference = next(model.parameters(), None)
    if reference is not None:
        z, dz = z.to(reference), dz.to(reference)
    with torch.no_grad():
        return float((model(z) - dz).square().mean())


def energy_drift(system: HamiltonianSystem, trajectory: torch.Tensor) -> torch.Tensor:
    """|H(z_t) - H(z_0)| / |H(z_0)| under the true H along ``trajectory`` (T, ..., 2n): shape (T, ...)."""
    with torch.no_grad():
        H = system.energy(trajectory)
    return (H - H[:1]).abs() / H[:1].abs().clamp_min(torch.finfo(H.dtype).tiny)


def rollout_metrics(model, system: HamiltonianSystem, z0: torch.Tensor, t: torch.Tensor, *,
                    method: str = "dopri5", rtol: float = 1e-9, atol: float = 1e-9, **options) -> dict:
    """Roll ``model`` out from the initial states z0 (B, 2n) over the times ``t`` (in float64, on a copy of
    the model) and compare with the true flow of ``system``.

    Returns a dict with ``state_mse`` (mean over times, trajectories and coordinates of the squared state
    error), ``energy_mse`` (mean of (H(z_model) - H(z_true))^2 under the true H, HNN's energy metric),
    ``energy_drift`` (mean over trajectories of the largest |H(z_model(t)) - H(z0)| / |H(z0)|) and the
    trajectories ``model_trajectory``, ``true_trajectory`` ((T, B, 2n)). A rollout that fails (blows up)
    gives inf errors.
    """
    if not isinstance(system, HamiltonianSystem):
        raise ValueError(f"system must be a HamiltonianSystem, got {type(system).__name__}")
    check_field_input(z0, system.dim, name="z0")
    z0 = z0.detach().to(torch.float64)
    t = torch.as_tensor(t, dtype=torch.float64)
    true = system.simulate(z0, t)
    model64 = copy.deepcopy(model).to(torch.float64).eval()
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
