"""High-dimensional systems: FPUT chains, the Toda lattice, the pendulum chain and planar n-body (d = 8..128)."""

import math

import pytest
import torch

from gradflow.dynamics import (
    FPUTChain,
    HamiltonianSystem,
    NBody,
    PendulumChain,
    TodaLattice,
    create_system,
    list_systems,
    odeint,
)
from gradflow.dynamics._systems import _ring_states

F64 = torch.float64

# (system, leapfrog step): every size from d = 8 to d = 128 (n-body: 2 to 8 bodies, d = 8 to 32)
SYSTEMS = [
    (FPUTChain(4), 0.01),
    (FPUTChain(64), 0.01),
    (FPUTChain(16, alpha=0.0, beta=1.0), 0.01),
    (FPUTChain(64, alpha=0.0, beta=1.0), 0.01),
    (TodaLattice(4), 0.01),
    (TodaLattice(64), 0.01),
    (PendulumChain(4), 0.01),
    (PendulumChain(64), 0.01),
    (NBody(2, softening=0.1), 5e-4),
    (NBody(8, softening=0.1), 5e-4),
]
IDS = [repr(s) for s, _ in SYSTEMS]
MOMENTUM_CONSERVING = (TodaLattice, NBody)


def initial_states(system, n=3):
    return system.sample_initial_states(n, torch.Generator().manual_seed(0))


def total_momentum(system, z):
    p = z[..., system.dim // 2:]
    return p.unflatten(-1, (-1, 2)).sum(-2) if isinstance(system, NBody) else p.sum(-1, keepdim=True)


@pytest.mark.parametrize("n_steps", [1000, pytest.param(10_000, marks=pytest.mark.slow)])
@pytest.mark.parametrize("system,h", SYSTEMS, ids=IDS)
def test_leapfrog_conserves_energy_and_momentum(system, h, n_steps):
    z0 = initial_states(system)
    t = torch.linspace(0, n_steps * h, 101, dtype=F64)
    z = odeint(system.vector_field, z0, t, method="leapfrog", step_size=h)
    energy = system.energy(z)
    relative = ((energy - energy[0]) / energy[0].abs()).abs()
    assert float(relative.max()) < 2e-4  # bounded O(h^2) error over the whole run
    momentum_error = float((total_momentum(system, z) - total_momentum(system, z0)).abs().max())
    if isinstance(system, MOMENTUM_CONSERVING):
        assert momentum_error < 1e-10
    else:  # walls (FPUT) and gravity (pendulums) exchange momentum: the check above could fail
        assert momentum_error > 1e-3


@pytest.mark.parametrize("system,h", SYSTEMS, ids=IDS)
def test_closed_form_flow_matches_a_high_accuracy_scipy_solve_of_autograd_h(system, h):
    """simulate (scipy DOP853 on the closed-form gradient, rtol 1e-10) and yoshida4 on the same field agree
    with scipy on grad H by autograd at rtol 1e-12 over a short horizon."""
    z0 = initial_states(system)
    t = torch.linspace(0, 1, 11, dtype=F64)
    reference = HamiltonianSystem(system.hamiltonian, system.dim).simulate(z0, t, rtol=1e-12, atol=1e-12)
    assert float((system.simulate(z0, t) - reference).abs().max()) < 1e-8
    z = odeint(system.vector_field, z0, t, method="yoshida4", step_size=min(0.01, 10 * h))
    assert float((z - reference).abs().max()) < 1e-6
    x = z0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(system.hamiltonian(x).sum(), x)
    assert torch.allclose(system.gradient(z0), grad, atol=1e-12)


def test_harmonic_chain_follows_its_normal_modes():
    n, k = 8, 3
    system = FPUTChain(n, alpha=0.0, beta=0.0)
    shape = torch.sin(torch.arange(1, n + 1, dtype=F64) * k * math.pi / (n + 1))
    omega = 2 * math.sin(k * math.pi / (2 * (n + 1)))
    t = torch.linspace(0, 10, 21, dtype=F64)
    z = system.simulate(torch.cat([shape, torch.zeros(n, dtype=F64)]), t)
    assert float((z[:, :n] - torch.cos(omega * t)[:, None] * shape).abs().max()) < 1e-8


def test_fput_nonlinearity_matters():
    z0 = initial_states(FPUTChain(8), 1)
    t = torch.linspace(0, 10, 5, dtype=F64)
    harmonic = FPUTChain(8, alpha=0.0).simulate(z0, t)
    for nonlinear in (FPUTChain(8), FPUTChain(8, alpha=0.0, beta=1.0)):
        assert float((nonlinear.simulate(z0, t) - harmonic).abs().max()) > 1e-2


@pytest.mark.parametrize("n_bodies", [3, 5, 8])
def test_unperturbed_ring_moves_on_its_circle(n_bodies):
    system = NBody(n_bodies)
    z0 = _ring_states(torch.Generator().manual_seed(0), 2, n_bodies, 0.0)
    z = system.simulate(z0, torch.linspace(0, 0.5, 6, dtype=F64))
    radius = z[..., : 2 * n_bodies].unflatten(-1, (n_bodies, 2)).norm(dim=-1)
    assert float((radius - radius[0]).abs().max()) < 1e-6


def test_chain_data_sets_and_registry():
    names = {"fput_alpha", "fput_beta", "toda", "pendulum_chain", "n_body"}
    assert names <= set(list_systems())
    assert create_system("fput_beta").beta == 1.0 and create_system("fput_alpha").alpha == 0.25
    assert create_system("fput_alpha", n_particles=64).dim == 128
    assert create_system("n_body", n_bodies=8).dim == 32 and create_system("n_body").softening == 0.1
    assert create_system("toda").dim == create_system("pendulum_chain").dim == 32
    train, test = create_system("toda", n_particles=4).dataset(10, n_points=20, seed=0)
    assert train.states.shape == (8, 20, 8) and test.states.shape == (2, 20, 8)
    exact = TodaLattice(4).vector_field(train.clean_states.double())
    assert torch.allclose(train.derivatives.double(), exact, atol=1e-6)
    z0 = initial_states(PendulumChain(16), 200)
    assert float(z0[:, :16].abs().max()) <= 1.0 and float(z0[:, 16:].abs().max()) <= 0.5


@pytest.mark.parametrize("make,match", [
    (lambda: FPUTChain(1), "n_particles must be an integer >= 2"),
    (lambda: FPUTChain(8, alpha=math.nan), "alpha must be a finite number"),
    (lambda: FPUTChain(8, beta=-1.0), "beta must be a finite number >= 0"),
    (lambda: TodaLattice(2.5), "n_particles"),
    (lambda: PendulumChain(0), "n_pendulums"),
    (lambda: PendulumChain(4, coupling=math.inf), "coupling"),
    (lambda: PendulumChain(4, gravity=-1.0), "gravity"),
    (lambda: NBody(1), "n_bodies"),
    (lambda: NBody(4, softening=-0.1), "softening"),
    (lambda: FPUTChain(4).vector_field(torch.zeros(3, 6)), r"shape \(\.\.\., 8\)"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()
