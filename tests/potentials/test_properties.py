"""Property tests of the Potential contract over dimensions, widths, depths and batch shapes."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gradflow.testing import (
    assert_conservative,
    assert_energy_consistent,
    assert_inverse,
    assert_jacobian_consistent,
    assert_monotone,
)

from .models import FIELDS, GRADIENT_NETS, MONOTONE_NETS, POTENTIALS

dims = st.integers(1, 16)
widths = st.integers(1, 12)
batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
seeds = st.integers(0, 2**31 - 1)


def _model(factory, dim, width, seed, dtype=torch.float64):
    torch.manual_seed(seed)
    return factory(dim, width).to(dtype)


def _points(batch_shape, dim, seed, dtype=torch.float64, scale=2.0):
    g = torch.Generator().manual_seed(seed + 1)
    return scale * torch.randn(*batch_shape, dim, generator=g, dtype=dtype)


@pytest.mark.parametrize("name", sorted({**GRADIENT_NETS, **MONOTONE_NETS}))
@given(dim=dims, width=widths, batch=batch_shapes, seed=seeds)
def test_gradient_networks_are_conservative(name, dim, width, batch, seed):
    net = _model(POTENTIALS[name], dim, width, seed)
    x = _points(batch or (2,), dim, seed)
    assert_conservative(net, x)
    assert_jacobian_consistent(net, x)


@pytest.mark.parametrize("name", sorted(MONOTONE_NETS))
@given(dim=dims, width=widths, seed=seeds)
def test_monotone_networks_have_psd_jacobians(name, dim, width, seed):
    net = _model(MONOTONE_NETS[name], dim, width, seed)
    x = _points((4,), dim, seed, scale=3.0)
    assert_conservative(net, x)
    assert_monotone(net, x)


@pytest.mark.parametrize("name", sorted(POTENTIALS))
@given(dim=st.integers(1, 8), width=widths, batch=batch_shapes, seed=seeds)
def test_energy_is_consistent_with_the_field(name, dim, width, batch, seed):
    net = _model(POTENTIALS[name], dim, width, seed)
    assert_energy_consistent(net, _points(batch or (3,), dim, seed))


@pytest.mark.parametrize("name", sorted({**GRADIENT_NETS, **MONOTONE_NETS}))
@given(dim=st.integers(1, 8), width=widths, seed=seeds)
def test_lipschitz_bound_holds(name, dim, width, seed):
    net = _model(POTENTIALS[name], dim, width, seed)
    x = _points((256,), dim, seed, scale=4.0)
    with torch.no_grad():
        observed = torch.linalg.matrix_norm(net.jacobian(x), ord=2).max()
        assert observed <= net.lipschitz_bound() * (1 + 1e-9)


@pytest.mark.parametrize("name", sorted(MONOTONE_NETS))
@given(dim=st.integers(1, 8), width=widths, seed=seeds)
def test_inverse_round_trip_for_strongly_monotone_nets(name, dim, width, seed):
    torch.manual_seed(seed)
    net = MONOTONE_NETS[name](dim, width).double()
    net.strong_convexity = max(net.strong_convexity, 0.05)
    x = _points((5,), dim, seed)
    assert_inverse(net, net(x))
    with torch.no_grad():
        torch.testing.assert_close(net.inverse(net(x)), x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_shapes_dtypes_and_inputs_are_preserved(name, dtype):
    torch.manual_seed(0)
    net = FIELDS[name](3, 5).to(dtype)
    for shape in [(3,), (4, 3), (2, 1, 3)]:
        x = torch.randn(*shape, dtype=dtype)
        x_before = x.clone()
        y = net(x)
        assert y.shape == x.shape and y.dtype == dtype
        assert net.jacobian(x).shape == (*shape, 3)
        if net.is_conservative:
            assert net.energy(x).shape == shape[:-1]
        torch.testing.assert_close(x, x_before, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_float32_agrees_with_float64(name):
    torch.manual_seed(0)
    net64 = FIELDS[name](4, 6).double()
    net32 = FIELDS[name](4, 6)
    net32.load_state_dict({k: v.float() for k, v in net64.state_dict().items()})
    x = torch.randn(10, 4, dtype=torch.float64)
    torch.testing.assert_close(net32(x.float()).double(), net64(x), rtol=1e-4, atol=1e-5)
