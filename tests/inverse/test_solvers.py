import itertools
import math

import pytest
import torch

from gradflow.inverse import (
    METHODS,
    Blur,
    Denoising,
    GradNetPrior,
    GradStepPrior,
    Inpainting,
    Tikhonov,
    TotalVariation,
    gaussian_kernel,
    objective,
    select_lam,
    solve,
)
from gradflow.inverse.priors import _finite_differences_adjoint, finite_differences


def _dense(linear, n, shape):
    """The matrix of a linear map on images of ``shape`` (its columns are images of the basis)."""
    eye = torch.eye(n, dtype=torch.float64).view(n, *shape)
    return linear(eye).reshape(n, -1).T


def _problem(generator, op, shape=(1, 8, 8)):
    x = torch.rand(1, *shape, generator=generator, dtype=torch.float64)
    return x, op.measure(x, 0.05, generator=generator)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["identity", "gradient"])
def test_reaches_the_known_minimiser_of_a_quadratic_problem(method, kind, generator):
    op = Blur(gaussian_kernel(1.0, size=5)).double()
    shape, lam = (1, 8, 8), 0.05
    _, y = _problem(generator, op, shape)
    n = math.prod(shape)
    A = _dense(op, n, shape)
    D = _dense(finite_differences, n, shape) if kind == "gradient" else torch.eye(n, dtype=torch.float64)
    x_star = torch.linalg.solve(A.T @ A + lam * D.T @ D, A.T @ y.flatten())
    # lbfgs's line search compares objective values, which stop resolving progress near 1e-9 (float64)
    tol, accuracy = (1e-8, 1e-6) if method == "lbfgs" else (1e-11, 1e-7)
    result = solve(y, op, Tikhonov(kind), lam, method, max_iter=5000, tol=tol)
    assert result.converged
    assert float((result.x.flatten() - x_star).abs().max()) < accuracy
    objectives = [h["objective"] for h in result.history]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(objectives))


def test_dense_finite_differences_adjoint_matches(generator):
    shape = (1, 5, 6)
    D = _dense(finite_differences, 30, shape)
    p = torch.randn(1, 1, 2, 5, 6, generator=generator, dtype=torch.float64)
    assert torch.allclose(_finite_differences_adjoint(p).flatten(), D.T @ p.flatten(), atol=1e-12)


@pytest.mark.parametrize(("method", "depth"), [("agd", 3), ("fista", 1), ("pgd", 1), ("pnp", 2), ("lbfgs", 1)])
def test_objective_decreases_monotonically_with_a_learned_convex_prior(method, depth, generator):
    torch.manual_seed(0)
    prior = GradNetPrior(n_filters=6, kernel_size=5, depth=depth).double()
    op = Blur(gaussian_kernel(0.7, size=3)).double()
    _, y = _problem(generator, op, (1, 12, 12))
    result = solve(y, op, prior, 0.5, method, max_iter=2000, tol=1e-5)
    obj = [h["objective"] for h in result.history]
    assert result.converged and obj[-1] < obj[0]
    assert all(a >= b - 1e-9 * abs(a) for a, b in itertools.pairwise(obj))
    # the limit is the minimiser: for convex F, grad F(x) = A^T (A x - y) + lam grad R(x) = 0
    with torch.no_grad():
        stationarity = op.adjoint(op(result.x) - y) + 0.5 * prior.grad(result.x)
    assert float(stationarity.norm()) < 1e-3 * float(op.adjoint(y).norm())


def test_step_sizes_are_the_certified_ones(generator):
    prior = GradNetPrior(n_filters=4, kernel_size=3).double()
    op = Blur(gaussian_kernel(0.8)).double()
    _, y = _problem(generator, op)
    L_A = op.lipschitz((1, 8, 8))
    L_R = float(prior.lipschitz_bound().detach())
    assert solve(y, op, prior, 0.3, "agd", max_iter=3).history[0]["step"] == pytest.approx(1 / (L_A + 0.3 * L_R))
    assert solve(y, op, prior, 0.3, "fista", max_iter=3).history[0]["step"] == pytest.approx(1 / L_A)
    assert solve(y, op, prior, 0.3, "pnp", max_iter=3).history[0]["step"] == pytest.approx(1 / (0.3 * L_R))


def test_pnp_converges_with_a_non_convex_gradient_step_prior(generator):
    torch.manual_seed(1)
    prior = GradStepPrior(n_filters=6, kernel_size=3, activation="tanh").double()
    with torch.no_grad():  # three decreasing (concave) ridge profiles: non-convex, bounded slope
        prior.alpha[0, :3] *= -1.0
    assert float(prior.profile(torch.full((1, 6, 1, 1), 0.1, dtype=torch.float64))[0, 0].detach()) < 0
    op = Denoising()  # the data term is coercive, R grows at most linearly: F is bounded below
    _, y = _problem(generator, op, (1, 10, 10))
    lam = 3.0 / float(prior.lipschitz_bound().detach())  # lam L = 3 > 1: the objective is not convex
    result = solve(y, op, prior, lam, "pnp", max_iter=2000, tol=1e-7)
    obj = [h["objective"] for h in result.history]
    assert result.converged
    assert all(a >= b - 1e-9 * abs(a) for a, b in itertools.pairwise(obj))
    # a fixed point: x = prox_{s f}(x - s lam grad R(x)) <=> A^T(Ax - y) + lam grad R(x) = 0
    x = result.x
    with torch.no_grad():
        stationarity = op.adjoint(op(x) - y) + lam * prior.grad(x)
    assert float(stationarity.abs().max()) < 1e-5


def test_total_variation_by_fista_lowers_the_objective_and_denoises(generator):
    x = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    x[..., 4:12, 4:12] = 1.0
    y = Denoising().measure(x, 0.2, generator=generator)
    result = solve(y, Denoising(), TotalVariation(), 0.15, "fista", max_iter=100, tol=1e-6)
    assert result.history[-1]["objective"] < float(objective(y, y, Denoising(), TotalVariation(), 0.15))
    assert float((result.x - x).square().mean()) < 0.3 * float((y - x).square().mean())


def test_select_lam(generator):
    x, y = _problem(generator, Denoising(), (1, 16, 16))
    lams = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    oracle = select_lam(y, Denoising(), Tikhonov(), x_true=x, lams=lams, max_iter=200)
    assert oracle.criterion == "psnr" and oracle.lam == lams[max(range(5), key=oracle.scores.__getitem__)]
    morozov = select_lam(y, Denoising(), Tikhonov(), sigma=0.05, lams=lams, max_iter=200)
    # the residual grows with lam; the choice is the largest lam within the noise level
    assert morozov.scores == sorted(morozov.scores)
    chosen = morozov.lams.index(morozov.lam)
    assert morozov.scores[chosen] <= 1.0 and (chosen == 4 or morozov.scores[chosen + 1] > 1.0)


def test_bad_inputs_raise(generator):
    _, y = _problem(generator, Denoising())
    with pytest.raises(ValueError, match="lam"):
        solve(y, Denoising(), Tikhonov(), -1.0)
    with pytest.raises(ValueError, match="unknown method"):
        solve(y, Denoising(), Tikhonov(), 0.1, "admm")
    with pytest.raises(ValueError, match="NaN"):
        solve(torch.full_like(y, float("nan")), Denoising(), Tikhonov(), 0.1)
    with pytest.raises(ValueError, match="Lipschitz gradient"):
        solve(y, Denoising(), TotalVariation(), 0.1, "agd")
    with pytest.raises(ValueError, match="operator"):
        solve(y, "blur", Tikhonov(), 0.1)
    with pytest.raises(ValueError, match="exactly one"):
        select_lam(y, Denoising(), Tikhonov())
    with pytest.raises(ValueError, match="1 channel"):
        solve(torch.rand(1, 3, 8, 8), Denoising(), GradNetPrior(n_filters=2, kernel_size=3), 0.1)


def test_divergence_guard_stops_pnp_when_the_potential_is_unbounded_below(generator):
    torch.manual_seed(2)
    prior = GradStepPrior(n_filters=4, kernel_size=3).double()
    with torch.no_grad():  # every ridge profile decreasing: g is concave, unbounded below off the data
        prior.alpha.copy_(-prior.alpha.abs())
    op = Inpainting.random((10, 10), missing=0.5, seed=0)
    _, y = _problem(generator, op, (1, 10, 10))
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = solve(y, op, prior, 1.0, "pnp", max_iter=5000, tol=1e-9)
    assert result.diverged and not result.converged and result.n_iter < 5000
    assert torch.isfinite(result.x).all()
    assert float(result.x.norm()) <= 10.0 * max(float(op.adjoint(y).norm()), 1.0)
    objectives = [h["objective"] for h in result.history]
    assert all(a >= b - 1e-9 * abs(a) for a, b in itertools.pairwise(objectives))  # it descends, to -inf
    convex = solve(y, op, GradNetPrior(n_filters=4, kernel_size=3).double(), 1.0, "agd", max_iter=5000, tol=1e-8)
    assert convex.converged and not convex.diverged
    with pytest.raises(ValueError, match="divergence_factor"):
        solve(y, op, prior, 1.0, "pnp", divergence_factor=1.0)


def test_restore_picks_lbfgs_for_smooth_learned_priors_and_keeps_agd_for_a_quadratic_one():
    from gradflow.inverse import GradNetPrior, Tikhonov
    from gradflow.inverse._tasks import make_task, restore, solver_for

    task = make_task("denoise", (24, 24), sigma=15 / 255)
    assert solver_for(GradNetPrior(channels=1, n_filters=4, kernel_size=3), task) == ("lbfgs", 1e-5)
    assert solver_for(Tikhonov(), task) == ("agd", 1e-4)
    x = torch.rand(2, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    y = x + 15 / 255 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    result = restore(y, task, Tikhonov(), lam=0.36)
    assert result.converged and result.method == "agd"


def test_solver_iterations_skip_the_finiteness_sync_but_the_entry_checks_it(monkeypatch):
    import gradflow._validation as validation
    from gradflow.inverse import Blur, TotalVariation, _checks, gaussian_kernel, solve

    calls = []
    original = validation.check_finite
    monkeypatch.setattr(_checks, "check_finite", lambda x, name="input": (calls.append(name), original(x, name)))
    y = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    result = solve(y, Blur(gaussian_kernel(1.0)), TotalVariation(eps=0.01), 0.01, "agd", max_iter=50)
    assert len(result.history) > 5
    assert len(calls) <= 4  # y and the start at entry; none per iteration (each would call it several times)
    with pytest.raises(ValueError, match="y contains NaN"):
        solve(torch.full_like(y, float("nan")), Blur(gaussian_kernel(1.0)), TotalVariation(eps=0.01), 0.01, "agd")
