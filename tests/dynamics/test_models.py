"""Learned dynamics models: Hamiltonian structure, energy conservation, port-Hamiltonian passivity, factory."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradflow.dynamics import (
    HamiltonianNet,
    NeuralODE,
    PortHamiltonianNet,
    SeparableHamiltonianNet,
    create_dynamics_model,
    derivative_loss,
    list_dynamics_models,
    odeint,
)
from gradflow.potentials import ICNN, GradNetC, GradNetM, MGradNetC, MLPField, MLPPotential, count_parameters
from gradflow.testing import assert_conservative, assert_energy_consistent, assert_monotone

F64 = torch.float64
POTENTIALS = [lambda d: GradNetC(d, width=8), lambda d: GradNetM(d, width=6), lambda d: MLPPotential(d, (16,)),
              lambda d: ICNN(d, (8,))]
IDS = ["gradnet_c", "gradnet_m", "mlp_potential", "icnn"]


class Recovered:
    """grad H recovered from a model's field f = J grad H (grad H = -J f = (-f_p, f_q)), with its energy."""

    def __init__(self, model):
        self.model = model

    def __call__(self, z):
        f = self.model(z)
        n = f.shape[-1] // 2
        return torch.cat([-f[..., n:], f[..., :n]], -1)

    def energy(self, z):
        return self.model.hamiltonian(z)


@pytest.mark.parametrize("make", POTENTIALS, ids=IDS)
def test_hamiltonian_net_is_j_grad_of_its_energy(make):
    torch.manual_seed(0)
    model = HamiltonianNet(make(4)).double()
    z = torch.randn(16, 4, dtype=F64)
    recovered = Recovered(model)
    assert_conservative(recovered, z)  # -J f has a symmetric Jacobian: f is Hamiltonian
    assert_energy_consistent(recovered, z)  # ... of the model's own energy
    assert torch.allclose((recovered(z) * model(z)).sum(-1), torch.zeros(16, dtype=F64), atol=1e-12)  # dH/dt = 0


@pytest.mark.parametrize("make", POTENTIALS[:2], ids=IDS[:2])
def test_learned_field_conserves_its_learned_energy_along_its_flow(make):
    torch.manual_seed(1)
    model = HamiltonianNet(make(2)).double()
    z0 = torch.randn(4, 2, dtype=F64)
    with torch.no_grad():
        z = odeint(model, z0, torch.linspace(0, 1, 5, dtype=F64), method="dopri5", rtol=1e-10, atol=1e-10)
        energy = model.hamiltonian(z)
    assert float((energy - energy[0]).abs().max()) < 1e-7 * (1 + float(energy.abs().max()))


@settings(max_examples=8)
@given(n=st.integers(1, 3), batch=st.lists(st.integers(1, 3), max_size=2))
def test_separable_net_shapes_and_structure(n, batch):
    torch.manual_seed(0)
    model = SeparableHamiltonianNet(potential=GradNetC(n, width=4)).double()
    assert isinstance(model.kinetic, MGradNetC)  # convex kinetic energy by default
    z = torch.randn(*batch, 2 * n, dtype=F64)
    f = model(z)
    assert f.shape == z.shape
    assert torch.allclose(f[..., :n], model.kinetic(z[..., n:]))  # dq/dt depends on p only
    assert torch.allclose(f[..., n:], -model.potential(z[..., :n]))
    assert_monotone(model.kinetic, z[..., n:].reshape(-1, n))
    x = z.reshape(-1, 2 * n).requires_grad_(True)
    (g,) = torch.autograd.grad(model.hamiltonian(x).sum(), x)
    assert torch.allclose(torch.cat([g[:, n:], -g[:, :n]], -1), model(x.detach()), atol=1e-6)


def test_port_hamiltonian_net_is_passive_and_input_acts_on_momentum():
    torch.manual_seed(0)
    model = PortHamiltonianNet(GradNetC(4, width=8), n_inputs=1, dissipation="full").double()
    with torch.no_grad():
        model.dissipation_factor.copy_(torch.randn(4, 4, dtype=F64))
    R = model.dissipation_matrix()
    R = R.detach()
    assert torch.allclose(R, R.T) and float(torch.linalg.eigvalsh(R).min()) > -1e-12
    z = torch.randn(32, 4, dtype=F64)
    grad = model.potential(z)
    assert bool(((grad * model(z)).sum(-1) <= 1e-12).all())  # dH/dt = -grad H^T R grad H <= 0
    u = torch.randn(32, 1, dtype=F64)
    with torch.no_grad():
        difference = model(z, u) - model(z)
    assert torch.allclose(difference[:, :2], torch.zeros(32, 2, dtype=F64)) and float(difference[:, 2:].abs().max()) > 0
    momentum_only = PortHamiltonianNet(GradNetC(4, width=8), dissipation="momentum")
    assert torch.equal(momentum_only.dissipation_matrix()[:2], torch.zeros(2, 4))
    with pytest.raises(ValueError, match="u"):
        model(z, torch.randn(32, 2, dtype=F64))
    with pytest.raises(ValueError, match="no input"):
        momentum_only(torch.randn(3, 4), torch.randn(3, 1))


@pytest.mark.parametrize("name", list(list_dynamics_models()))
def test_factory_matches_budget_and_every_parameter_learns(name):
    torch.manual_seed(0)
    model = create_dynamics_model(name, 4, n_params=600)
    assert abs(count_parameters(model) - 600) <= 0.1 * 600
    z, dz = torch.randn(64, 4), torch.randn(64, 4)
    derivative_loss(model, (z, dz)).backward()
    # the output bias of an energy MLP only shifts H by a constant: it cannot affect the field
    constant = {"hnn": {"potential.net.4.bias"},
                "separable_hnn": {"kinetic.net.4.bias", "potential.net.4.bias"}}.get(name, set())
    for pname, p in model.named_parameters():
        if pname not in constant:
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), pname


@pytest.mark.parametrize("make", POTENTIALS[:2], ids=IDS[:2])
def test_fast_path_matches_plain_field_and_gradients(make):
    torch.manual_seed(0)
    plain = HamiltonianNet(make(4)).double()
    fast = HamiltonianNet(plain.potential, fast=True, compile=False)
    assert list(fast.state_dict()) == list(plain.state_dict())  # no extra state
    z, dz = torch.randn(32, 4, dtype=F64), torch.randn(32, 4, dtype=F64)
    grads = []
    for model in (plain, fast):
        model.zero_grad()
        derivative_loss(model, (z, dz)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(fast(z), plain(z)) and torch.allclose(grads[0], grads[1])
    with pytest.raises(ValueError, match="gradient network"):
        HamiltonianNet(MLPPotential(4), fast=True)


def test_factory_starts_cascaded_nets_at_unit_jacobian_scale():
    model = create_dynamics_model("separable_c", 4, n_params=600)
    for net in (model.kinetic, model.potential):
        assert torch.allclose(net._scales()[0][-1], torch.full((net.width,), 2 / net.width), rtol=1e-4)


def test_neural_ode_has_no_hamiltonian():
    model = NeuralODE(MLPField(2, widths=(8,)))
    assert model(torch.randn(3, 2)).shape == (3, 2)
    with pytest.raises(TypeError, match="no Hamiltonian"):
        model.hamiltonian(torch.randn(3, 2))


@pytest.mark.parametrize("call,match", [
    (lambda: HamiltonianNet(MLPField(2)), "conservative"),
    (lambda: HamiltonianNet(GradNetC(3)), "phase space"),
    (lambda: HamiltonianNet(torch.nn.Linear(2, 2)), "Potential"),
    (lambda: SeparableHamiltonianNet(GradNetC(2), GradNetC(1)), "R\\^1"),
    (lambda: SeparableHamiltonianNet(), "potential"),
    (lambda: PortHamiltonianNet(GradNetC(2), dissipation="viscous"), "valid: full, momentum, none"),
    (lambda: create_dynamics_model("hnn", 3), "even"),
    (lambda: create_dynamics_model("lnn", 2), "valid: "),
    (lambda: HamiltonianNet(GradNetC(2))(torch.zeros(5, 3)), r"shape \(\.\.\., 2\)"),
])
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
