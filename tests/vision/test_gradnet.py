"""ConvGradNet is the gradient of its energy (convex when monotone); GradNetResidual's formula and gradients."""

import math

import pytest
import torch

from gradflow.testing import assert_conservative, assert_energy_consistent, assert_monotone, tolerance
from gradflow.vision import ConvBranch, ConvGradNet, GradNetResidual

F64 = torch.float64
SHAPE = (2, 3, 3)  # (C, H, W): small enough for dense Jacobians


class Flat(torch.nn.Module):
    """View an image field as a field on R^(C*H*W), the form the gradflow.testing checks take."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, v):
        return self.net(v.reshape(-1, *SHAPE)).reshape(v.shape)

    def energy(self, v):
        return self.net.energy(v.reshape(-1, *SHAPE)).reshape(v.shape[:-1])


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "weighted_tanh"])
def test_conv_gradnet_is_the_gradient_of_a_convex_energy(activation):
    torch.manual_seed(0)
    net = ConvGradNet(2, hidden_channels=4, activation=activation).double()
    with torch.no_grad():
        net.bias.normal_()
    v = torch.randn(3, math.prod(SHAPE), dtype=F64)
    assert_energy_consistent(Flat(net), v)
    assert_conservative(Flat(net), v)
    assert_monotone(Flat(net), v)


def test_non_monotone_conv_gradnet_is_conservative_but_not_monotone():
    torch.manual_seed(1)
    net = ConvGradNet(2, hidden_channels=6, activation="sin", monotone=False).double()
    with torch.no_grad():
        net.raw_scale.normal_()
        net.weight.mul_(3)
    v = torch.randn(4, math.prod(SHAPE), dtype=F64)
    assert_energy_consistent(Flat(net), v)
    assert_conservative(Flat(net), v)
    with pytest.raises(AssertionError, match="not monotone"):
        assert_monotone(Flat(net), v)


def test_gradnet_residual_formula_and_gradients():
    torch.manual_seed(0)
    branch, potential = ConvBranch(2).double(), ConvGradNet(2).double()
    block = GradNetResidual(branch, potential, alpha_init=-0.4)
    x = torch.randn(2, 2, 5, 5, dtype=F64)
    s = 1 / (1 + math.exp(0.4))
    rtol, atol = tolerance(F64)
    torch.testing.assert_close(block(x), branch(x) + (1 - s) * x + s * potential(x), rtol=rtol, atol=atol)
    block(x).square().sum().backward()
    for name, param in block.named_parameters():
        assert param.grad is not None and param.grad.abs().max() > 0, name


def test_gradnet_residual_minus_infinity_is_the_identity_residual():
    torch.manual_seed(0)
    branch = ConvBranch(2)
    block = GradNetResidual(branch, ConvGradNet(2), alpha_init=-math.inf)
    x = torch.randn(2, 2, 5, 5)
    assert torch.equal(block(x), branch(x) + x)


def test_conv_gradnet_validates():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ConvGradNet(3)(torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="activation"):
        ConvGradNet(3, activation="relu")
    with pytest.raises(ValueError, match="monotone activation"):
        ConvGradNet(3, activation="sin", monotone=True)
    with pytest.raises(ValueError, match="potential"):
        GradNetResidual(ConvBranch(3), potential="gradnet")
