"""gradflow.inverse: the fused inference path of the ridge priors, tiled restoration, the weakly convex prior."""

import pytest
import torch
import torch.nn.functional as F

import gradflow.inverse.priors as priors_module
from gradflow.inverse import (
    Blur,
    Denoising,
    GradNetPrior,
    GradStepPrior,
    Tikhonov,
    WeaklyConvexPrior,
    certified_convex,
    gaussian_kernel,
    solve,
)
from gradflow.inverse._data import load_image
from gradflow.inverse._pretrained import load_pretrained
from gradflow.inverse._tasks import make_task, restore
from gradflow.inverse._training import minimiser_loss
from gradflow.inverse.priors import _add_conv_adjoint


def _priors():
    torch.manual_seed(0)
    wc = WeaklyConvexPrior(n_filters=6, kernel_size=5, rho_max=0.8)
    with torch.no_grad():
        wc.concave_log_alpha.fill_(1.0)  # a concave part at the rho_max cap
    return [
        GradNetPrior(n_filters=6, kernel_size=5),
        GradNetPrior(n_filters=6, kernel_size=5, activation="tanh"),
        GradNetPrior(n_filters=6, kernel_size=3, depth=2),
        GradStepPrior(n_filters=4, kernel_size=3, depth=2, boundary="valid"),
        wc,
    ]


@pytest.mark.parametrize("index", range(5))
def test_inference_path_matches_the_autograd_path(index, monkeypatch):
    # a few hundred numbers per strip: the 20-row images are cut into several strips
    monkeypatch.setattr(priors_module, "_STRIP_ELEMENTS", 6 * 23 * 2 * 4)
    prior = _priors()[index].double()
    x = torch.rand(2, 1, 20, 23, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    cost, grad = prior.cost(x), prior.grad(x)  # autograd enabled: the whole-image path
    with torch.no_grad():
        fast_cost, fast_grad = prior.cost_and_grad(x)
        strip_grad = prior.grad(x)
    assert torch.allclose(fast_grad, grad, atol=1e-12, rtol=1e-10)
    assert torch.allclose(strip_grad, grad, atol=1e-12, rtol=1e-10)
    assert torch.allclose(fast_cost, cost.detach(), atol=1e-9, rtol=1e-9)


def test_shift_add_adjoint_is_the_transposed_convolution():
    g = torch.randn(2, 5, 9, 11, dtype=torch.float64)
    w = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    out = torch.zeros(2, 3, 12, 14, dtype=torch.float64)
    _add_conv_adjoint(out, g, w)
    assert torch.allclose(out, F.conv_transpose2d(g, w), atol=1e-12)


def test_tiled_restore_matches_the_untiled_solve():
    truth = load_image("coins", size=64)
    task = make_task("denoise", (64, 64))
    y = task.operator.measure(truth, task.sigma, generator=torch.Generator().manual_seed(0))
    prior = load_pretrained("ridge-s25")
    whole = restore(y, task, prior, tile=None)
    tiled = restore(y, task, prior, tile=32, tile_margin=24)
    assert whole.tiles == 1 and tiled.tiles == 4 and tiled.converged
    # the default margin's documented agreement: the solves' own tolerance dominates the gap
    assert float((tiled.x - whole.x).abs().max()) < 5e-3


def test_tile_option_is_checked_and_auto_leaves_small_images_whole():
    task = make_task("denoise", (24, 24))
    y = torch.rand(1, 1, 24, 24)
    assert restore(y, task, Tikhonov(), tile="auto").tiles == 1
    for bad in (8, "big", 3.5, True):
        with pytest.raises(ValueError, match="tile"):
            restore(y, task, Tikhonov(), tile=bad)
    with pytest.raises(ValueError, match="tile_margin"):
        restore(y, task, Tikhonov(), tile=16, tile_margin=-1)


def _weakly_convex(rho_max=0.8):
    torch.manual_seed(0)
    prior = WeaklyConvexPrior(n_filters=6, kernel_size=5, rho_max=rho_max).double()
    with torch.no_grad():
        prior.concave_log_alpha.fill_(2.0)  # far above the cap: the shrink makes rho = rho_max
        prior.concave_log_beta.fill_(2.0)
    return prior


def test_weakly_convex_hessian_lies_within_the_certified_bounds():
    prior = _weakly_convex()
    with torch.no_grad():
        prior.log_alpha.fill_(-8.0)  # a weak convex part: the concave one shows
    rho, L = float(prior.rho_bound().detach()), float(prior.lipschitz_bound().detach())
    assert rho == pytest.approx(0.8) and L >= rho
    gen = torch.Generator().manual_seed(2)
    x = 0.01 * torch.rand(3, 1, 12, 12, dtype=torch.float64, generator=gen)  # where the profiles are steepest
    lowest = float("inf")
    for _ in range(10):
        v = torch.randn(x.shape, dtype=torch.float64, generator=gen)
        hv = torch.autograd.functional.jvp(prior.grad, x, v)[1]
        q = (v * hv).flatten(1).sum(1) / v.flatten(1).square().sum(1)
        lowest = min(lowest, float(q.min()))
        assert float(q.max()) <= L
    assert -rho <= lowest < 0  # genuinely non-convex, never below the certificate
    xr = x.clone().requires_grad_(True)
    assert torch.allclose(torch.autograd.grad(prior.cost(xr).sum(), xr)[0], prior.grad(x), atol=1e-10)


def test_weakly_convex_denoising_is_certified_and_has_one_minimiser():
    prior = _weakly_convex()
    y = torch.rand(1, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert certified_convex(Denoising(), prior, 1.0) and not certified_convex(Denoising(), prior, 2.0)
    assert not certified_convex(Blur(gaussian_kernel(1.0)), prior, 0.1)
    a = solve(y, Denoising(), prior, 1.0, "lbfgs", tol=1e-10, max_iter=500)
    b = solve(y, Denoising(), prior, 1.0, "agd", tol=1e-10, max_iter=5000, x0=torch.zeros_like(y))
    assert a.converged and b.converged and a.convex and b.convex
    assert float((a.x - b.x).abs().max()) < 1e-6
    with pytest.warns(RuntimeWarning, match="not certified convex"):
        c = solve(y, Denoising(), prior, 2.0, "agd", max_iter=5)
    assert not c.convex
    x = prior.prox(y, 1.0)  # tau rho < 1: the prox is a strongly convex problem
    assert float(((x - y) + prior.grad(x)).abs().max()) < 1e-6
    with pytest.raises(ValueError, match="tau \\* rho"):
        prior.prox(y, 2.0)


def test_minimiser_training_needs_a_strongly_convex_denoiser():
    prior = _weakly_convex().float()
    clean = torch.rand(2, 1, 12, 12)
    noisy = clean + 0.1 * torch.randn(2, 1, 12, 12)
    loss = minimiser_loss(prior, clean, noisy, lam=1.0, tol=1e-4)
    loss.backward()
    assert prior.concave_log_beta.grad is not None and bool(prior.concave_log_beta.grad.abs().sum() > 0)
    with pytest.raises(ValueError, match="lam \\* rho"):
        minimiser_loss(prior, clean, noisy, lam=2.0)


def test_from_convex_keeps_the_convex_part():
    ridge = GradNetPrior(n_filters=4, kernel_size=3)
    wc = WeaklyConvexPrior.from_convex(ridge, rho_max=0.6)
    assert torch.equal(wc.filters(), ridge.filters())
    assert float(wc.rho_bound().detach()) == pytest.approx(0.3, rel=1e-4)
    with pytest.raises(ValueError, match="one-layer"):
        WeaklyConvexPrior.from_convex(GradNetPrior(n_filters=4, kernel_size=3, depth=2))
    with pytest.raises(ValueError, match="rho_max"):
        WeaklyConvexPrior(rho_max=0.0)
