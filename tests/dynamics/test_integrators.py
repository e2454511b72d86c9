"""odeint: convergence order, energy behaviour, reversibility, symplecticity, torchdiffeq pass-through, errors."""

import math

import numpy as np
import pytest
import torch

from gradflow.dynamics import DoublePendulum, Pendulum, list_methods, odeint
from gradflow.potentials import ConvergenceError
from gradflow.testing import assert_symplectic, tolerance

F64 = torch.float64


def oscillator(z):  # H = (q^2 + p^2) / 2
    return torch.cat([z[..., 1:], -z[..., :1]], -1)


PENDULUM = Pendulum()  # separable, nonlinear
SYMPLECTIC = [("leapfrog", {}, 2), ("yoshida4", {}, 4), ("implicit_midpoint", {"solver": "newton"}, 2),
              ("implicit_midpoint", {"solver": "fixed_point"}, 2)]


def final_state(method, n_steps, t_end=2.0, **options):
    z0 = torch.tensor([1.0, 0.3], dtype=F64)
    t = torch.linspace(0, t_end, n_steps + 1, dtype=F64)
    return odeint(PENDULUM.vector_field, z0, t, method=method, **options)[-1]


@pytest.mark.parametrize("method,options,order", [*SYMPLECTIC, ("rk4", {}, 4), ("midpoint", {}, 2)])
def test_convergence_order(method, options, order):
    reference = PENDULUM.simulate(torch.tensor([1.0, 0.3], dtype=F64), torch.tensor([0.0, 2.0], dtype=F64))[-1]
    steps = [16, 32, 64, 128]
    with torch.no_grad():
        errors = [float((final_state(method, n, **options) - reference).norm()) for n in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.3, (slope, errors)


ENERGY_CASES = [
    ("leapfrog", {}, 10_000, 0.01),
    ("yoshida4", {}, 10_000, 1e-4),
    ("implicit_midpoint", {"solver": "newton"}, 1_000, 1e-9),  # conserves quadratic H exactly
    pytest.param("implicit_midpoint", {"solver": "newton"}, 10_000, 1e-9, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("method,options,n,bound", ENERGY_CASES)
def test_energy_error_bounded_over_many_steps(method, options, n, bound):
    h = 0.1
    z0 = torch.tensor([[1.0, 0.0], [0.3, -0.5]], dtype=F64)
    t = torch.linspace(0, h * n, 101, dtype=F64)  # 100 outputs, n steps of h in all
    traj = odeint(oscillator, z0, t, method=method, step_size=h, **options)
    energy = 0.5 * traj.square().sum(-1)
    relative = ((energy - energy[0]) / energy[0]).abs()
    assert float(relative.max()) < bound  # O(h^order) and no secular drift:
    assert float(relative[-20:].max()) <= 1.5 * float(relative[:21].max()) + 1e-12


def test_explicit_euler_energy_grows_where_symplectic_does_not():
    t = torch.linspace(0, 100, 1001, dtype=F64)
    z0 = torch.tensor([1.0, 0.0], dtype=F64)
    euler = odeint(oscillator, z0, t, method="euler")
    assert float(0.5 * euler[-1].square().sum()) > 2.0  # the check above would catch a non-symplectic method


@pytest.mark.parametrize("method,options", [(m, o) for m, o, _ in SYMPLECTIC])
def test_time_reversible(method, options):
    z0 = torch.tensor([[1.0, 0.3], [-2.0, 1.0]], dtype=F64)
    t = torch.linspace(0, 3, 31, dtype=F64)
    forward = odeint(PENDULUM.vector_field, z0, t, method=method, **options)
    back = odeint(PENDULUM.vector_field, forward[-1], t.flip(0), method=method, **options)
    assert float((back[-1] - z0).abs().max()) < 1e-9


def one_step(field, method, h=0.2, **options):
    return lambda z: odeint(field, z, torch.tensor([0.0, h], dtype=F64), method=method, **options)[-1]


@pytest.mark.parametrize("method,options", [(m, o) for m, o, _ in SYMPLECTIC])
def test_one_step_is_symplectic_on_the_pendulum(method, options):
    assert_symplectic(one_step(PENDULUM.vector_field, method, **options), torch.tensor([1.2, -0.4], dtype=F64))


def test_implicit_midpoint_is_symplectic_for_a_non_separable_hamiltonian():
    system = DoublePendulum()
    z0 = torch.tensor([0.5, -0.3, 0.2, 0.1], dtype=F64)
    assert_symplectic(one_step(system.vector_field, "implicit_midpoint"), z0, atol=1e-10)
    # leapfrog assumes separability: on the double pendulum one step is not symplectic
    with pytest.raises(AssertionError, match="not symplectic"):
        assert_symplectic(one_step(system.vector_field, "leapfrog"), z0, atol=1e-4)


def test_non_symplectic_method_fails_the_check():
    with pytest.raises(AssertionError, match="not symplectic"):
        assert_symplectic(one_step(PENDULUM.vector_field, "euler"), torch.tensor([1.2, -0.4], dtype=F64), atol=1e-3)


@pytest.mark.parametrize("method", ["leapfrog", "yoshida4", "implicit_midpoint", "rk4", "dopri5"])
def test_batched_any_shape_and_dtype(method, dtype):
    z0 = torch.randn(3, 4, 2, dtype=dtype, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0, 1, 5)
    z = odeint(oscillator, z0, t, method=method)
    assert z.shape == (5, 3, 4, 2) and z.dtype == dtype
    exact = odeint(oscillator, z0.double(), t.double(), method="dopri8", rtol=1e-12, atol=1e-12)
    _, atol = tolerance(dtype)
    assert float((z.double() - exact).abs().max()) < 2e-2 + 100 * atol  # steps of 0.25: second order or better


def test_time_dependent_field_signature():
    def forced(t, z):  # dq/dt = cos t, dp/dt = 0
        return torch.stack([torch.cos(t).expand(z.shape[:-1]), torch.zeros_like(z[..., 0])], -1)

    t = torch.linspace(0, 2, 41, dtype=F64)
    for method in ("dopri5", "leapfrog", "implicit_midpoint"):
        z = odeint(forced, torch.zeros(2, dtype=F64), t, method=method)
        assert torch.allclose(z[:, 0], torch.sin(t), atol=1e-3), method


def test_gradients_through_symplectic_methods_match_finite_differences():
    scale = torch.tensor(1.3, dtype=F64, requires_grad=True)

    def field(z):
        return torch.cat([z[..., 1:], -scale * torch.sin(z[..., :1])], -1)

    z0 = torch.tensor([0.7, 0.1], dtype=F64, requires_grad=True)
    t = torch.linspace(0, 1, 6, dtype=F64)
    for method in ("leapfrog", "yoshida4", "implicit_midpoint"):
        def f(z0, s, method=method):
            def fld(z):
                return torch.cat([z[..., 1:], -s * torch.sin(z[..., :1])], -1)
            return odeint(fld, z0, t, method=method)[-1]

        assert torch.autograd.gradcheck(f, (z0, scale), atol=1e-6), method


def test_adjoint_matches_direct_backprop():
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    z0 = torch.randn(4, 2, dtype=F64)
    t = torch.linspace(0, 1, 5, dtype=F64)
    grads = []
    for adjoint in (False, True):
        net.zero_grad()
        odeint(net, z0, t, method="dopri5", rtol=1e-10, atol=1e-10, adjoint=adjoint).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-6, atol=1e-8)


def test_step_size_substeps_improve_accuracy():
    t = torch.tensor([0.0, 2.0], dtype=F64)
    z0 = torch.tensor([1.0, 0.0], dtype=F64)
    exact = torch.tensor([math.cos(2.0), -math.sin(2.0)], dtype=F64)
    coarse = odeint(oscillator, z0, t, method="leapfrog")[-1]
    fine = odeint(oscillator, z0, t, method="leapfrog", step_size=0.01)[-1]
    assert float((fine - exact).norm()) < 1e-4 < float((coarse - exact).norm())


def test_implicit_solver_reports_non_convergence():
    with pytest.raises(ConvergenceError, match="did not converge"):
        odeint(oscillator, torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([0.0, 5.0], dtype=F64),
               method="implicit_midpoint", solver="fixed_point", max_iter=3)


@pytest.mark.parametrize("z0,t,match", [
    (torch.zeros(3), torch.linspace(0, 1, 3), "even state size"),
    (torch.zeros(2), torch.tensor([0.0, 1.0, 0.5]), "strictly increasing or strictly decreasing"),
    (torch.zeros(2), torch.zeros(2, 2), "1-D"),
    (torch.tensor([float("nan"), 0.0]), torch.linspace(0, 1, 3), "NaN"),
    (torch.zeros(2, dtype=torch.int64), torch.linspace(0, 1, 3), "floating-point"),
])
def test_bad_inputs(z0, t, match):
    with pytest.raises(ValueError, match=match):
        odeint(oscillator, z0, t, method="leapfrog")


def test_bad_methods_and_options():
    z0, t = torch.zeros(2), torch.linspace(0, 1, 3)
    with pytest.raises(ValueError, match=r"valid: .*dopri5.*implicit_midpoint.*leapfrog.*yoshida4"):
        odeint(oscillator, z0, t, method="verlet")
    with pytest.raises(ValueError, match="shaped like the state"):
        odeint(lambda z: z[..., :1], z0, t, method="rk4")
    with pytest.raises(ValueError, match="adjoint"):
        odeint(oscillator, z0, t, method="leapfrog", adjoint=True)
    with pytest.raises(ValueError, match="unknown options"):
        odeint(oscillator, z0, t, method="yoshida4", first_step=0.1)
    with pytest.raises(ValueError, match="implicit solver"):
        odeint(oscillator, z0, t, method="implicit_midpoint", solver="broyden")
    with pytest.raises(ValueError, match="step_size"):
        odeint(oscillator, z0, t, method="leapfrog", step_size=-1.0)
    assert {"leapfrog", "yoshida4", "implicit_midpoint", "dopri5", "rk4"} <= set(list_methods())


def test_splitting_methods_evaluate_only_the_needed_half_of_a_separable_model():
    from gradflow.dynamics import SeparableHamiltonianNet
    from gradflow.potentials import GradNetC, MGradNetC

    torch.manual_seed(0)
    model = SeparableHamiltonianNet(MGradNetC(2, width=8), GradNetC(2, width=8)).double()
    calls = {"kinetic": 0, "potential": 0}
    model.kinetic.register_forward_hook(lambda *_: calls.__setitem__("kinetic", calls["kinetic"] + 1))
    model.potential.register_forward_hook(lambda *_: calls.__setitem__("potential", calls["potential"] + 1))
    z0 = torch.randn(3, 4, dtype=torch.float64)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    for method, drifts, kicks in (("leapfrog", 2, 1), ("yoshida4", 4, 3)):
        calls.update(kinetic=0, potential=0)
        z = odeint(model, z0, t, method=method)
        assert calls == {"kinetic": 10 * drifts, "potential": 10 * kicks}
        full = odeint(lambda s: model(s), z0, t, method=method)  # no velocity/force: the full field per stage
        torch.testing.assert_close(z, full, rtol=0, atol=1e-12)
