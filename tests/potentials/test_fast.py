"""FastGradientField: equal to the plain autograd path (values, gradients, Adam updates) and it trains."""

from functools import partial

import pytest
import torch

from gradflow.potentials import FastGradientField, GradNetC, GradNetM, MGradNetC, MGradNetM, MLPPotential
from gradflow.potentials.fitting import fit_field, gradient_loss
from gradflow.potentials.targets import create_target, gradient_error_db
from gradflow.testing import tolerance
from gradflow.train import fit

# every gradient network, every activation, depth / number of modules 1 and > 1, with and without mu
NETS = {
    **{f"gradnet_c_{a}_L{L}": partial(GradNetC, width=6, depth=L, activation=a)
       for a in ("tanh", "sigmoid", "sin", "weighted_tanh") for L in (1, 3)},
    **{f"mgradnet_c_{a}_L{L}": partial(MGradNetC, width=6, depth=L, activation=a, strong_convexity=0.2 * (L > 1))
       for a in ("tanh", "sigmoid", "weighted_tanh") for L in (1, 3)},
    **{f"gradnet_m_{a}_K{K}": partial(GradNetM, width=5, n_modules=K, activation=a)
       for a in ("softmax", "weighted_softmax", "tanh", "sin", "weighted_tanh") for K in (1, 3)},
    **{f"mgradnet_m_{a}_K{K}": partial(MGradNetM, width=5, n_modules=K, activation=a, strong_convexity=0.1 * (K > 1))
       for a in ("softmax", "weighted_softmax", "sigmoid", "weighted_tanh") for K in (1, 3)},
}


def _randomise(model, generator):
    """Move every parameter away from its structured initialisation, so that no gradient is trivially zero."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


def _loss_and_grads(field, model, x, g):
    loss = gradient_loss(field, (x, g))
    return loss, torch.autograd.grad(loss, [x, *model.parameters()])


@pytest.mark.parametrize("name", sorted(NETS))
def test_field_and_gradients_equal_autograd_float64(name, generator):
    model = _randomise(NETS[name](3).double(), generator)
    fast = FastGradientField(model, compile=False)
    x = torch.rand(2, 5, 3, generator=generator, dtype=torch.float64).requires_grad_(True)
    g = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
    rtol, atol = tolerance(torch.float64)
    torch.testing.assert_close(fast(x), model(x), rtol=rtol, atol=atol)
    ref_loss, ref_grads = _loss_and_grads(model, model, x, g)
    loss, grads = _loss_and_grads(fast, model, x, g)
    torch.testing.assert_close(loss, ref_loss, rtol=rtol, atol=atol)
    names = ["x", *(n for n, _ in model.named_parameters())]
    for n, got, want in zip(names, grads, ref_grads, strict=True):
        assert got.abs().max() > 0 or want.abs().max() == 0, n
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, msg=lambda m, n=n: f"d loss / d {n}: {m}")


def test_single_point_and_float32(generator):
    model = _randomise(MGradNetM(4, width=6, n_modules=2), generator)
    fast = FastGradientField(model, compile=False)
    x = torch.rand(4, generator=generator)
    assert fast(x).shape == (4,)
    rtol, atol = tolerance(torch.float32)
    torch.testing.assert_close(fast(x), model(x), rtol=rtol, atol=atol)


@pytest.mark.parametrize("cls", [MGradNetC, GradNetM])
def test_fit_updates_equal_plain_autograd(cls):
    """Ten Adam steps of gradflow.train.fit through the fast field give the plain path's parameters."""
    target = create_target("convex_2d")
    x = target.sample(64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    data = (x, target.gradient(x))
    kw = {"depth": 2} if cls is MGradNetC else {"n_modules": 2}
    results = []
    for wrap in (False, True):
        torch.manual_seed(3)
        model = cls(2, width=5, **kw).double()
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        field = FastGradientField(model, compile=False) if wrap else model
        fit(field, gradient_loss, data, steps=10, batch_size=16, lr=1e-2, device="cpu", progress=False)
        results.append(model.state_dict())
    plain, fast = results
    rtol, atol = tolerance(torch.float64)
    for key in plain:
        assert not torch.equal(plain[key], initial[key]), f"{key} was not updated"
        torch.testing.assert_close(fast[key], plain[key], rtol=rtol, atol=atol, msg=lambda m, k=key: f"{k}: {m}")


def test_it_trains():
    target = create_target("convex_2d")
    torch.manual_seed(0)
    model = MGradNetC(2, width=7, depth=2)
    before = gradient_error_db(model, target, target.grid(50))
    fit_field(FastGradientField(model, compile=False), target, n_train=2000, n_val=200, epochs=10, batch_size=100,
              lr=2e-2, progress=False, device="cpu")
    after = gradient_error_db(model, target, target.grid(50))
    assert after < before - 15.0, (before, after)  # at least 30x smaller gradient MSE


def test_not_twice_differentiable(generator):
    fast = FastGradientField(GradNetC(2, width=4, depth=2), compile=False)
    x = torch.rand(5, 2, generator=generator, requires_grad=True)
    (dx,) = torch.autograd.grad(fast(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        dx.sum().backward()


def test_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="gradient network"):
        FastGradientField(MLPPotential(2, widths=(4,)))
    with pytest.raises(ValueError, match="compile"):
        FastGradientField(GradNetC(2, width=4), compile="yes")
    fast = FastGradientField(GradNetC(2, width=4), compile=False)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        fast(torch.rand(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        fast(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="dtype"):
        fast(torch.rand(3, 2, dtype=torch.float64))


def test_falls_back_to_eager_when_compile_fails(monkeypatch, generator):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = MGradNetC(3, width=5, depth=2)
    fast = FastGradientField(model)
    x = torch.rand(4, 3, generator=generator)
    with pytest.warns(RuntimeWarning, match="falls back to eager"):
        y = fast(x)
    assert not fast.compiled
    torch.testing.assert_close(y, model(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mgradnet_c_weighted_tanh_L3", "gradnet_m_softmax_K3"])
def test_compiled_equals_plain_float64(name, generator):
    model = _randomise(NETS[name](3).double(), generator)
    fast = FastGradientField(model, compile=True)
    x = torch.rand(16, 3, generator=generator, dtype=torch.float64).requires_grad_(True)
    g = torch.randn(16, 3, generator=generator, dtype=torch.float64)
    ref_loss, ref_grads = _loss_and_grads(model, model, x, g)
    loss, grads = _loss_and_grads(fast, model, x, g)
    assert fast.compiled
    rtol, atol = tolerance(torch.float64)
    torch.testing.assert_close(loss, ref_loss, rtol=rtol, atol=atol)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
