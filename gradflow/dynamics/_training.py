"""Derivative matching (HNN) and trajectory matching, both through gradflow.train.fit (private)."""

from __future__ import annotations

import torch

from .._validation import check_positive_int
from ..train import FitResult, fit
from ._integrate import check_odeint_options, check_times, odeint
from ._systems import TrajectoryData

__all__ = ["TrajectoryLoss", "derivative_loss", "fit_derivatives", "fit_trajectories", "trajectory_windows"]


def derivative_loss(model, batch) -> torch.Tensor:
    """mean over entries of (model(z) - dz/dt)^2 for a batch (z, dz/dt) of states and exact derivatives
    (the HNN training loss and test metric): ``model`` a vector field (..., 2n) -> (..., 2n), ``batch`` a
    pair of tensors of the same shape (..., 2n). Type and shape checks only (it runs at every step).

    Example:
        >>> field = lambda z: torch.cat([z[..., 1:], -z[..., :1]], -1)
        >>> float(derivative_loss(field, (torch.ones(3, 2), torch.zeros(3, 2))))
        1.0
    """
    if not callable(model):
        raise ValueError(f"model must be a vector field (an nn.Module or callable), got {type(model).__name__}")
    pair = isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(b, torch.Tensor) for b in batch)
    if not pair or batch[0].shape != batch[1].shape:
        got = f"tensors of shapes {tuple(batch[0].shape)} and {tuple(batch[1].shape)}" if pair else type(batch).__name__
        raise ValueError(f"batch must be a pair (z, dz) of tensors of the same shape (..., 2n), got {got}")
    z, dz = batch
    return (model(z) - dz).square().mean()


class TrajectoryLoss:
    r"""loss(model, windows) = mean over entries of (z_model(t_k) - z_k)^2, k = 1..K, for windows (B, K+1, 2n)
    of consecutive states on the times ``t`` (K+1,), each rolled out from its first state with
    :func:`odeint` (``method`` and ``options``, e.g. ``"rk4"``, ``"leapfrog"``, ``"dopri5"``).

    Example:
        >>> loss = TrajectoryLoss(torch.linspace(0, 0.3, 4), method="rk4")
        >>> field = lambda z: torch.cat([z[..., 1:], -z[..., :1]], -1)
        >>> float(loss(field, torch.zeros(2, 4, 2)))
        0.0
    """

    def __init__(self, t: torch.Tensor, method: str = "rk4", **options):
        t = check_times(t, t.dtype if isinstance(t, torch.Tensor) and t.is_floating_point() else torch.float64,
                        minimum=2)
        check_odeint_options(method, options)
        self.t, self.method, self.options = t, method, options

    def __call__(self, model, windows: torch.Tensor) -> torch.Tensor:
        if windows.ndim != 3 or windows.shape[1] != self.t.numel():
            raise ValueError(f"windows must have shape (B, {self.t.numel()}, 2n), got {tuple(windows.shape)}")
        t = self.t.to(dtype=windows.dtype, device=windows.device)
        predicted = odeint(model, windows[:, 0], t, method=self.method, **self.options)  # (K+1, B, 2n)
        return (predicted[1:] - windows[:, 1:].transpose(0, 1)).square().mean()


def trajectory_windows(data: TrajectoryData, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every run of ``horizon + 1`` consecutive observed states of every trajectory: windows
    (N (T - horizon), horizon + 1, 2n) and their relative times (horizon + 1,)."""
    _check_data(data, "data")
    check_positive_int(horizon, "horizon")
    T = data.states.shape[1]
    if horizon >= T:
        raise ValueError(f"horizon must be smaller than the {T} points per trajectory, got {horizon}")
    windows = data.states.unfold(1, horizon + 1, 1)  # (N, T - horizon, 2n, horizon + 1)
    windows = windows.permute(0, 1, 3, 2).reshape(-1, horizon + 1, data.states.shape[-1])
    return windows, data.t[: horizon + 1] - data.t[0]


def _check_model(model) -> None:
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be an nn.Module vector field (e.g. from create_dynamics_model), "
                         f"got {type(model).__name__}")


def _check_data(data, name):
    if not isinstance(data, TrajectoryData):
        raise ValueError(f"{name} must be TrajectoryData (from HamiltonianSystem.dataset), got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} holds no trajectories")


def fit_derivatives(model: torch.nn.Module, train: TrajectoryData, val: TrajectoryData | None = None, *,
                    steps: int = 2000, lr: float = 1e-3, **fit_options) -> FitResult:
    """Derivative matching (HNN): minimise :func:`derivative_loss` on the (state, derivative) pairs of
    ``train`` with :func:`gradflow.train.fit` (Adam, ``steps`` steps, full batch unless ``batch_size``);
    with ``val`` the best validation weights are kept. Other keyword arguments go to ``fit``.

    Example:
        >>> from gradflow.dynamics import MassSpring, create_dynamics_model
        >>> train, test = MassSpring().dataset(seed=0)
        >>> result = fit_derivatives(create_dynamics_model("gradnet_c", 2, 200), train, steps=5, progress=False)
        >>> result.steps
        5
    """
    _check_model(model)
    _check_data(train, "train")
    if val is not None:
        _check_data(val, "val")
    dtype = train.states.dtype
    model = model.to(dtype)
    return fit(model, derivative_loss, train.pairs(), val_data=None if val is None else val.pairs(), val_grad=True,
               steps=steps, lr=lr, **fit_options)


def fit_trajectories(model: torch.nn.Module, train: TrajectoryData, val: TrajectoryData | None = None, *,
                     horizon: int = 4, method: str = "rk4", steps: int = 1000, lr: float = 1e-3,
                     batch_size: int | None = 256, odeint_options: dict | None = None, **fit_options) -> FitResult:
    """Trajectory matching: roll the model out over ``horizon`` sample intervals from every observed state
    (:func:`trajectory_windows`) with :func:`odeint` (``method``, ``odeint_options``) and minimise the
    state MSE (:class:`TrajectoryLoss`) with :func:`gradflow.train.fit`. Needs no derivatives, only states.
    ``batch_size`` windows per step (an integer >= 1, capped at the number of windows), or ``None`` for
    full batch.
    """
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    _check_model(model)
    _check_data(train, "train")
    if val is not None:
        _check_data(val, "val")
    windows, t = trajectory_windows(train, horizon)
    loss = TrajectoryLoss(t, method, **(odeint_options or {}))
    val_windows = None if val is None else trajectory_windows(val, horizon)[0]
    model = model.to(train.states.dtype)
    return fit(model, loss, windows, val_data=val_windows, val_grad=True, steps=steps, lr=lr,
               batch_size=None if batch_size is None else min(batch_size, len(windows)), **fit_options)

