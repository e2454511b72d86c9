"""Inverse maps, convex conjugates and log-determinants of the monotone networks."""

import pytest
import torch

from gradflow.potentials import ICNN, ConvergenceError, MGradNetC, MGradNetM, autograd_jacobian

MONOTONE = {
    "mgradnet_c": lambda: MGradNetC(3, width=8, depth=3, strong_convexity=0.1),
    "mgradnet_m": lambda: MGradNetM(3, width=8, n_modules=3, strong_convexity=0.1),
    "icnn": lambda: ICNN(3, widths=(8, 8), strong_convexity=0.1),
}


@pytest.mark.parametrize("name", sorted(MONOTONE))
def test_fenchel_young_equality_and_conjugate_gradient(name):
    torch.manual_seed(0)
    net = MONOTONE[name]().double()
    x = torch.randn(6, 3, dtype=torch.float64)
    y = net(x).detach().requires_grad_(True)
    conj = net.conjugate(y)
    # psi(x) + psi*(grad psi(x)) = <x, grad psi(x)>
    torch.testing.assert_close(net.energy(x) + conj, (x * y).sum(-1), rtol=1e-8, atol=1e-8)
    (grad_y,) = torch.autograd.grad(conj.sum(), y)
    torch.testing.assert_close(grad_y, x, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", sorted(MONOTONE))
def test_inverse_is_differentiable_by_the_implicit_function_theorem(name):
    torch.manual_seed(0)
    net = MONOTONE[name]().double()
    y = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    x = net.inverse(y)
    dx_dy = torch.stack([torch.autograd.grad(x[0, i], y, retain_graph=True)[0][0] for i in range(3)])
    expected = torch.linalg.inv(autograd_jacobian(net, x.detach())[0])
    torch.testing.assert_close(dx_dy, expected, rtol=1e-6, atol=1e-8)
    # and in the parameters: a gradient exists and matches finite differences on one weight
    p = next(net.parameters())
    (gp,) = torch.autograd.grad(net.inverse(y).sum(), p)
    idx = (0,) * p.ndim
    eps = 1e-6
    with torch.no_grad():
        p[idx] += eps
        up = net.inverse(y).sum()
        p[idx] -= 2 * eps
        down = net.inverse(y).sum()
        p[idx] += eps
    torch.testing.assert_close(gp[idx], (up - down) / (2 * eps), rtol=1e-4, atol=1e-6)


def test_inverse_reports_non_convergence():
    torch.manual_seed(0)
    net = MGradNetM(2, width=4, n_modules=2).double()  # softmax modules, mu = 0: bounded range
    y = torch.full((1, 2), 1e3, dtype=torch.float64)  # far outside the range of the field
    with pytest.raises(ConvergenceError, match="did not converge") as info:
        net.inverse(y, max_iter=20)
    assert info.value.residual > 1e-3 and info.value.x.shape == (1, 2)


@pytest.mark.parametrize("name", sorted(MONOTONE))
def test_logdet_matches_slogdet_of_the_autograd_jacobian(name):
    torch.manual_seed(0)
    net = MONOTONE[name]().double()
    x = torch.randn(5, 3, dtype=torch.float64)
    expected = torch.linalg.slogdet(autograd_jacobian(net, x))[1]
    torch.testing.assert_close(net.logdet_jacobian(x), expected.detach(), rtol=1e-9, atol=1e-9)


def test_logdet_is_minus_infinity_for_a_singular_jacobian():
    net = MGradNetM(3, width=1, n_modules=1).double()  # one-unit softmax: constant output, J = 0
    assert torch.isneginf(net.logdet_jacobian(torch.randn(4, 3, dtype=torch.float64))).all()


def test_inverse_validates_its_arguments():
    net = MGradNetC(2, strong_convexity=0.1)
    with pytest.raises(ValueError, match="shape"):
        net.inverse(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="tol"):
        net.inverse(torch.zeros(3, 2), tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        net.inverse(torch.zeros(3, 2), max_iter=0)


def test_warm_start_converges_in_fewer_iterations():
    torch.manual_seed(0)
    net = MGradNetC(3, width=8, depth=3, strong_convexity=0.1).double()
    x = 2 * torch.randn(16, 3, dtype=torch.float64)
    y = net(x).detach()
    with pytest.raises(ConvergenceError):
        net.inverse(y, max_iter=2)  # two Newton steps from zero are not enough here
    near = x + 1e-3 * torch.randn_like(x)
    torch.testing.assert_close(net.inverse(y, max_iter=2, x0=near), x, rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="x0 must have the shape"):
        net.inverse(y, x0=x[:3])
