"""Hamiltonian systems: fields, high-accuracy simulation, data sets and their protocol, input checks."""

import math

import pytest
import torch

from gradflow.dynamics import (
    DampedMassSpring,
    DoublePendulum,
    HamiltonianSystem,
    HenonHeiles,
    MassSpring,
    Pendulum,
    PortHamiltonianSystem,
    ThreeBody,
    TwoBody,
    create_system,
    list_systems,
    symplectic_form,
)

F64 = torch.float64
CONSERVATIVE = [MassSpring(), Pendulum(), DoublePendulum(), HenonHeiles(), TwoBody(), ThreeBody()]


def test_mass_spring_simulation_matches_closed_form():
    system = MassSpring()  # H = q^2 + p^2: q(t) = q0 cos 2t + p0 sin 2t
    z0 = torch.tensor([[1.0, 0.5], [0.2, -0.3]], dtype=F64)
    t = torch.linspace(0, 10, 21, dtype=F64)
    z = system.simulate(z0, t)
    q = z0[:, 0] * torch.cos(2 * t)[:, None] + z0[:, 1] * torch.sin(2 * t)[:, None]
    assert z.shape == (21, 2, 2)
    assert float((z[..., 0] - q).abs().max()) < 1e-8


@pytest.mark.parametrize("system", CONSERVATIVE, ids=lambda s: type(s).__name__)
def test_simulation_conserves_energy_and_field_is_j_grad_h(system):
    generator = torch.Generator().manual_seed(0)
    z0 = system.sample_initial_states(3, generator)
    t = torch.linspace(0, 2, 5, dtype=F64)
    z = system.simulate(z0, t)
    energy = system.energy(z)
    assert float(((energy - energy[0]) / energy[0].abs()).abs().max()) < 1e-7
    # vector field = J grad H, with grad H by autograd of the Hamiltonian
    x = z0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(system.hamiltonian(x).sum(), x)
    expected = grad @ symplectic_form(system.dim).T
    assert torch.allclose(system.vector_field(z0), expected, atol=1e-12)
    assert not system.vector_field(z0).requires_grad  # no graph kept for constant inputs


def test_pendulum_field_closed_form():
    z = torch.tensor([[0.4, -1.1]], dtype=F64)
    assert torch.allclose(Pendulum().vector_field(z), torch.tensor([[2 * -1.1, -3 * math.sin(0.4)]], dtype=F64))


def test_reference_protocol_defaults_and_split():
    train, test = MassSpring().dataset(seed=0)
    assert train.states.shape == (25, 30, 2) and test.states.shape == (25, 30, 2)
    assert train.states.dtype == torch.float32
    assert torch.allclose(train.t, torch.linspace(0, 3, 30))
    radius = train.initial_states.norm(dim=-1)
    assert float(radius.min()) >= 0.1 - 1e-6 and float(radius.max()) <= 1.0 + 1e-6
    noise = (train.states - train.clean_states).std()
    assert 0.08 < float(noise) < 0.12
    exact = MassSpring().vector_field(train.clean_states.double())
    assert torch.allclose(train.derivatives.double(), exact, atol=1e-6)  # derivatives at the clean states
    z, dz = train.pairs()
    assert z.shape == dz.shape == (750, 2)
    assert Pendulum().dataset(seed=0)[0].states.shape == (25, 45, 2)
    train2, _ = MassSpring().dataset(seed=0)
    assert torch.equal(train.states, train2.states)  # seeded
    assert not torch.equal(train.states, MassSpring().dataset(seed=1)[0].states)


def test_two_body_initial_states_are_near_circular_orbits():
    z0 = TwoBody().sample_initial_states(64, torch.Generator().manual_seed(0))
    q1, q2, p1, p2 = z0[:, :2], z0[:, 2:4], z0[:, 4:6], z0[:, 6:]
    assert torch.allclose(q1, -q2) and torch.allclose(p1, -p2)  # centre of mass at rest at the origin
    assert float((q1 * p1).sum(-1).abs().max()) < 1e-12  # velocity perpendicular to the radius
    r = q1.norm(dim=-1)
    circular = 1 / (2 * r.sqrt())
    assert float(((p1.norm(dim=-1) / circular) - 1).abs().max()) < 0.25  # scaled by 1 + 0.05 N(0, 1)


def test_three_body_gradient_closed_form_matches_autograd():
    system = ThreeBody()
    z = system.sample_initial_states(5, torch.Generator().manual_seed(0)).requires_grad_(True)
    (grad,) = torch.autograd.grad(system.hamiltonian(z).sum(), z)
    assert torch.allclose(system.gradient(z.detach()), grad, atol=1e-12)


def test_custom_system_with_initial_state_callable():
    system = HamiltonianSystem(lambda z: 0.5 * z.square().sum(-1), 4)
    with pytest.raises(NotImplementedError, match="initial_state"):
        system.dataset(4, (0, 1), 5)

    def sampler(n, generator):
        return torch.randn(n, 4, generator=generator, dtype=F64)

    train, test = system.dataset(10, (0, 1), 5, seed=3, initial_state=sampler, test_fraction=0.2)
    assert len(train) == 8 and len(test) == 2
    assert torch.allclose(train.states[:, -1].double(),
                          system.simulate(train.initial_states.double(), torch.tensor([0.0, 1.0], dtype=F64))[-1],
                          atol=1e-6)


def test_damped_system_loses_energy_monotonically():
    system = DampedMassSpring(damping=0.3)
    z = system.simulate(torch.tensor([[1.0, 0.0]], dtype=F64), torch.linspace(0, 5, 50, dtype=F64))
    energy = system.energy(z).squeeze(-1)
    assert bool((energy[1:] < energy[:-1]).all())
    assert float(energy[-1]) < 0.5 * float(energy[0])


@pytest.mark.parametrize("call,match", [
    (lambda: HamiltonianSystem(lambda z: z.sum(-1), 3), "even"),
    (lambda: HamiltonianSystem(None, 2), "callable"),
    (lambda: MassSpring().dataset(t_span=(1, 0)), "t_span"),
    (lambda: MassSpring().dataset(test_fraction=1.5), "test_fraction"),
    (lambda: MassSpring().dataset(noise_std=-1.0), "noise_std"),
    (lambda: MassSpring().dataset(n_trajectories=0), "n_trajectories"),
    (lambda: MassSpring().dataset(4, initial_state=torch.zeros(3, 2)), r"shape \(4, 2\)"),
    (lambda: MassSpring().vector_field(torch.zeros(5, 3)), r"shape \(\.\.\., 2\)"),
    (lambda: MassSpring().simulate(torch.zeros(2), torch.tensor([0.0, 1.0, 0.5])), "strictly"),
    (lambda: PortHamiltonianSystem(lambda z: z.sum(-1), 2, -torch.eye(2)), "positive semidefinite"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_registry_and_bounded_henon_heiles_states():
    assert set(list_systems()) >= {"mass_spring", "pendulum", "double_pendulum", "two_body", "three_body",
                                   "henon_heiles", "damped_mass_spring"}
    assert create_system("pendulum", gravity=9.81).gravity == 9.81
    with pytest.raises(ValueError, match="valid: damped_mass_spring"):
        create_system("spring")
    system = HenonHeiles()
    energy = system.energy(system.sample_initial_states(200, torch.Generator().manual_seed(0)))
    assert float(energy.min()) >= 0.02 - 1e-12 and float(energy.max()) <= 0.15 + 1e-12  # below escape at 1/6
