"""Training through gradflow.train (derivative and trajectory matching) and the metrics."""

import math

import pytest
import torch

from gradflow.dynamics import (
    DampedMassSpring,
    HamiltonianNet,
    MassSpring,
    Pendulum,
    PortHamiltonianNet,
    TrajectoryLoss,
    create_dynamics_model,
    derivative_mse,
    energy_drift,
    error_db,
    fit_derivatives,
    fit_trajectories,
    rollout_metrics,
    trajectory_windows,
)
from gradflow.potentials import GradNetC, MGradNetC

F64 = torch.float64


@pytest.fixture(scope="module")
def spring_data():
    return MassSpring().dataset(20, noise_std=0.0, seed=0)


def test_small_model_learns_mass_spring_derivatives_in_seconds(spring_data):
    train, test = spring_data
    torch.manual_seed(0)
    model = HamiltonianNet(MGradNetC(2, width=16, depth=2))
    before = derivative_mse(model, test)
    result = fit_derivatives(model, train, steps=200, lr=2e-2, progress=False, device="cpu")
    after = derivative_mse(result.model, test)
    assert result.steps == 200
    assert after < 5e-3 and after < before / 1000  # a 30 dB gain in seconds (1.7e-3 when written)
    assert error_db(after) < -23


def test_factory_gradnet_reaches_the_pendulum_noise_floor_in_300_steps():
    # HNN's pendulum protocol: noisy states, exact derivatives; the best test MSE is ~0.036 (the noise floor).
    # With the constructor's default initial scale this run ends at 0.26 (measured when written): a
    # regression guard for identity_scale_init in create_dynamics_model.
    train, test = Pendulum().dataset(seed=0)
    torch.manual_seed(0)
    model = create_dynamics_model("gradnet_c", 2, 1000)
    fit_derivatives(model, train, steps=300, lr=5e-3, progress=False, device="cpu")
    assert derivative_mse(model, test) < 0.045  # 0.038 when written


def test_trajectory_matching_learns_from_states_alone(spring_data):
    train, test = spring_data
    torch.manual_seed(0)
    model = HamiltonianNet(MGradNetC(2, width=16, depth=2))
    windows, t = trajectory_windows(test, 3)
    loss = TrajectoryLoss(t, method="leapfrog")
    with torch.no_grad():
        before = float(loss(model, windows))
    fit_trajectories(model, train, horizon=3, method="leapfrog", steps=100, lr=2e-2, progress=False, device="cpu")
    with torch.no_grad():
        after = float(loss(model, windows))
    assert after < before / 20
    assert derivative_mse(model, test) < 0.05  # the field itself was learned, without derivatives


def test_trajectory_loss_vanishes_on_the_true_flow():
    system = MassSpring()
    data, _ = system.dataset(4, (0, 1), 11, noise_std=0.0, seed=0, dtype=F64)
    windows, t = trajectory_windows(data, 4)
    assert windows.shape == (len(data) * 7, 5, 2) and torch.allclose(t, data.t[:5])
    assert torch.equal(windows[1], data.states[0, 1:6])
    loss = TrajectoryLoss(t, method="yoshida4", step_size=0.01)
    assert float(loss(system.vector_field, windows)) < 1e-12
    with pytest.raises(ValueError, match="windows"):
        loss(system.vector_field, windows[:, :3])
    with pytest.raises(ValueError, match="horizon"):
        trajectory_windows(data, 11)


def test_port_hamiltonian_net_learns_damping():
    train, test = DampedMassSpring(damping=0.3).dataset(16, seed=0)
    torch.manual_seed(0)
    model = PortHamiltonianNet(MGradNetC(2, width=16, depth=2), dissipation="momentum")
    fit_derivatives(model, train, steps=200, lr=2e-2, progress=False, device="cpu")
    assert derivative_mse(model, test) < 5e-3
    # R = diag(0, gamma) acts on grad H = (2q, 2p) (H = q^2 + p^2): the learned damping force R grad H
    # must approach 0.3 * 2p from the initial R = 0.01 (max error 0.09 when written)
    z = test.pairs()[0][:64]
    with torch.no_grad():
        learned = model.potential(z) @ model.dissipation_matrix()
        assert float(model.dissipation_matrix()[1, 1]) > 0.1
    expected = torch.stack([torch.zeros(64), 0.3 * 2 * z[:, 1]], -1)
    assert float((learned - expected).abs().max()) < 0.15


def test_rollout_metrics_and_energy_drift(spring_data):
    system = MassSpring()
    _, test = spring_data
    torch.manual_seed(0)
    model = create_dynamics_model("gradnet_c", 2, 300)
    metrics = rollout_metrics(model, system, test.initial_states[:3], torch.linspace(0, 2, 11))
    assert metrics["model_trajectory"].shape == metrics["true_trajectory"].shape == (11, 3, 2)
    assert metrics["state_mse"] > 0 and metrics["energy_mse"] > 0 and metrics["energy_drift"] > 0
    exact = system.simulate(test.initial_states[:3].double(), torch.linspace(0, 20, 50, dtype=F64))
    assert float(energy_drift(system, exact).max()) < 1e-8
    assert error_db(1e-3) == pytest.approx(-30.0) and error_db(0.0) == -math.inf


def test_training_input_checks(spring_data):
    model = create_dynamics_model("gradnet_c", 2, 300)
    with pytest.raises(ValueError, match="TrajectoryData"):
        fit_derivatives(model, (torch.zeros(3, 2), torch.zeros(3, 2)))
    with pytest.raises(ValueError, match="no trajectories"):
        fit_derivatives(model, spring_data[0].subset(slice(0, 0)))
    with pytest.raises(ValueError, match="at least 2 times"):
        TrajectoryLoss(torch.zeros(1))
    with pytest.raises(ValueError, match="shape"):
        fit_derivatives(HamiltonianNet(GradNetC(4)), spring_data[0], steps=1, progress=False)
    with pytest.raises(ValueError, match="TrajectoryData"):
        derivative_mse(model, None)
    with pytest.raises(ValueError, match="HamiltonianSystem"):
        rollout_metrics(model, "pendulum", torch.zeros(2, 2), torch.linspace(0, 1, 3))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        rollout_metrics(model, MassSpring(), torch.zeros(2, 4), torch.linspace(0, 1, 3))
