"""gradflow.testing: each assertion passes on a field that satisfies it and fails on one that does not."""

import pytest
import torch

from gradflow.potentials import MGradNetC
from gradflow.testing import (
    TOLERANCES,
    assert_conservative,
    assert_energy_consistent,
    assert_inverse,
    assert_jacobian_consistent,
    assert_monotone,
    tolerance,
)

X = torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
A_SYM = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]], dtype=torch.float64)


class Quadratic(torch.nn.Module):
    """grad of 1/2 x^T A x, with an optional wrong energy or wrong inverse to break the checks."""

    def __init__(self, A, energy_scale=0.5, inverse_scale=1.0):
        super().__init__()
        self.A, self.energy_scale, self.inverse_scale = A, energy_scale, inverse_scale

    def forward(self, x):
        return x @ self.A.T

    def energy(self, x):
        return self.energy_scale * (x @ self.A * x).sum(-1)

    def jacobian(self, x):
        return self.A.expand(*x.shape[:-1], 3, 3)

    def inverse(self, y):
        return self.inverse_scale * torch.linalg.solve(self.A, y.unsqueeze(-1)).squeeze(-1)


def test_conservative_check():
    assert_conservative(Quadratic(A_SYM), X)
    skew = A_SYM + torch.tensor([[0, 0.1, 0], [-0.1, 0, 0], [0, 0, 0]], dtype=torch.float64)
    with pytest.raises(AssertionError, match=r"max \|J - J\^T\| = 0.2"):
        assert_conservative(Quadratic(skew), X)


def test_monotone_check():
    assert_monotone(Quadratic(A_SYM), X)
    with pytest.raises(AssertionError, match="not monotone: min eigenvalue of sym"):
        assert_monotone(Quadratic(A_SYM - 1.5 * torch.eye(3, dtype=torch.float64)), X)


def test_energy_check():
    assert_energy_consistent(Quadratic(A_SYM), X)
    with pytest.raises(AssertionError, match="energy is inconsistent"):
        assert_energy_consistent(Quadratic(A_SYM, energy_scale=0.5001), X)


def test_jacobian_check():
    assert_jacobian_consistent(Quadratic(A_SYM), X)
    wrong = Quadratic(A_SYM)
    wrong.jacobian = lambda x: (A_SYM + 1e-3).expand(*x.shape[:-1], 3, 3)
    with pytest.raises(AssertionError, match="jacobian is inconsistent"):
        assert_jacobian_consistent(wrong, X)


def test_inverse_check():
    assert_inverse(Quadratic(A_SYM), X)
    with pytest.raises(AssertionError, match="inverse does not invert"):
        assert_inverse(Quadratic(A_SYM, inverse_scale=1.001), X)


def test_checks_accept_gradflow_models_and_keyword_options():
    net = MGradNetC(3, width=5, depth=2, strong_convexity=0.2).double()
    assert_inverse(net, net(X).detach(), max_iter=30)


def test_tolerance_table():
    assert tolerance(torch.float64) == TOLERANCES[torch.float64]
    assert tolerance(torch.float32, rtol=0.5) == (0.5, TOLERANCES[torch.float32][1])
    assert TOLERANCES[torch.float64][0] < TOLERANCES[torch.float32][0]


def test_symplectic_check():
    from gradflow.testing import assert_symplectic

    c, s = 0.6, 0.8
    rotation = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)  # the exact harmonic-oscillator flow
    z = torch.tensor([0.3, -1.2], dtype=torch.float64)
    assert_symplectic(lambda v: rotation @ v, z)
    with pytest.raises(AssertionError, match="not symplectic"):
        assert_symplectic(lambda v: 1.01 * (rotation @ v), z)  # area grows by 2%
    with pytest.raises(ValueError, match="even size"):
        assert_symplectic(lambda v: v, torch.zeros(3, dtype=torch.float64))


class _Scaled(torch.nn.Module):
    """A x = 2 x with an adjoint scaled by ``adjoint_scale`` (1: exact)."""

    def __init__(self, adjoint_scale=1.0):
        super().__init__()
        self.adjoint_scale = adjoint_scale

    def forward(self, x):
        return 2.0 * x

    def adjoint(self, y):
        return 2.0 * self.adjoint_scale * y


def test_adjoint_check_on_gradflow_operators_and_a_wrong_adjoint():
    from gradflow.inverse import MRI, Blur, Downsampling, Inpainting, gaussian_kernel
    from gradflow.testing import assert_adjoint

    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for op in (Blur(gaussian_kernel(1.5)), Downsampling(2), Inpainting.random((1, 16, 16), 0.5, seed=0),
               MRI.cartesian((16, 16))):
        assert_adjoint(op.double(), x)
    assert_adjoint(_Scaled(), X)
    with pytest.raises(AssertionError, match="not the adjoint"):
        assert_adjoint(_Scaled(adjoint_scale=1.001), X)
    with pytest.raises(ValueError, match="operator must have a adjoint"):
        assert_adjoint(lambda v: v, X)
    with pytest.raises(ValueError, match="y must be a tensor shaped like"):
        assert_adjoint(_Scaled(), X, y=torch.zeros(3))


def test_lipschitz_bound_check_holds_for_certified_bounds_and_catches_a_false_one():
    from gradflow.inverse import GradNetPrior
    from gradflow.potentials import MGradNetM
    from gradflow.testing import assert_lipschitz_bound

    torch.manual_seed(0)
    net = MGradNetC(3, width=8, depth=2, strong_convexity=0.1).double()
    assert_lipschitz_bound(net, X)
    assert_lipschitz_bound(MGradNetM(3, width=8).double(), X)
    prior = GradNetPrior(channels=1, n_filters=4, kernel_size=3).double()
    images = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert_lipschitz_bound(prior, images)
    quadratic = Quadratic(A_SYM)  # ||A||_2 = 3.04
    assert_lipschitz_bound(quadratic, X, bound=3.05)
    with pytest.raises(AssertionError, match="exceeds its Lipschitz bound"):
        assert_lipschitz_bound(quadratic, X, bound=3.0)
    with pytest.raises(ValueError, match=r"no lipschitz_bound\(\) method: pass bound"):
        assert_lipschitz_bound(quadratic, X)
