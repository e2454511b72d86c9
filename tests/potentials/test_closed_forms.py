"""Closed-form references: the paper's parameter counts, the potentials of one-layer C and M nets,
quadrature accuracy for deep C nets, the Lipschitz bound's tightness on a linear case, and the unit-scale
initialisation of cascaded nets."""

import math

import pytest
import torch

from gradflow.potentials import (
    GradNetC,
    GradNetM,
    MGradNetC,
    MGradNetM,
    autograd_gradient,
    count_parameters,
    create_potential,
    identity_scale_init,
)


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [("gradnet_c", {"depth": 4}, 100), ("mgradnet_c", {"depth": 4}, 100),
     ("gradnet_m", {"n_modules": 4}, 94), ("mgradnet_m", {"n_modules": 4}, 94)],
)
def test_parameter_counts_match_the_paper(name, kwargs, expected):
    net = create_potential(name, 2, width=7, **kwargs)
    assert count_parameters(net) == expected


def test_one_layer_tanh_c_net_energy_is_scaled_log_cosh():
    torch.manual_seed(0)
    net = MGradNetC(3, width=5, depth=1).double()
    x = torch.randn(7, 3, dtype=torch.float64)
    a = torch.nn.functional.softplus(net.alpha[0])
    b = torch.nn.functional.softplus(net.beta[0])
    z = b * (x @ net.weight.T + net.hidden_bias[0])
    expected = (a / b * torch.log(torch.cosh(z))).sum(-1) + x @ net.bias
    torch.testing.assert_close(net.energy(x), expected, rtol=1e-12, atol=1e-12)


def test_softmax_m_net_energy_is_weighted_log_sum_exp():
    torch.manual_seed(0)
    net = GradNetM(3, width=4, n_modules=2).double()
    x = torch.randn(7, 3, dtype=torch.float64)
    c = torch.nn.functional.softplus(net.beta)
    expected = x @ net.bias
    for k in range(2):
        z = c[k] * (x @ net.weight[k].T + net.hidden_bias[k])
        expected = expected + net.alpha[k] / c[k] * torch.logsumexp(z, -1)
    torch.testing.assert_close(net.energy(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("depth", [2, 4, 8])
def test_deep_c_net_quadrature_energy_is_accurate(depth):
    torch.manual_seed(depth)
    net = GradNetC(4, width=16, depth=depth, activation="weighted_tanh").double()
    x = 3 * torch.randn(64, 4, dtype=torch.float64)
    grad = autograd_gradient(net.energy, x).detach()
    field = net(x).detach()
    assert (grad - field).abs().max() / field.abs().max() < 1e-6
    # energy differences along a segment equal the line integral of the field (trapezoid on a fine grid)
    t = torch.linspace(0, 1, 2001, dtype=torch.float64).unsqueeze(-1)
    x0, x1 = x[0], x[1]
    path = x0 + t * (x1 - x0)
    integrand = (net(path).detach() * (x1 - x0)).sum(-1)
    line_integral = torch.trapezoid(integrand, dx=1 / 2000)
    energy_gap = (net.energy(x1) - net.energy(x0)).detach()
    assert abs(float(energy_gap - line_integral)) < 1e-5 * max(1.0, abs(float(energy_gap)))


def test_log_cosh_is_stable_in_float32_for_large_inputs():
    net = MGradNetC(1, width=1, depth=1)
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.hidden_bias.zero_()
    x = torch.tensor([[200.0], [-500.0]])
    e = net.energy(x)
    assert torch.isfinite(e).all()
    torch.testing.assert_close(e, x.abs().squeeze(-1) - math.log(2.0), rtol=1e-5, atol=1e-4)


def test_lipschitz_bound_is_tight_for_a_saturating_one_unit_net():
    net = MGradNetC(2, width=1, depth=1).double()
    with torch.no_grad():
        net.hidden_bias.zero_()
    # tanh' peaks at 0, where J = alpha * beta * w w^T has norm alpha * beta * ||w||^2 = the bound.
    J = net.jacobian(torch.zeros(1, 2, dtype=torch.float64))
    torch.testing.assert_close(torch.linalg.matrix_norm(J, ord=2)[0], net.lipschitz_bound())


def test_monotone_m_net_with_strong_convexity_has_jacobian_at_least_mu():
    torch.manual_seed(0)
    net = MGradNetM(4, width=6, n_modules=3, strong_convexity=0.3).double()
    x = 5 * torch.randn(200, 4, dtype=torch.float64)
    eig = torch.linalg.eigvalsh(net.jacobian(x).detach())
    assert eig.min() >= 0.3 - 1e-10


def test_one_layer_energy_stays_finite_when_a_scale_vanishes():
    torch.manual_seed(0)
    net = GradNetC(2, width=3, depth=1).double()
    with torch.no_grad():
        net.beta[0, 1] = 0.0  # unconstrained net: unit 1 has a constant profile g, so a linear ridge G
    x = torch.randn(6, 2, dtype=torch.float64)
    assert torch.isfinite(net.energy(x)).all()
    torch.testing.assert_close(autograd_gradient(net.energy, x).detach(), net(x).detach(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cls", [GradNetC, MGradNetC])
def test_identity_scale_init_gives_a_unit_scale_initial_jacobian(cls):
    torch.manual_seed(0)
    x = torch.randn(256, 2)
    default = cls(2, width=150, depth=4)
    scaled = identity_scale_init(cls(2, width=150, depth=4))
    with torch.no_grad():
        default_norm = torch.linalg.matrix_norm(default.jacobian(x), ord=2).median()
        scaled_norm = torch.linalg.matrix_norm(scaled.jacobian(x), ord=2).median()
    # the default initial Jacobian grows with width / dim (here ~55); the rescaled one is O(1)
    assert float(default_norm) > 10 and 0.05 < float(scaled_norm) < 3
    assert torch.equal(identity_scale_init(scaled).alpha, scaled.alpha)  # sets, does not multiply
    with pytest.raises(ValueError, match="GradNetC or MGradNetC"):
        identity_scale_init(GradNetM(2))
