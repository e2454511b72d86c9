"""Users' own trajectories: arrays or .npz files to :class:`TrajectoryData`, derivative estimates, splits (private).

The documented path, in Python::

    import numpy as np
    from gradflow.dynamics import (create_dynamics_model, fit_trajectories, load_trajectories,
                                   plot_rollouts, rollout_error, split_trajectories, trajectory_data)

    data = trajectory_data(np.load("t.npy"), np.load("z.npy"))     # or load_trajectories("data.npz")
    train, test = split_trajectories(data, test_fraction=0.2, seed=0)
    model = create_dynamics_model("gradnet_m", data.states.shape[-1], 4000)
    model = fit_trajectories(model, train, steps=2000, progress=False).model   # or fit_derivatives
    result = rollout_error(model, test)                            # state MSE along the test trajectories
    plot_rollouts(plt, test.t, test.states, result["model_trajectory"]).savefig("rollout.png")

and on the command line ``gradflow hamiltonian --data data.npz [--loss trajectories]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._validation import check_choice, check_float_dtype, check_number
from ._systems import TrajectoryData

__all__ = ["DERIVATIVE_SCHEMES", "NPZ_KEYS", "estimate_derivatives", "load_trajectories", "plot_rollouts",
           "split_trajectories", "trajectory_data"]

#: name -> (minimum number of time points, description) of the schemes of :func:`estimate_derivatives`
DERIVATIVE_SCHEMES = {
    "central2": (3, "second-order central differences (any increasing grid; numpy.gradient, edge_order=2)"),
    "central4": (5, "fourth-order central differences (uniform grid; five-point one-sided stencils at the ends)"),
    "spline": (5, "derivative of a cubic smoothing spline per coordinate, smoothing chosen by GCV (noisy data)"),
}

#: keys of a trajectory .npz file: "t" (n_time,) times, "z" (n_traj, n_time, 2n) states, optional "dz"
#: (n_traj, n_time, 2n) time derivatives
NPZ_KEYS = ("t", "z", "dz")

_UNIFORM_TOLERANCE = 1e-4  # relative spread of the time steps accepted as a uniform grid


def _as_array(value, name: str) -> np.ndarray:
    """``value`` (numpy array, tensor or nested sequence of real numbers) as a float64 numpy array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of real numbers, got {type(value).__name__}: {err}") from None
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _check_times(t, n_time: int | None = None) -> np.ndarray:
    t = _as_array(t, "t")
    if t.ndim != 1:
        raise ValueError(f"t must be a 1-D array of times shared by every trajectory, got shape {t.shape}")
    if n_time is not None and len(t) != n_time:
        raise ValueError(f"t has {len(t)} times but the states have {n_time} per trajectory (z.shape[1])")
    if len(t) < 2 or not (np.diff(t) > 0).all():
        raise ValueError("t must hold at least 2 strictly increasing times")
    return t


def _check_states(z, name: str = "z") -> np.ndarray:
    z = _as_array(z, name)
    if z.ndim != 3 or 0 in z.shape or z.shape[-1] % 2:
        raise ValueError(f"{name} must have shape (n_traj, n_time, 2n) with n_traj, n_time >= 1 and an even state "
                         f"size (q, p), got {z.shape}")
    return z


def _is_uniform(t: np.ndarray) -> bool:
    dt = np.diff(t)
    return float(np.abs(dt - dt.mean()).max()) <= _UNIFORM_TOLERANCE * float(dt.mean())


def estimate_derivatives(t, z, scheme: str = "central4") -> torch.Tensor:
    r"""Time derivatives dz/dt of sampled trajectories z (n_traj, n_time, d) on the times t (n_time,).

    Schemes (:data:`DERIVATIVE_SCHEMES`), with h the time step:

    * ``"central2"``: (z_{k+1} - z_{k-1}) / (2h) inside, one-sided (-3 z_0 + 4 z_1 - z_2) / (2h) at the
      ends (numpy.gradient with edge_order=2, also on non-uniform grids): error O(h^2) everywhere.
    * ``"central4"``: (z_{k-2} - 8 z_{k-1} + 8 z_{k+1} - z_{k+2}) / (12h) inside and the five-point
      one-sided stencils (-25, 48, -36, 16, -3) / (12h), (-3, -10, 18, -6, 1) / (12h) (mirrored at the
      end) at the first and last two points: error O(h^4) everywhere; needs a uniform grid.
    * ``"spline"``: the derivative of a cubic smoothing spline fitted to each coordinate of each
      trajectory (scipy.interpolate.make_smoothing_spline, smoothing chosen by generalised cross
      validation). For noisy states: differences amplify state noise of std s to ~ s / h, the spline
      averages it out; no fixed order.

    Returns float64 (n_traj, n_time, d). At least 3 (central2) or 5 (central4, spline) times are needed.

    Example:
        >>> t = np.linspace(0, 1, 11)
        >>> z = np.stack([t ** 2, t], -1)[None]         # one trajectory, d = 2
        >>> estimate_derivatives(t, z, "central2")[0, :3, 0]
        tensor([0.0000, 0.2000, 0.4000], dtype=torch.float64)
    """
    check_choice(scheme, "derivative scheme", DERIVATIVE_SCHEMES)
    z = _check_states(z)
    t = _check_times(t, z.shape[1])
    minimum = DERIVATIVE_SCHEMES[scheme][0]
    if len(t) < minimum:
        raise ValueError(f"the {scheme!r} derivative scheme needs at least {minimum} times, t has {len(t)}")
    if scheme == "central2":
        dz = np.gradient(z, t, axis=1, edge_order=2)
    elif scheme == "central4":
        if not _is_uniform(t):
            raise ValueError("t must be uniformly spaced for the 'central4' derivative scheme (relative spread of "
                             f"the steps <= {_UNIFORM_TOLERANCE:g}); use 'central2' or 'spline' on other grids")
        dz = _central4(z, float(t[1] - t[0]))
    else:
        from scipy.interpolate import make_smoothing_spline

        dz = np.empty_like(z)
        for i in range(z.shape[0]):
            for j in range(z.shape[2]):
                dz[i, :, j] = make_smoothing_spline(t, z[i, :, j]).derivative()(t)
    return torch.from_numpy(np.ascontiguousarray(dz))


def _central4(z: np.ndarray, h: float) -> np.ndarray:
    dz = np.empty_like(z)
    dz[:, 2:-2] = (z[:, :-4] - 8 * z[:, 1:-3] + 8 * z[:, 3:-1] - z[:, 4:]) / (12 * h)
    first = np.array([-25.0, 48.0, -36.0, 16.0, -3.0]) / (12 * h)
    second = np.array([-3.0, -10.0, 18.0, -6.0, 1.0]) / (12 * h)
    dz[:, 0] = np.einsum("k,nkd->nd", first, z[:, :5])
    dz[:, 1] = np.einsum("k,nkd->nd", second, z[:, :5])
    dz[:, -1] = -np.einsum("k,nkd->nd", first, z[:, -1:-6:-1])
    dz[:, -2] = -np.einsum("k,nkd->nd", second, z[:, -1:-6:-1])
    return dz


def trajectory_data(t, z, dz=None, *, scheme: str = "central4", dtype: torch.dtype = torch.float32) -> TrajectoryData:
    """A :class:`TrajectoryData` from a user's arrays (numpy arrays, tensors or nested lists).

    Args:
        t: (n_time,) strictly increasing times, shared by every trajectory.
        z: (n_traj, n_time, 2n) observed states, z = (q, p).
        dz: optional (n_traj, n_time, 2n) time derivatives; when omitted they are estimated from z with
            :func:`estimate_derivatives` and ``scheme``.
        scheme: the derivative scheme when ``dz`` is omitted (ignored otherwise).
        dtype: torch.float32 (default) or torch.float64.

    ``clean_states`` is ``z`` itself (the noise-free states of a user's data are unknown). Every array must
    be finite; shapes, times and sizes are checked and a ValueError names the argument at fault.

    Example:
        >>> t = np.linspace(0, 2, 20)
        >>> z = np.stack([np.cos(t), -np.sin(t)], -1)[None]   # (1, 20, 2)
        >>> data = trajectory_data(t, z)
        >>> data.states.shape, float((data.derivatives[0, :, 0] + np.sin(t)).abs().max()) < 1e-4
        (torch.Size([1, 20, 2]), True)
    """
    check_float_dtype(dtype)
    z = _check_states(z)
    t = _check_times(t, z.shape[1])
    if dz is None:
        derivatives = estimate_derivatives(t, z, scheme)
    else:
        dz = _as_array(dz, "dz")
        if dz.shape != z.shape:
            raise ValueError(f"dz must have the shape of z {z.shape}, got {dz.shape}")
        derivatives = torch.from_numpy(dz)
    states = torch.from_numpy(z)
    return TrajectoryData(torch.from_numpy(t), states, derivatives, states).to(dtype)


def load_trajectories(path, *, scheme: str = "central4", dtype: torch.dtype = torch.float32) -> TrajectoryData:
    """:func:`trajectory_data` from a .npz file with the keys :data:`NPZ_KEYS`: ``t`` (n_time,), ``z``
    (n_traj, n_time, 2n) and optionally ``dz`` (same shape as z); other keys are rejected (so a misspelt
    ``dz`` is not silently ignored). Write one with ``numpy.savez(path, t=t, z=z)``. Pickled objects are
    never loaded."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as err:  # not a numpy file, truncated, or pickled
        raise ValueError(f"data file {str(path)!r} is not a readable .npz archive: {err}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"data file {str(path)!r} must be a .npz archive with the keys t, z and optionally dz "
                         "(numpy.savez), got a single array")
    with archive:
        unknown = sorted(set(archive.files) - set(NPZ_KEYS))
        missing = [k for k in ("t", "z") if k not in archive.files]
        if unknown or missing:
            problems = ([f"missing: {', '.join(missing)}"] if missing else []) + (
                [f"unknown: {', '.join(unknown)}"] if unknown else [])
            raise ValueError(f"data file {str(path)!r} must hold the arrays t, z and optionally dz; "
                             + "; ".join(problems))
        try:
            arrays = {k: archive[k] for k in archive.files}
        except (OSError, EOFError, ValueError) as err:  # a member that is not a plain array
            raise ValueError(f"data file {str(path)!r} is not a readable .npz archive: {err}") from None
    return trajectory_data(arrays["t"], arrays["z"], arrays.get("dz"), scheme=scheme, dtype=dtype)


def split_trajectories(data: TrajectoryData, test_fraction: float = 0.2, seed: int = 0
                       ) -> tuple[TrajectoryData, TrajectoryData]:
    """Split ``data`` by trajectory into (train, test): a seeded random permutation, the last
    ``round(test_fraction N)`` trajectories of it for testing (both parts non-empty)."""
    if not isinstance(data, TrajectoryData):
        raise ValueError(f"data must be TrajectoryData (from trajectory_data), got {type(data).__name__}")
    fraction = check_number(test_fraction, "test_fraction", minimum=0.0, maximum=1.0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    n = len(data)
    n_test = round(fraction * n)
    if not 0 < n_test < n:
        raise ValueError(f"test_fraction={fraction:g} of {n} trajectories leaves an empty train or test set; "
                         "every part needs at least one trajectory")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed % 2**63))
    return data.subset(order[: n - n_test]), data.subset(order[n - n_test:])


def plot_rollouts(plt, t, observed, predicted, *, n_trajectories: int = 3, n_coordinates: int = 4):
    """Observed states (dots) and a model's rollout (lines) against time: one panel per coordinate (the
    first ``n_coordinates`` of q, then the matching ones of p), one colour per trajectory (the first
    ``n_trajectories``). ``observed`` is (N, T, 2n), ``predicted`` (T, N, 2n) as returned by
    :func:`odeint` / :func:`rollout_error`. Returns the matplotlib figure."""
    observed = torch.as_tensor(observed).detach().cpu().double()
    predicted = torch.as_tensor(predicted).detach().cpu().double()
    if observed.ndim != 3 or predicted.shape != (observed.shape[1], observed.shape[0], observed.shape[2]):
        raise ValueError(f"predicted must have shape (T, N, 2n) = {(observed.shape[1], observed.shape[0])} + "
                         f"(2n,) for observed (N, T, 2n) {tuple(observed.shape)}, got {tuple(predicted.shape)}")
    n = observed.shape[-1] // 2
    half = max(1, min(n_coordinates // 2, n))
    columns = [*range(half), *range(n, n + half)]
    labels = [f"q{i + 1}" for i in range(half)] + [f"p{i + 1}" for i in range(half)]
    t = torch.as_tensor(t).double()
    fig, axes = plt.subplots(2, half, figsize=(3.2 * half, 5.0), squeeze=False, sharex=True)
    for ax, column, label in zip(axes.flatten(), columns, labels):
        for k in range(min(n_trajectories, observed.shape[0])):
            ax.plot(t, observed[k, :, column], ".", color=f"C{k}", ms=3)
            ax.plot(t, predicted[:, k, column], "-", color=f"C{k}", lw=1.2)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("t", fontsize=8)
    fig.suptitle("observed (dots) and learned rollout (lines)", fontsize=9)
    fig.tight_layout()
    return fig
