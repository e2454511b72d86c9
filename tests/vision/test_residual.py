"""GradResidual: the gradient term against autograd, normalisation, modes, gates and backprop semantics."""

import copy
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from gradflow.testing import tolerance
from gradflow.vision import BRANCH_ACTIVATIONS, RESIDUAL_MODES, ConvBranch, GradResidual, normalize_field

F64 = torch.float64


def autograd_vjp(branch, x):
    """Reference g = J_F(x)^T 1 by autograd."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(branch(x).sum(), x)
    return g


def make_branch(activation="tanh", channels=3, hidden=5, kernel=3, scale=1.0, seed=0):
    torch.manual_seed(seed)
    branch = ConvBranch(channels, kernel, hidden_channels=hidden, activation=activation, scale=scale).double()
    # make the biases matter (ReLU pattern, borders) rather than leaving the default small init
    with torch.no_grad():
        for conv in (branch.conv1, branch.conv2):
            conv.bias.normal_()
    return branch


def assert_close(a, b):
    rtol, atol = tolerance(a.dtype)
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("activation", BRANCH_ACTIVATIONS)
@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
def test_gradient_term_equals_autograd_vjp(activation, fast_path):
    branch = make_branch(activation, scale=0.3)
    block = GradResidual(branch, fast_path=fast_path)
    assert block.uses_fast_path == fast_path
    x = torch.randn(2, 3, 7, 6, dtype=F64)
    assert_close(block.gradient_term(x), autograd_vjp(branch, x))


@given(channels=st.integers(1, 4), hidden=st.integers(1, 4), kernel=st.sampled_from([1, 3, 5]),
       height=st.integers(1, 9), width=st.integers(1, 9), batch=st.integers(1, 3))
def test_closed_form_matches_autograd_at_borders_for_any_size(channels, hidden, kernel, height, width, batch):
    # Small images make most pixels border pixels, where conv2^T 1 is not constant.
    branch = make_branch("relu", channels, hidden, kernel)
    block = GradResidual(branch)
    x = torch.randn(batch, channels, height, width, dtype=F64)
    assert_close(block.gradient_term(x), autograd_vjp(branch, x))


@pytest.mark.parametrize("size", [(15, 16), (16, 15)])
def test_closed_form_handles_stride_dilation_and_channel_change(size):
    torch.manual_seed(0)
    branch = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.SiLU(),
                           nn.Conv2d(4, 6, 5, padding=4, dilation=2)).double()
    block = GradResidual(branch, mode="gradient", projection=nn.Conv2d(3, 6, 1, stride=2, bias=False).double())
    assert block.uses_fast_path
    x = torch.randn(2, 3, *size, dtype=F64)
    assert_close(block.gradient_term(x), autograd_vjp(branch, x))
    assert block(x).shape == branch(x).shape


@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
def test_gradient_term_in_float32(fast_path):
    branch = make_branch("gelu").float()
    block = GradResidual(branch, fast_path=fast_path)
    x = torch.randn(3, 3, 9, 7)
    assert_close(block.gradient_term(x), autograd_vjp(branch, x))
    assert block(x).dtype == torch.float32


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
def test_cuda_matches_cpu(fast_path):
    branch = make_branch("relu")
    x = torch.randn(3, 3, 9, 7, dtype=F64)
    cpu = GradResidual(branch, alpha_init=0.5, fast_path=fast_path)
    gpu = GradResidual(make_branch("relu").cuda(), alpha_init=0.5, fast_path=fast_path)
    gpu.load_state_dict(cpu.state_dict())
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("normalize", ["sample", "position", None])
@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
def test_gradient_mode_with_each_normalization(normalize, fast_path):
    branch = make_branch("relu")
    block = GradResidual(branch, mode="gradient", normalize=normalize, fast_path=fast_path)
    x = torch.randn(2, 3, 5, 4, dtype=F64)
    g = autograd_vjp(branch, x)
    assert_close(block(x), branch(x) + normalize_field(g, normalize))


@pytest.mark.parametrize("second_order", [False, True])
def test_closed_form_for_linear_branches(second_order):
    torch.manual_seed(0)
    branch = nn.Sequential(nn.Linear(5, 7), nn.SiLU(), nn.Linear(7, 5)).double()
    fast = GradResidual(branch, second_order=second_order)
    slow = GradResidual(branch, second_order=second_order, fast_path=False)
    assert fast.uses_fast_path and not slow.uses_fast_path
    x = torch.randn(4, 5, dtype=F64)
    assert_close(fast.gradient_term(x), autograd_vjp(branch, x))
    grads = []
    for block in (fast, slow):
        branch.zero_grad()
        block(x).square().sum().backward()
        grads.append([p.grad.clone() for p in branch.parameters()])
    for a, b in zip(*grads):
        assert_close(a, b)


def test_unknown_activation_falls_back_to_autograd():
    branch = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Hardswish(), nn.Conv2d(3, 2, 3, padding=1)).double()
    block = GradResidual(branch)
    assert not block.uses_fast_path
    x = torch.randn(2, 2, 5, 5, dtype=F64)
    assert_close(block.gradient_term(x), autograd_vjp(branch, x))


def _batchnorm_branch(final_norm, stride=1):
    torch.manual_seed(0)
    layers = [nn.Conv2d(2, 4, 3, stride=stride, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)]
    branch = nn.Sequential(*layers, *([nn.BatchNorm2d(3)] if final_norm else [])).double()
    with torch.no_grad():  # non-trivial affine parameters and running statistics
        for m in branch:
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0), m.bias.normal_(), m.running_mean.normal_(), m.running_var.uniform_(0.5, 2)
    return branch


def _frozen_statistics(branch, x):
    """A copy of ``branch`` in eval mode whose batch norms use the statistics of the batch x as constants."""
    frozen = copy.deepcopy(branch).eval()
    h = x
    for original, m in zip(branch, frozen):
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(h.mean((0, 2, 3)))
            m.running_var.copy_(h.var((0, 2, 3), unbiased=False))
        h = original(h)
    return frozen


@pytest.mark.parametrize("final_norm", [False, True], ids=["conv-bn-relu-conv", "conv-bn-relu-conv-bn"])
@pytest.mark.parametrize("stride", [1, 2])
def test_closed_form_on_batchnorm_branches_holds_statistics_fixed(final_norm, stride):
    branch = _batchnorm_branch(final_norm, stride)
    block = GradResidual(branch, projection=nn.Conv2d(2, 3, 1, stride=stride, bias=False).double())
    assert block.uses_fast_path
    x = torch.randn(4, 2, 7, 6, dtype=F64)
    block.eval()  # running statistics: batch norm is an affine map and g is exactly the autograd VJP
    assert_close(block.gradient_term(x), autograd_vjp(branch, x))
    block.train()  # batch statistics, held constant: the VJP of the branch with those statistics frozen
    with torch.no_grad():
        reference = autograd_vjp(_frozen_statistics(branch, x), x)
    assert_close(block.gradient_term(x), reference)
    second = GradResidual(branch, second_order=True, projection=block.projection)
    with torch.enable_grad():
        g = second.gradient_term(x)
    assert g.requires_grad  # the graph reaches the weights and batch-norm scales
    assert_close(g.detach(), reference)


def test_autograd_through_a_final_batchnorm_in_training_gives_a_vanishing_gradient():
    # Why the closed form holds the statistics fixed: in training mode sum_i BN(o)_i = N * sum(beta) for any
    # o, so the VJP through the batch statistics is zero (rounding noise, which normalisation would blow up
    # to unit norm); the autograd path computes exactly that VJP.
    branch = _batchnorm_branch(final_norm=True).train()
    x = torch.randn(4, 2, 6, 6, dtype=F64)
    slow = GradResidual(branch, fast_path=False)
    assert not slow.uses_fast_path
    g_autograd = slow.gradient_term(x)
    assert_close(g_autograd, autograd_vjp(branch, x))
    assert g_autograd.abs().max() < 1e-10
    assert GradResidual(branch).gradient_term(x).abs().max() > 1e-2


def test_generic_path_on_a_batchnorm_branch_in_train_and_eval():
    branch = _batchnorm_branch(final_norm=False)
    block = GradResidual(branch, fast_path=False)
    x = torch.randn(4, 2, 6, 6, dtype=F64)
    for train in (True, False):
        block.train(train)
        assert_close(block.gradient_term(x), autograd_vjp(branch, x))


def test_closed_form_cache_follows_weight_updates():
    branch = make_branch("relu")
    block = GradResidual(branch)
    x = torch.randn(2, 3, 6, 6, dtype=F64)
    block.gradient_term(x)
    with torch.no_grad():
        branch.conv2.weight.mul_(-2.0).add_(0.1)  # in place, as an optimizer step
    assert_close(block.gradient_term(x), autograd_vjp(branch, x))
    # another spatial size with the same weights
    x2 = torch.randn(1, 3, 4, 9, dtype=F64)
    assert_close(block.gradient_term(x2), autograd_vjp(branch, x2))


@pytest.mark.parametrize("normalize", ["sample", "position"])
def test_normalized_gradient_has_unit_norm(normalize):
    g = torch.randn(3, 4, 5, 6, dtype=F64) * torch.tensor([1e-3, 1.0, 1e3], dtype=F64).view(3, 1, 1, 1)
    norms = torch.linalg.vector_norm(normalize_field(g, normalize), dim=1 if normalize == "position" else (1, 2, 3))
    assert_close(norms, torch.ones_like(norms))
    assert torch.equal(normalize_field(g, None), g)


def test_zero_gradient_is_not_turned_into_nan():
    g = torch.zeros(2, 3, 4, 4)
    assert torch.equal(normalize_field(g, "sample"), g)


@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
@pytest.mark.parametrize("mode", RESIDUAL_MODES)
def test_each_mode_matches_its_formula(mode, fast_path):
    branch = make_branch("tanh")
    block = GradResidual(branch, mode=mode, alpha_init=0.7, fast_path=fast_path)
    x = torch.randn(2, 3, 5, 6, dtype=F64)
    f = branch(x)
    g = autograd_vjp(branch, x)
    g_hat = g / torch.linalg.vector_norm(g, dim=(1, 2, 3), keepdim=True)
    s = 1 / (1 + math.exp(-0.7))
    expected = {
        "identity": f + x, "none": f, "gradient": f + g_hat, "identity+gradient": f + x + g_hat,
        "convex": f + (1 - s) * x + s * g_hat, "gradmag": f + (1 - s) * x + s * g_hat.abs(),
    }[mode]
    assert_close(block(x), expected)
    # g_hat has unit norm per sample inside the block: recover it from the "gradient" output
    if mode == "gradient":
        norms = torch.linalg.vector_norm(block(x) - f, dim=(1, 2, 3))
        assert_close(norms, torch.ones_like(norms))


@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
@pytest.mark.parametrize("mode", ["convex", "gradmag"])
def test_alpha_minus_infinity_is_exactly_the_identity_residual(mode, fast_path):
    branch = make_branch("relu")
    x = torch.randn(2, 3, 6, 5, dtype=F64)
    gated = GradResidual(branch, mode=mode, alpha_init=-math.inf, fast_path=fast_path)
    identity = GradResidual(branch, mode="identity")
    assert torch.equal(gated(x), identity(x))


@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
def test_stop_gradient_treats_g_as_a_constant_and_alpha_still_learns(fast_path):
    branch = make_branch("tanh")
    block = GradResidual(branch, alpha_init=0.3, fast_path=fast_path)
    x = torch.randn(2, 3, 5, 5, dtype=F64, requires_grad=True)
    weights = torch.randn(2, 3, 5, 5, dtype=F64)
    (block(x) * weights).sum().backward()
    got = {n: p.grad.clone() for n, p in block.named_parameters()}
    got_x = x.grad.clone()

    block.zero_grad()
    x.grad = None
    g = autograd_vjp(branch, x)  # a constant
    g_hat = g / torch.linalg.vector_norm(g, dim=(1, 2, 3), keepdim=True)
    s = torch.sigmoid(block.alpha)
    ((branch(x) + (1 - s) * x + s * g_hat) * weights).sum().backward()
    for name, param in block.named_parameters():
        assert_close(got[name], param.grad)
    assert_close(got_x, x.grad)
    assert got["alpha"].abs() > 0


@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
def test_second_order_backpropagates_through_g(fast_path):
    branch = make_branch("tanh")
    x = torch.randn(2, 3, 5, 5, dtype=F64, requires_grad=True)
    weights = torch.randn(2, 3, 5, 5, dtype=F64)

    def branch_grads(second_order):
        block = GradResidual(branch, alpha_init=0.3, second_order=second_order, fast_path=fast_path)
        branch.zero_grad()
        (block(x) * weights).sum().backward()
        return {n: p.grad.clone() for n, p in branch.named_parameters()}

    first, second = branch_grads(False), branch_grads(True)
    # reference: the same formula with g = J^T 1 from autograd with create_graph
    branch.zero_grad()
    (g,) = torch.autograd.grad(branch(x).sum(), x, create_graph=True)
    g_hat = g / torch.linalg.vector_norm(g, dim=(1, 2, 3), keepdim=True)
    s = 1 / (1 + math.exp(-0.3))
    ((branch(x) + (1 - s) * x + s * g_hat) * weights).sum().backward()
    for name, param in branch.named_parameters():
        assert_close(second[name], param.grad)
        if name == "conv2.bias":  # g does not depend on it
            assert_close(second[name], first[name])
        else:
            assert (second[name] - first[name]).abs().max() > 1e-6


@pytest.mark.parametrize("fast_path", [True, False], ids=["closed-form", "autograd"])
def test_eval_and_no_grad_give_the_training_output_without_a_graph(fast_path):
    torch.manual_seed(0)
    block = GradResidual(ConvBranch(3, activation="gelu"), alpha_init=1.0, fast_path=fast_path)
    x = torch.randn(2, 3, 6, 6)
    expected = block(x)
    block.eval()
    with torch.no_grad():
        out = block(x)
    assert not out.requires_grad
    torch.testing.assert_close(out, expected)


def test_learn_alpha_false_keeps_alpha_a_buffer():
    block = GradResidual(ConvBranch(2), alpha_init=3.0, learn_alpha=False)
    assert "alpha" not in dict(block.named_parameters()) and "alpha" in dict(block.named_buffers())
    assert float(block.gate()) == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert GradResidual(ConvBranch(2), mode="identity").alpha is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "bogus"}, "valid: convex"),
        ({"normalize": "batch"}, "unknown normalize"),
        ({"alpha_init": "3"}, "alpha_init"),
        ({"alpha_init": math.nan}, "alpha_init"),
        ({"mode": "none", "projection": nn.Identity()}, "unused"),
        ({"projection": 3}, "projection"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradResidual(ConvBranch(2), **kwargs)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"torch\.nn\.Module"):
        GradResidual(lambda x: x)
    block = GradResidual(nn.Conv2d(2, 3, 3, padding=1))
    with pytest.raises(ValueError, match="projection"):
        block(torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="floating-point"):
        GradResidual(ConvBranch(2))(torch.ones(1, 2, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="odd"):
        ConvBranch(2, kernel_size=2)
    with pytest.raises(ValueError, match="activation"):
        ConvBranch(2, activation="swish")
