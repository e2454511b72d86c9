import pytest
import torch

from gradflow.potentials import MGradNetC
from gradflow.testing import (
    assert_conservative,
    assert_energy_consistent,
    assert_inverse,
    assert_jacobian_consistent,
    assert_monotone,
)
from gradflow.transport import BrenierNet, default_net


@pytest.mark.parametrize("kind", ["mgradnet_m", "mgradnet_c"])
@pytest.mark.parametrize("dim", [1, 3])
def test_brenier_net_satisfies_the_monotone_potential_contract(kind, dim, generator):
    torch.manual_seed(0)
    psi = BrenierNet(dim, default_net(dim, kind), gate=0.5, strong_convexity=0.1).double()
    x = torch.randn(32, dim, generator=generator, dtype=torch.float64)
    assert_conservative(psi, x)
    assert_monotone(psi, x)
    assert_energy_consistent(psi, x)
    assert_jacobian_consistent(psi, x)
    with torch.no_grad():
        assert_inverse(psi, psi(x))
        norms = torch.linalg.matrix_norm(psi.jacobian(x), ord=2)
        assert bool((norms <= psi.lipschitz_bound() * (1 + 1e-9)).all())
        eigs = torch.linalg.eigvalsh(psi.jacobian(x))
        assert float(eigs.min()) >= 0.1 * (1 - 1e-9)


def test_init_affine_starts_at_the_affine_map(generator):
    torch.manual_seed(0)
    psi = BrenierNet(2, MGradNetC(2, width=8, depth=1), gate=1e-6).double()
    A = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    m, c = torch.tensor([1.0, -1.0], dtype=torch.float64), torch.tensor([0.5, 0.0], dtype=torch.float64)
    psi.init_affine(A, m, c)
    x = torch.randn(16, 2, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(psi(m[None]), c[None])  # exact at the centre
        torch.testing.assert_close(psi(x), (x - m) @ A + c, rtol=1e-4, atol=1e-4)  # residual gated down
    every_parameter_gets_a_gradient = psi(x).square().sum()
    every_parameter_gets_a_gradient.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in psi.parameters())


@pytest.mark.parametrize("gate", [1e-6, 0.1, 50.0, 1e3])
def test_brenier_net_starts_with_the_given_gate(gate):
    psi = BrenierNet(2, gate=gate).double()
    assert float(psi._gate().detach()) == pytest.approx(gate, rel=1e-6)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: BrenierNet(2, MGradNetC(3)), "R\\^2"),
        (lambda: BrenierNet(2, gate=0.0), "gate"),
        (lambda: BrenierNet(2, gate=True), "gate"),
        (lambda: BrenierNet(2, strong_convexity=None), "strong_convexity"),
        (lambda: BrenierNet(2, strong_convexity=-1.0), "strong_convexity"),
        (lambda: BrenierNet(2).init_affine(-torch.eye(2), torch.zeros(2), torch.zeros(2)), "semidefinite"),
        (lambda: BrenierNet(2).init_affine(torch.eye(3), torch.zeros(2), torch.zeros(2)), "expected A"),
        (lambda: default_net(2, "icnn"), "valid: mgradnet_c, mgradnet_m"),
    ],
)
def test_brenier_net_rejects_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
