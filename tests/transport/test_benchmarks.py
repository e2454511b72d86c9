import numpy as np
import ot
import pytest
import torch

from gradflow.testing import assert_monotone
from gradflow.transport.benchmarks import create_pair, list_pairs


@pytest.mark.parametrize("name", ["gaussian", "mixture"])
@pytest.mark.parametrize("dim", [1, 3])
def test_true_map_is_invertible_and_samplers_are_seeded(name, dim):
    pair = create_pair(name, dim, seed=1)
    x = pair.sample_source(256, torch.Generator().manual_seed(0), dtype=torch.float64)
    y = pair.true_map(x)
    assert y.shape == x.shape and y.dtype == torch.float64
    torch.testing.assert_close(pair.true_inverse(y), x, rtol=1e-7, atol=1e-7)
    again = pair.sample_source(256, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(x, again)
    assert pair.sample_target(5).dtype == torch.float32


@pytest.mark.parametrize("name", ["gaussian", "mixture"])
def test_true_map_is_the_optimal_coupling_of_samples(name):
    # Brenier: a gradient of a convex function is cyclically monotone, so pairing x_i with T*(x_i) is the
    # exact OT plan between the two point clouds (POT recovers the identity permutation).
    pair = create_pair(name, 4, seed=0)
    x = pair.sample_source(300, torch.Generator().manual_seed(3), dtype=torch.float64)
    y = pair.true_map(x)
    a = np.full(300, 1 / 300)
    plan = ot.emd(a, a, ot.dist(x.numpy(), y.numpy()))
    assert np.array_equal(plan.argmax(1), np.arange(300))


def test_mixture_true_potential_is_convex():
    pair = create_pair("mixture", 3)
    x = pair.sample_source(64, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert_monotone(pair.target.psi, x)


@pytest.mark.parametrize("name", ["gaussian", "mixture", "smoothed_norm"])  # icnn: test_families.py
def test_target_variance_and_density(name):
    pair = create_pair(name, 2, seed=0)
    y = pair.sample_target(100_000, torch.Generator().manual_seed(7), dtype=torch.float64)
    assert float(y.var(0).sum()) == pytest.approx(pair.target_var, rel=0.03)
    # change of variables: log q(T(x)) = log p(x) - log det J_T(x)
    x = pair.sample_source(20, torch.Generator().manual_seed(8), dtype=torch.float64)
    h = 1e-6  # central differences: the true map is applied without autograd
    eye = torch.eye(2, dtype=torch.float64)
    J = torch.stack([(pair.true_map(x + h * e) - pair.true_map(x - h * e)) / (2 * h) for e in eye], dim=-1)
    expected = pair.source.log_prob(x) - torch.linalg.slogdet(J)[1]
    torch.testing.assert_close(pair.target.log_prob(pair.true_map(x)), expected, rtol=1e-5, atol=1e-5)


def test_create_pair_rejects_unknown_names_and_dims():
    assert list_pairs() == ["gaussian", "icnn", "mixture", "smoothed_norm"]
    with pytest.raises(ValueError, match="valid: gaussian, icnn, mixture, smoothed_norm"):
        create_pair("uniform", 2)
    for name in list_pairs():
        with pytest.raises(ValueError, match="dim"):
            create_pair(name, 0)
