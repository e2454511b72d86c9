import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gradflow.inverse.priors import GradNetPrior, GradStepPrior, Tikhonov, TotalVariation, _conv_norm_squared
from gradflow.potentials import ConvergenceError
from gradflow.testing import assert_conservative, assert_energy_consistent, assert_monotone

SHAPE = (1, 6, 6)


def small(cls=GradNetPrior, **kw):
    torch.manual_seed(kw.pop("seed", 0))
    kw = {"n_filters": 4, "kernel_size": 3, **kw}
    return cls(**kw).double()


class _Flat(torch.nn.Module):
    """The prior as a potential on flattened images, for gradflow.testing."""

    def __init__(self, prior, shape):
        super().__init__()
        self.prior, self.shape = prior, shape

    def forward(self, x):
        return self.prior.grad(x.view(-1, *self.shape)).view(x.shape)

    def energy(self, x):
        return self.prior.cost(x.view(-1, *self.shape))


PRIORS = {
    "ridge": lambda: small(),
    "cascaded": lambda: small(depth=3),
    "cascaded_tanh_2ch": lambda: small(depth=2, activation="tanh", channels=2),
    "composed_valid": lambda: small(kernel_size=5, hidden_channels=(3,), boundary="valid"),
    "tikhonov_gradient": lambda: Tikhonov("gradient"),
    "smoothed_tv": lambda: TotalVariation(eps=0.1),
}


def _points(prior, generator, n=4):
    shape = (getattr(prior, "channels", None) or 1, *SHAPE[1:])
    return shape, torch.rand(n, *shape, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", list(PRIORS))
def test_gradient_is_conservative_monotone_and_consistent_with_cost(name, generator):
    prior = PRIORS[name]()
    shape, x = _points(prior, generator)
    flat = _Flat(prior, shape)
    xf = x.flatten(1)
    assert_conservative(flat, xf)
    assert_monotone(flat, xf)
    assert_energy_consistent(flat, xf)


@pytest.mark.parametrize("name", list(PRIORS))
def test_cost_is_convex_along_segments(name, generator):
    prior = PRIORS[name]()
    _shape, a = _points(prior, generator, 8)
    b = 3 * torch.randn(a.shape, generator=generator, dtype=torch.float64)
    for t in (0.1, 0.3, 0.5, 0.9):
        mid = prior.cost((1 - t) * a + t * b)
        assert bool((mid <= (1 - t) * prior.cost(a) + t * prior.cost(b) + 1e-10).all())


@pytest.mark.parametrize("name", ["ridge", "cascaded", "cascaded_tanh_2ch", "composed_valid"])
def test_lipschitz_bound_holds_and_is_tight_for_the_filter_bank(name, generator):
    prior = PRIORS[name]()
    L = float(prior.lipschitz_bound().detach())
    _shape, a = _points(prior, generator, 16)
    b = a + 0.05 * torch.randn(a.shape, generator=generator, dtype=torch.float64)
    ratio = (prior.grad(a) - prior.grad(b)).flatten(1).norm(dim=1) / (a - b).flatten(1).norm(dim=1)
    assert float(ratio.max().detach()) <= L
    # the frequency-domain bound of ||C||^2 (C: the valid convolution) is within 2% of power iteration on a
    # large image; with reflect padding P, ||C P||^2 <= 4 ||C||^2
    w = prior.filters().detach()
    bound = float(_conv_norm_squared(w, prior.frequency_grid))
    for gram, factor in ((lambda v: F.conv_transpose2d(F.conv2d(v, w), w), 1.0),
                         (lambda v: prior._conv_adjoint(prior._conv(v, w), w), 4.0)):
        x = torch.randn(1, w.shape[1], 96, 96, generator=generator, dtype=torch.float64)
        for _ in range(300):
            x = gram(x)
            x = x / x.norm()
        estimate = float((x * gram(x)).sum())  # approaches from below
        assert estimate <= factor * bound
        if factor == 1.0:
            assert bound <= 1.03 * estimate  # tight up to the grid margin (2% for k = 5)


@pytest.mark.parametrize("boundary", ["reflect", "valid"])
@pytest.mark.parametrize("hidden", [(), (2, 3)])
def test_the_convolution_bank_and_its_transpose_are_adjoint(boundary, hidden, generator):
    prior = small(kernel_size=7, hidden_channels=hidden, boundary=boundary, channels=2)
    w = prior.filters().detach()
    x = torch.randn(2, 2, 9, 8, generator=generator, dtype=torch.float64)
    u = torch.randn(prior._conv(x, w).shape, generator=generator, dtype=torch.float64)
    lhs = (prior._conv(x, w) * u).sum()
    assert float(lhs) == pytest.approx(float((x * prior._conv_adjoint(u, w)).sum()), rel=1e-12)
    if hidden:  # the composed kernel is the composition of the factor convolutions
        v = x if boundary == "valid" else F.pad(x, (3,) * 4, mode="reflect")
        for factor in (*prior.factors, prior.weight):
            v = F.conv2d(v, factor)
        v = v - F.conv2d(x if boundary == "valid" else F.pad(x, (3,) * 4, mode="reflect"),
                         prior._composed() - w)  # undo the zero-mean projection
        assert torch.allclose(prior._conv(x, w), v, atol=1e-12)


@settings(max_examples=8)
@given(channels=st.integers(1, 2), n_filters=st.integers(1, 5), kernel=st.sampled_from([3, 5]),
       depth=st.integers(1, 3), boundary=st.sampled_from(["reflect", "valid"]), hidden=st.sampled_from([(), (2,)]))
def test_any_architecture_is_convex_with_a_valid_bound(channels, n_filters, kernel, depth, boundary, hidden):
    prior = small(channels=channels, n_filters=n_filters, kernel_size=kernel, depth=depth, seed=n_filters,
                  boundary=boundary, hidden_channels=hidden)
    gen = torch.Generator().manual_seed(depth)
    x = torch.rand(3, channels, 5, 5, generator=gen, dtype=torch.float64)
    flat = _Flat(prior, (channels, 5, 5))
    assert_monotone(flat, x.flatten(1))
    with torch.no_grad():
        J = torch.func.jacrev(flat)(x[0].flatten())
    assert float(torch.linalg.eigvalsh(J).max()) <= float(prior.lipschitz_bound().detach()) * (1 + 1e-9)


def test_zero_mean_filters_make_the_prior_blind_to_constants(generator):
    prior = small(kernel_size=5).requires_grad_(False)
    x = torch.rand(2, 1, 9, 9, generator=generator, dtype=torch.float64)
    assert float(prior.grad(torch.full_like(x, 0.7)).abs().max()) < 1e-12
    assert float(prior.cost(torch.full_like(x, 0.7)).abs().max()) < 1e-12
    assert torch.allclose(prior.cost(x + 0.3), prior.cost(x)) and torch.allclose(prior.grad(x + 0.3), prior.grad(x))


def test_grad_step_prior_can_be_non_convex_and_stays_conservative(generator):
    prior = small(GradStepPrior, depth=2)
    with torch.no_grad():
        prior.alpha[-1, :2] *= -3.0  # flip two ridge profiles: the potential is no longer convex
    x = torch.rand(4, *SHAPE, generator=generator, dtype=torch.float64).flatten(1)
    flat = _Flat(prior, SHAPE)
    assert_conservative(flat, x)
    assert_energy_consistent(flat, x)
    with pytest.raises(AssertionError, match="not monotone"):
        assert_monotone(flat, 4 * x)
    L = float(prior.lipschitz_bound().detach())
    a, b = x.view(-1, *SHAPE), (x + 0.1).view(-1, *SHAPE) * 1.3
    with torch.no_grad():
        change = (prior.grad(a) - prior.grad(b)).flatten(1).norm(dim=1) / (a - b).flatten(1).norm(dim=1)
    assert float(change.max()) <= L
    assert torch.allclose(prior.denoise(a), a - prior.grad(a))
    assert not prior.is_convex and GradNetPrior().is_convex


@pytest.mark.parametrize("name", ["ridge", "cascaded", "tikhonov_gradient", "smoothed_tv"])
def test_prox_satisfies_its_optimality_condition(name, generator):
    prior = PRIORS[name]()
    _shape, v = _points(prior, generator, 3)
    tau = 0.7
    with torch.no_grad():
        x = prior.prox(v, tau)
        assert float(((x - v) + tau * prior.grad(x)).abs().max()) < 1e-7


def test_exact_tv_prox_minimises_the_prox_objective(generator):
    tv = TotalVariation()
    v = torch.rand(2, 1, 10, 10, generator=generator, dtype=torch.float64)
    tau = 0.05

    def h(x):
        return 0.5 * (x - v).flatten(1).square().sum(1) + tau * tv.cost(x)

    x = tv.prox(v, tau, tol=1e-10, max_iter=5000)
    assert bool((h(x) < h(v)).all())
    for _ in range(20):
        d = 1e-3 * torch.randn(v.shape, generator=generator, dtype=torch.float64)
        assert bool((h(x) <= h(x + d) + 1e-9).all())
    # constant images are fixed points, and TV of a constant is zero
    c = torch.full((1, 1, 5, 5), 0.3, dtype=torch.float64)
    assert torch.allclose(tv.prox(c, 1.0), c) and float(tv.cost(c)) == 0.0


def test_tikhonov_identity_prox_is_closed_form():
    v = torch.rand(1, 1, 4, 4)
    assert torch.allclose(Tikhonov("identity").prox(v, 3.0), v / 4)


def test_prox_reports_non_convergence(generator):
    prior = small(depth=2)
    v = torch.rand(1, *SHAPE, generator=generator, dtype=torch.float64)
    with pytest.raises(ConvergenceError, match="did not converge") as info:
        prior.prox(v, 50.0, max_iter=2)
    assert info.value.x.shape == v.shape


def test_every_parameter_receives_a_gradient(generator):
    prior = GradNetPrior(n_filters=3, kernel_size=3, depth=3)
    x = torch.rand(2, 1, 6, 6, generator=generator)
    (prior.grad(x).square().sum() + prior.cost(x).sum() + prior.lipschitz_bound()).backward()
    for name, p in prior.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_float32_preserved_and_input_not_mutated(generator):
    prior = GradNetPrior(n_filters=3, kernel_size=3)
    x = torch.rand(2, 1, 6, 6, generator=generator)
    copy = x.clone()
    assert prior.grad(x).dtype == torch.float32 and prior.cost(x).dtype == torch.float32
    assert torch.equal(x, copy)


def test_bad_inputs_raise():
    prior = GradNetPrior(n_filters=3, kernel_size=3)
    with pytest.raises(ValueError, match="1 channel"):
        prior.grad(torch.rand(1, 3, 6, 6))
    with pytest.raises(ValueError, match="rank 4"):
        prior.cost(torch.rand(6, 6))
    with pytest.raises(ValueError, match="dtype"):
        prior.grad(torch.rand(1, 1, 6, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        prior.grad(torch.full((1, 1, 6, 6), float("nan")))
    with pytest.raises(ValueError, match="identically zero"):
        GradNetPrior(kernel_size=1)
    with pytest.raises(ValueError, match="odd"):
        GradNetPrior(kernel_size=4)
    with pytest.raises(ValueError, match="monotone activation"):
        GradNetPrior(activation="sin")
    with pytest.raises(ValueError, match="tau"):
        prior.prox(torch.rand(1, 1, 6, 6), -1.0)
    with pytest.raises(ValueError, match="not differentiable"):
        TotalVariation().grad(torch.rand(1, 1, 6, 6))
    with pytest.raises(ValueError, match="Tikhonov kind"):
        Tikhonov("laplace")
    with pytest.raises(ValueError, match="tau \\* L < 1"):
        GradStepPrior(n_filters=3, kernel_size=3).prox(torch.rand(1, 1, 6, 6), 100.0)


@pytest.mark.parametrize("cls", [GradNetPrior, GradStepPrior])
def test_deepen_starts_as_the_ridge_prior_and_keeps_its_guarantees(cls, generator):
    ridge = small(cls)
    with torch.no_grad():  # a trained-looking ridge: non-default scales and bias
        ridge.hidden_bias.uniform_(-0.1, 0.1)
        ridge.log_beta.add_(0.3)
    deep = ridge.deepen(3, coupling=1e-6)
    assert deep.depth == 3 and type(deep) is cls and deep.is_convex == ridge.is_convex
    x = torch.rand(3, *SHAPE, generator=generator, dtype=torch.float64)
    g_ridge = ridge.grad(x).detach()
    assert torch.allclose(deep.grad(x).detach(), g_ridge, atol=1e-5 * float(g_ridge.abs().max()))
    loose = ridge.deepen(3, coupling=1.0)
    assert not torch.allclose(loose.grad(x).detach(), g_ridge, atol=1e-3 * float(g_ridge.abs().max()))
    if cls is GradNetPrior:
        flat = _Flat(loose, SHAPE)
        assert_monotone(flat, x.flatten(1))
    assert float(deep.lipschitz_bound().detach()) >= float(ridge.lipschitz_bound().detach()) * (1 - 1e-6)
    for p in deep.parameters():  # an independent copy
        assert not any(p is q for q in ridge.parameters())


def test_deepen_rejects_bad_input():
    with pytest.raises(ValueError, match="depth 1"):
        small(depth=2).deepen(3)
    with pytest.raises(ValueError, match="depth"):
        small().deepen(1)
    with pytest.raises(ValueError, match="coupling"):
        small().deepen(2, coupling=0.0)
