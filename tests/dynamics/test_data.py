"""Users' own trajectories: arrays and .npz files to TrajectoryData, derivative estimates, split, CLI."""

import json
import math

import numpy as np
import pytest
import torch

from gradflow.cli import main
from gradflow.dynamics import (
    MassSpring,
    create_dynamics_model,
    estimate_derivatives,
    fit_trajectories,
    load_trajectories,
    rollout_error,
    split_trajectories,
    trajectory_data,
)


def oscillator_arrays(n_traj=6, n_time=30, noise=0.0, seed=0):
    """H = q^2 + p^2 (MassSpring): z(t) = rotation by 2t; exact derivatives dz = (2p, -2q)."""
    train, _ = MassSpring().dataset(n_traj + 1, (0, 3), n_time, noise_std=noise, seed=seed,
                                    test_fraction=1 / (n_traj + 1),
                                    dtype=torch.float64)
    return train.t.numpy(), train.states.numpy(), train.derivatives.numpy(), train.clean_states.numpy()


def test_round_trip_arrays_and_npz(tmp_path):
    t, z, dz, _ = oscillator_arrays()
    data = trajectory_data(t, z, dz, dtype=torch.float64)
    assert np.array_equal(data.states.numpy(), z) and np.array_equal(data.derivatives.numpy(), dz)
    assert np.array_equal(data.t.numpy(), t) and data.clean_states is data.states
    np.savez(tmp_path / "d.npz", t=t, z=z, dz=dz)
    loaded = load_trajectories(tmp_path / "d.npz", dtype=torch.float64)
    assert torch.equal(loaded.states, data.states) and torch.equal(loaded.derivatives, data.derivatives)
    assert trajectory_data(t, z).states.dtype == torch.float32  # default dtype, derivatives estimated
    train, test = split_trajectories(data, 0.5, seed=1)
    assert len(train) == len(test) == 3
    rows = {tuple(r) for r in data.states[:, 0].tolist()}
    split_rows = {tuple(r) for r in torch.cat([train.states[:, 0], test.states[:, 0]]).tolist()}
    assert rows == split_rows  # a partition by whole trajectories
    again, _ = split_trajectories(data, 0.5, seed=1)
    assert torch.equal(again.states, train.states)


@pytest.mark.parametrize("scheme,order", [("central2", 2), ("central4", 4)])
def test_difference_schemes_have_their_order(scheme, order):
    errors = []
    for n_time in (41, 81):
        t, z, dz, _ = oscillator_arrays(2, n_time)
        errors.append(float((estimate_derivatives(t, z, scheme) - torch.from_numpy(dz)).abs().max()))
    slope = math.log2(errors[0] / errors[1])
    assert order - 0.5 < slope < order + 0.7


def test_spline_beats_differences_on_noisy_states():
    t, z, _, clean = oscillator_arrays(4, 100, noise=0.01)
    exact = MassSpring().vector_field(torch.from_numpy(clean))
    error = {s: float((estimate_derivatives(t, z, s) - exact).square().mean()) for s in ("central4", "spline")}
    assert error["spline"] < 0.2 * error["central4"]


def test_central2_handles_non_uniform_times_and_central4_refuses_them():
    t = np.sort(np.random.default_rng(0).uniform(0, 1, 40))
    z = np.stack([np.sin(t), np.cos(t)], -1)[None]
    assert float((estimate_derivatives(t, z, "central2")[0, :, 0] - torch.from_numpy(np.cos(t))).abs().max()) < 1e-2
    with pytest.raises(ValueError, match="t must be uniformly spaced"):
        estimate_derivatives(t, z, "central4")


def bad_inputs():
    t, z, dz, _ = oscillator_arrays(3, 10)
    nan_z = z.copy()
    nan_z[1, 2, 0] = np.nan
    nan_dz = dz.copy()
    nan_dz[0, 0, 1] = np.inf
    return [
        ((t, z[0]), {}, r"z must have shape \(n_traj, n_time, 2n\)"),
        ((t, z[..., :1]), {}, r"z must have shape .*even state size"),
        ((t, nan_z), {}, "z contains NaN or inf"),
        ((t, z, nan_dz), {}, "dz contains NaN or inf"),
        ((t, z, dz[:, :5]), {}, "dz must have the shape of z"),
        ((t[:5], z), {}, r"t has 5 times but the states have 10"),
        ((t[::-1].copy(), z), {}, "strictly increasing"),
        ((np.r_[t[:3], t[2:9]], z), {}, "strictly increasing"),
        ((np.r_[t[:9], np.nan], z), {}, "t contains NaN"),
        ((t[None], z), {}, "t must be a 1-D array"),
        ((t, z.astype(complex)), {}, "z must be an array of real numbers"),
        ((t[:4], z[:, :4]), {"scheme": "central4"}, "needs at least 5 times"),
        ((t, z), {"scheme": "central6"}, "unknown derivative scheme"),
        ((t, z), {"dtype": torch.float16}, "dtype must be"),
    ]


@pytest.mark.parametrize("index", range(14))
def test_bad_arrays_are_rejected_naming_the_argument(index):
    args, kwargs, match = bad_inputs()[index]
    with pytest.raises(ValueError, match=match):
        trajectory_data(*args, **kwargs)


def test_bad_files_and_splits(tmp_path):
    t, z, dz, _ = oscillator_arrays(3, 10)
    np.savez(tmp_path / "typo.npz", t=t, z=z, dZ=dz)
    with pytest.raises(ValueError, match="unknown: dZ"):
        load_trajectories(tmp_path / "typo.npz")
    np.savez(tmp_path / "missing.npz", z=z)
    with pytest.raises(ValueError, match="missing: t"):
        load_trajectories(tmp_path / "missing.npz")
    np.save(tmp_path / "z.npy", z)
    with pytest.raises(ValueError, match=r"must be a \.npz archive"):
        load_trajectories(tmp_path / "z.npy")
    (tmp_path / "junk.npz").write_text("not numpy")
    with pytest.raises(ValueError, match=r"not a readable \.npz"):
        load_trajectories(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="does not exist"):
        load_trajectories(tmp_path / "nope.npz")
    data = trajectory_data(t, z)
    with pytest.raises(ValueError, match="empty train or test"):
        split_trajectories(data, 0.01)
    with pytest.raises(ValueError, match="test_fraction"):
        split_trajectories(data, 1.5)
    with pytest.raises(ValueError, match="data must be TrajectoryData"):
        split_trajectories(z)


def test_trajectory_loss_learns_noisy_data_without_derivatives():
    t, z, _, _ = oscillator_arrays(8, 30, noise=0.02)
    train, test = split_trajectories(trajectory_data(t, z), 0.25, seed=0)
    torch.manual_seed(0)
    model = create_dynamics_model("gradnet_c", 2, 200)
    before = rollout_error(model, test)["state_mse"]
    result = fit_trajectories(model, train, horizon=4, steps=60, lr=2e-2, progress=False, device="cpu")
    after = rollout_error(result.model, test)
    assert after["model_trajectory"].shape == (30, 2, 2)
    assert after["state_mse"] < 0.2 * before


def test_cli_trains_on_an_npz_and_plots_the_rollout(tmp_path, capsys):
    t, z, _, _ = oscillator_arrays(8, 20, noise=0.01)
    np.savez(tmp_path / "data.npz", t=t, z=z)
    out = tmp_path / "run"
    code = main(["hamiltonian", "--data", str(tmp_path / "data.npz"), "--loss", "trajectories", "--steps", "3",
                 "--n-params", "100", "--out", str(out), "--device", "cpu"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["derivatives"] == "estimated (central4)" and metrics["loss"] == "trajectories"
    assert metrics["trajectories"] == "6 train, 2 test" and math.isfinite(metrics["rollout_state_mse"])
    assert (out / "figures" / "rollout.png").stat().st_size > 0 and (out / "model.pt").exists()
    assert "test rollout state MSE" in capsys.readouterr().out
    np.savez(tmp_path / "bad.npz", t=t[:5], z=z)
    assert main(["hamiltonian", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "r2")]) == 2
    assert "t has 5 times" in capsys.readouterr().err
