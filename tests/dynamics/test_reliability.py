"""Reliability: metrics that cannot lie and options that are checked at entry (bad input raises ValueError
naming the argument; valid but unusual input keeps working)."""

import math

import pytest
import torch

from gradflow.dynamics import (
    DampedMassSpring,
    DoublePendulum,
    FPUTChain,
    HamiltonianNet,
    HenonHeiles,
    MassSpring,
    NBody,
    Pendulum,
    PortHamiltonianSystem,
    TrajectoryLoss,
    create_dynamics_model,
    derivative_loss,
    energy_drift,
    error_db,
    fit_trajectories,
    odeint,
    rollout_metrics,
    symplectic_form,
    trajectory_windows,
)
from gradflow.potentials import GradNetC

F64 = torch.float64


def oscillator(z):  # H = (q^2 + p^2) / 2
    return torch.cat([z[..., 1:], -z[..., :1]], -1)


# ---- error_db ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, -1.0, -1e-12, math.inf, torch.tensor(math.nan), "0.1", None])
def test_error_db_rejects_nan_inf_and_negative_errors(bad):
    with pytest.raises(ValueError, match=r"mse .*finite number >= 0"):
        error_db(bad)


def test_error_db_zero_error_is_the_perfect_score_and_tensors_work():
    assert error_db(0.0) == -math.inf
    assert error_db(1e-3) == pytest.approx(-30.0)
    assert error_db(torch.tensor(1e-2, dtype=F64)) == pytest.approx(-20.0)
    assert error_db(torch.tensor([1.0])) == pytest.approx(0.0)


# ---- odeint options ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    ({"rtol": -1.0}, "rtol"),
    ({"atol": -1.0}, "atol"),
    ({"rtol": math.nan}, "rtol"),
    ({"atol": math.inf}, "atol"),
    ({"rtol": 0.0, "atol": 0.0}, "rtol and atol"),
    ({"unknown_option": 1}, "unknown options for 'dopri5': unknown_option; valid: .*first_step"),
    ({"method": "rk4", "first_step": 0.1}, "unknown options for 'rk4': first_step"),
    ({"method": "rk4", "step_size": 0.0}, "step_size"),
    ({"step_size": 0.1}, "step_size applies to fixed-step methods"),
    ({"method": "leapfrog", "max_num_steps": 10}, "unknown options for 'leapfrog'"),
])
def test_odeint_rejects_bad_tolerances_and_unknown_options(kwargs, match):
    z0, t = torch.tensor([1.0, 0.0]), torch.linspace(0, 1, 5)
    with pytest.raises(ValueError, match=match):
        odeint(oscillator, z0, t, **kwargs)


def test_odeint_valid_unusual_options_keep_working():
    t = torch.linspace(0, 1, 5, dtype=F64)
    z0 = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]], dtype=F64).T[:, :2]  # non-contiguous (3, 2)
    assert not z0.is_contiguous()
    exact = torch.stack([z0 * 0 + torch.stack([z0[:, 0] * math.cos(s) + z0[:, 1] * math.sin(s),
                                               -z0[:, 0] * math.sin(s) + z0[:, 1] * math.cos(s)], -1) for s in t])
    for kwargs in ({"rtol": 0.0, "atol": 1e-10}, {"rtol": 1e-10, "atol": 1e-12, "max_num_steps": 10_000},
                   {"rtol": torch.tensor(1e-10), "atol": 1e-10, "first_step": 0.01}):
        z = odeint(oscillator, z0, t, **kwargs)
        assert z.dtype == F64 and torch.allclose(z, exact, atol=1e-7)
    z = odeint(oscillator, z0.unsqueeze(0).expand(2, 3, 2), t, method="rk4", step_size=0.01, perturb=False)
    assert z.shape == (5, 2, 3, 2) and torch.allclose(z[:, 1], exact, atol=1e-7)


# ---- rollout_metrics -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spring_model():
    torch.manual_seed(0)
    return create_dynamics_model("gradnet_c", 2, 32)


@pytest.mark.parametrize("kwargs,match", [
    ({"method": "nope"}, "unknown method 'nope'"),
    ({"method": "rk4", "step_size": -0.1}, "step_size must be a finite number > 0"),
    ({"rtol": -1.0}, "rtol"),
    ({"unknown_option": 3}, "unknown options"),
])
def test_rollout_metrics_rejects_bad_solver_arguments_instead_of_reporting_inf(spring_model, kwargs, match):
    z0, t = torch.rand(3, 2, generator=torch.Generator().manual_seed(0)), torch.linspace(0, 1, 5)
    with pytest.raises(ValueError, match=match):
        rollout_metrics(spring_model, MassSpring(), z0, t, **kwargs)


def test_rollout_metrics_rejects_a_model_of_the_wrong_dimension():
    z0, t = torch.rand(3, 2, generator=torch.Generator().manual_seed(0)), torch.linspace(0, 1, 5)
    with pytest.raises(ValueError, match=r"state size 2"):
        rollout_metrics(create_dynamics_model("gradnet_c", 4, 16), MassSpring(), z0, t)
    with pytest.raises(ValueError, match=r"state size 2"):
        rollout_metrics(lambda z: z[..., :1], MassSpring(), z0, t)


def test_rollout_metrics_still_works_for_valid_unusual_input(spring_model):
    z0 = torch.rand(2, 3, generator=torch.Generator().manual_seed(0), dtype=F64).T[:, :2]  # non-contiguous float64
    t = torch.linspace(0, 1, 5, dtype=F64)
    metrics = rollout_metrics(spring_model, MassSpring(), z0, t, method="rk4", step_size=0.05)
    assert metrics["model_trajectory"].shape == (5, 3, 2)
    assert all(math.isfinite(metrics[k]) for k in ("state_mse", "energy_mse", "energy_drift"))
    exact = rollout_metrics(MassSpring().vector_field, MassSpring(), z0, t, method="dopri8", rtol=1e-11, atol=1e-11)
    assert exact["state_mse"] < 1e-12  # a plain callable field works too (the true field: ~0 error)


# ---- systems and data ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make,name", [
    (lambda: Pendulum(length=math.inf), "length"),
    (lambda: Pendulum(mass=math.nan), "mass"),
    (lambda: Pendulum(gravity=math.inf), "gravity"),
    (lambda: DoublePendulum(gravity=math.nan), "gravity"),
    (lambda: DoublePendulum(masses=(1.0, math.inf)), "masses"),
    (lambda: DoublePendulum(lengths=(1.0, -1.0)), "lengths"),
    (lambda: DoublePendulum(lengths=(1.0,)), "lengths"),
    (lambda: MassSpring(stiffness=math.inf), "stiffness"),
    (lambda: MassSpring(mass=0.0), "mass"),
    (lambda: HenonHeiles(coupling=math.nan), "coupling"),
    (lambda: DampedMassSpring(damping=math.inf), "damping"),
    (lambda: DampedMassSpring(damping=-0.1), "damping"),
])
def test_systems_reject_non_finite_or_out_of_range_physical_parameters(make, name):
    with pytest.raises(ValueError, match=rf"^{name} must be a (finite number|pair of finite numbers)"):
        make()


def test_systems_accept_valid_unusual_parameters():
    assert Pendulum(gravity=0.0, length=torch.tensor(2.0, dtype=F64)).length == 2.0
    assert DoublePendulum(masses=[2.0, 0.5], lengths=torch.tensor([1.0, 1.5])).l2 == 1.5
    assert HenonHeiles(coupling=-0.5).coupling == -0.5


@pytest.mark.parametrize("dtype", [torch.int64, torch.float16, torch.bfloat16, torch.complex64])
def test_dataset_rejects_dtypes_other_than_float32_and_float64(dtype):
    with pytest.raises(ValueError, match=r"dtype must be torch.float32 or torch.float64"):
        MassSpring().dataset(4, n_points=5, dtype=dtype)


def test_dataset_float64():
    train, test = MassSpring().dataset(4, n_points=5, dtype=F64)
    assert train.states.dtype == test.derivatives.dtype == F64


# ---- trajectory training -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [0, -4, 2.5, True])
def test_fit_trajectories_rejects_a_non_positive_batch_size(batch_size):
    train, _ = MassSpring().dataset(4, n_points=8)
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1"):
        fit_trajectories(create_dynamics_model("gradnet_c", 2, 32), train, batch_size=batch_size, steps=1,
                         progress=False)


def test_fit_trajectories_full_batch_is_none_and_bad_solver_options_fail_early():
    train, _ = MassSpring().dataset(4, n_points=8)
    result = fit_trajectories(create_dynamics_model("gradnet_c", 2, 32), train, batch_size=None, steps=1,
                              progress=False, device="cpu")
    assert result.steps == 1
    with pytest.raises(ValueError, match="unknown method"):
        TrajectoryLoss(torch.linspace(0, 0.3, 4), method="rk5")
    with pytest.raises(ValueError, match="unknown options for 'rk4': atoll"):
        fit_trajectories(create_dynamics_model("gradnet_c", 2, 32), train, odeint_options={"atoll": 1e-3}, steps=1,
                         progress=False)


# ---- issue 14 leftovers: errors a user can act on ------------------------------------------------------


def test_odeint_solver_goes_to_scipy_solver_and_implicit_options_are_refused_elsewhere():
    z0, t = torch.tensor([1.0, 0.0], dtype=F64), torch.linspace(0, 1, 5, dtype=F64)
    with pytest.raises(ValueError):  # scipy's own error for an unknown method: solver reached scipy
        odeint(oscillator, z0, t, method="scipy_solver", solver="not_a_scipy_method")
    z = odeint(oscillator, z0, t, method="scipy_solver", solver="RK45", rtol=1e-10, atol=1e-10)
    assert abs(float(z[-1, 0]) - math.cos(1.0)) < 1e-6
    for kwargs in ({"solver": "newton"}, {"tol": 1e-6}, {"max_iter": 5}):
        with pytest.raises(ValueError, match=f"{next(iter(kwargs))} apply to implicit_midpoint"):
            odeint(oscillator, z0, t, method="rk4", **kwargs)


def test_odeint_rejects_empty_initial_states_and_names_a_nan_field():
    t = torch.linspace(0, 1, 3)
    with pytest.raises(ValueError, match="z0 holds no initial states"):
        odeint(oscillator, torch.zeros(0, 2), t)
    with pytest.raises(ValueError, match="field returned NaN or inf"):
        odeint(lambda z: z * math.nan, torch.ones(2), t)
    with pytest.raises(ValueError, match="step size underflowed"):
        odeint(lambda z: torch.cat([z[..., 1:], z[..., :1]], -1) ** 3 * 1e3, torch.full((2,), 10.0), t)


@pytest.mark.parametrize("call", [
    lambda train: __import__("gradflow.dynamics", fromlist=["x"]).fit_derivatives("x", train, steps=1),
    lambda train: fit_trajectories("x", train, steps=1),
    lambda train: __import__("gradflow.dynamics", fromlist=["x"]).derivative_mse("x", train),
])
def test_training_entry_points_reject_a_model_that_is_not_one(call):
    train, _ = MassSpring().dataset(4, n_points=5)
    with pytest.raises(ValueError, match="model must be"):
        call(train)


# ---- conformance follow-up: every argument is named in its error ---------------------------------------


@pytest.mark.parametrize("t,match", [
    (None, "t must be a 1-D tensor .*got NoneType"), ([0.0, 0.2, 0.1], "t must be strictly"),
    (torch.tensor([0.0, math.nan]), "t contains NaN"), (torch.zeros(0), "at least 1 time"),
])
def test_odeint_simulate_and_rollout_metrics_check_times_alike(t, match):
    z0 = torch.tensor([1.0, 0.0], dtype=F64)
    for call in (lambda: odeint(oscillator, z0, t), lambda: MassSpring().simulate(z0, t),
                 lambda: rollout_metrics(oscillator, MassSpring(), z0, t, method="rk4")):
        with pytest.raises(ValueError, match=match):
            call()


def test_trajectory_loss_checks_its_times_and_sequences_of_numbers_are_accepted():
    z0 = torch.tensor([1.0, 0.0], dtype=F64)
    # TrajectoryLoss used to accept any 1-D tensor: NaN, integer (here all 0) and unordered times now fail at once
    for t in (torch.tensor([0.0, math.inf]), torch.tensor([0, 0, 0]), torch.tensor([0.0, 0.2, 0.1]), [0.0]):
        with pytest.raises(ValueError, match=r"^t (must|contains)"):
            TrajectoryLoss(t)
    as_list = odeint(oscillator, z0, [0.0, 0.5, 1.0], method="rk4")
    assert torch.equal(as_list, odeint(oscillator, z0, torch.tensor([0.0, 0.5, 1.0], dtype=F64), method="rk4"))
    windows = torch.zeros(2, 3, 2)
    assert float(TrajectoryLoss([0.0, 0.1, 0.2])(oscillator, windows)) == 0.0


@pytest.mark.parametrize("n", [0, -1, 1.5, None, True, 2**70])
def test_sample_initial_states_checks_n_for_every_system(n):
    for system in (MassSpring(), NBody(3), FPUTChain(4)):
        with pytest.raises(ValueError, match=r"^n must be an integer >= 1"):
            system.sample_initial_states(n, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"generator must be a torch\.Generator"):
        MassSpring().sample_initial_states(2, 0)
    assert MassSpring().sample_initial_states(3, torch.Generator().manual_seed(0)).shape == (3, 2)


@pytest.mark.parametrize("kwargs,match", [
    ({"seed": None}, r"^seed must be an integer"),
    ({"seed": -1}, r"^seed must be an integer"),
    ({"noise_std": "0.1"}, r"^noise_std must be a finite number >= 0"),
    ({"noise_std": True}, r"^noise_std must be a finite number >= 0"),
    ({"test_fraction": "a"}, r"^test_fraction must be a finite number > 0"),
    ({"test_fraction": 1.0}, r"^test_fraction must lie in \(0, 1\)"),
    ({"t_span": (0.0, None)}, r"^t_span must be a finite number"),
    ({"t_span": 3.0}, r"^t_span must be a pair"),
])
def test_dataset_names_each_bad_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MassSpring().dataset(4, n_points=5, **kwargs)


def test_models_and_metrics_name_their_own_arguments():
    net = HamiltonianNet(GradNetC(2, width=4))
    for z in ([[1.0, 0.0]], torch.zeros(3, 2, dtype=torch.int64), torch.zeros(3, 4), torch.zeros(3, 2, dtype=F64)):
        with pytest.raises(ValueError, match=r"^z "):
            net(z)
    with pytest.raises(ValueError, match=r"^x contains NaN"):  # finiteness: the potential's own (one sync)
        net(torch.full((1, 2), math.nan))
    traj = MassSpring().simulate(torch.tensor([1.0, 0.0]), torch.linspace(0, 1, 4))
    for bad in (traj.tolist(), traj[..., :1], traj * math.nan, traj[:1, 0]):
        with pytest.raises(ValueError, match=r"^trajectory "):
            energy_drift(MassSpring(), bad)
    with pytest.raises(ValueError, match=r"^system must be a HamiltonianSystem"):
        energy_drift("mass_spring", traj)
    assert energy_drift(MassSpring(), traj).shape == (4,)
    for batch in ("x", None, (torch.zeros(3, 2),), (torch.zeros(3, 2), torch.zeros(3, 4))):
        with pytest.raises(ValueError, match=r"^batch must be a pair"):
            derivative_loss(net, batch)
    with pytest.raises(ValueError, match=r"^model must be a vector field"):
        derivative_loss(None, (torch.zeros(3, 2), torch.zeros(3, 2)))
    with pytest.raises(ValueError, match=r"^data must be TrajectoryData"):
        trajectory_windows("x", 1)
    for dissipation in ([[0.0, 0.0], [0.0, 1.0]], torch.eye(2, dtype=torch.int64), None):
        with pytest.raises(ValueError, match=r"^dissipation must be a floating-point torch.Tensor of shape \(2, 2\)"):
            PortHamiltonianSystem(lambda z: z.square().sum(-1), 2, dissipation)
    with pytest.raises(ValueError, match=r"^dim must be even"):
        symplectic_form(3)
    with pytest.raises(ValueError, match=r"^dtype must be torch.float32 or torch.float64"):
        symplectic_form(2, dtype=torch.int64)
