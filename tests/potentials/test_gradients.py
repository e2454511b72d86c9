"""gradcheck / gradgradcheck in float64 and the "every parameter receives a gradient" check."""

import pytest
import torch

from .models import FIELDS, GRADIENT_NETS, MONOTONE_NETS


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_gradcheck_and_gradgradcheck_in_inputs(name):
    torch.manual_seed(0)
    net = FIELDS[name](3, 4).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,))
    assert torch.autograd.gradgradcheck(net, (x,))


@pytest.mark.parametrize("name", sorted({**GRADIENT_NETS, **MONOTONE_NETS}))
def test_gradcheck_of_energy_jacobian_and_logdet(name):
    torch.manual_seed(0)
    net = FIELDS[name](3, 4).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net.energy, (x,))
    assert torch.autograd.gradcheck(net.jacobian, (x,))
    if net.is_monotone:
        net.strong_convexity = 0.5
        assert torch.autograd.gradcheck(net.logdet_jacobian, (x,))


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_parameter_receives_a_gradient(name):
    torch.manual_seed(0)
    net = FIELDS[name](3, 4).double()
    x = torch.randn(8, 3, dtype=torch.float64)
    loss = net(x).square().sum()
    if net.is_conservative:
        loss = loss + net.energy(x).sum()
    loss.backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{pname} received no gradient"
        assert p.grad.abs().sum() > 0, f"{pname} received an all-zero gradient"
