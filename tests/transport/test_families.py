"""The known-truth pairs whose potential is not the fitted family: "icnn" and "smoothed_norm"."""

import time

import numpy as np
import ot
import pytest
import torch

from gradflow.potentials import autograd_jacobian
from gradflow.testing import assert_energy_consistent, assert_jacobian_consistent
from gradflow.transport import benchmarks as B
from gradflow.transport import bures_map, l2_uvp

FAMILIES = ["icnn", "smoothed_norm"]
_BUILDERS = {"icnn": B._icnn_pair, "smoothed_norm": B._smoothed_norm_pair}  # lru_cache'd; __wrapped__ rebuilds


def _points(pair, n, seed, spread=1.0):
    x = pair.sample_source(n, torch.Generator().manual_seed(seed), dtype=torch.float64)
    return spread * x


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dim", [2, 5])
def test_true_inverse_undoes_the_true_map(name, dim):
    pair = B.create_pair(name, dim)
    x = _points(pair, 256, 0)
    torch.testing.assert_close(pair.true_inverse(pair.true_map(x)), x, rtol=1e-8, atol=1e-8)
    # Newton converges on target samples (started from 0, far from most of them), to the source point
    g = torch.Generator().manual_seed(1)
    y = pair.sample_target(512, g, dtype=torch.float64)
    x = pair.sample_source(512, torch.Generator().manual_seed(1), dtype=torch.float64)
    x_hat = pair.true_inverse(y)
    torch.testing.assert_close(pair.true_map(x_hat), y, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(x_hat, x, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dim", [2, 5])
def test_true_map_jacobian_is_symmetric_and_at_least_mu(name, dim):
    pair = B.create_pair(name, dim)
    psi = pair.target.psi
    mu = psi.strong_convexity
    assert mu > 0
    x = torch.cat([_points(pair, 6, 2), _points(pair, 6, 3, spread=3.0)])  # on and well off the data
    with torch.no_grad():
        J = autograd_jacobian(psi, x)
    torch.testing.assert_close(J, J.mT, rtol=0, atol=1e-10 * (1 + float(J.abs().max())))
    assert float(torch.linalg.eigvalsh(J).min()) >= mu - 1e-9
    # the closed-form gradient and Jacobian are those of the energy
    assert_energy_consistent(psi, x, rtol=1e-9, atol=1e-9)
    assert_jacobian_consistent(psi, x, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dim", [2, 5])
def test_true_potential_is_strongly_convex_along_segments(name, dim):
    # Jensen with the mu-strong-convexity margin: psi(t a + (1-t) b) <= t psi(a) + (1-t) psi(b) - mu/2 t(1-t)|a-b|^2
    pair = B.create_pair(name, dim)
    psi = pair.target.psi
    a, b = _points(pair, 200, 4, spread=2.0), _points(pair, 200, 5, spread=2.0)
    t = torch.rand(200, 1, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    with torch.no_grad():
        mid = psi.energy(t * a + (1 - t) * b)
        chord = (t * psi.energy(a).unsqueeze(-1) + (1 - t) * psi.energy(b).unsqueeze(-1)).squeeze(-1)
    t = t.squeeze(-1)
    margin = 0.5 * psi.strong_convexity * t * (1 - t) * (a - b).square().sum(-1)
    assert bool((mid <= chord - margin + 1e-9 * (1 + chord.abs())).all())


@pytest.mark.parametrize("name", FAMILIES)
def test_true_map_is_the_optimal_coupling_of_samples(name):
    pair = B.create_pair(name, 5)
    x = _points(pair, 300, 7)
    y = pair.true_map(x)
    a = np.full(300, 1 / 300)
    plan = ot.emd(a, a, ot.dist(x.numpy(), y.numpy()))
    assert np.array_equal(plan.argmax(1), np.arange(300))


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dim", [2, 5])
def test_sample_target_pushes_the_same_source_draws(name, dim):
    pair = B.create_pair(name, dim)
    y = pair.sample_target(100, torch.Generator().manual_seed(8), dtype=torch.float64)
    x = pair.sample_source(100, torch.Generator().manual_seed(8), dtype=torch.float64)
    torch.testing.assert_close(y, pair.true_map(x), rtol=1e-12, atol=1e-12)
    assert pair.sample_target(3).dtype == torch.float32 and pair.true_map(x.float()).dtype == torch.float32


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dim", [2, 5])
def test_target_variance_matches_an_independent_estimate(name, dim):
    pair = B.create_pair(name, dim)
    y = pair.sample_target(50_000, torch.Generator().manual_seed(9), dtype=torch.float64)
    assert float(y.var(0).sum()) == pytest.approx(pair.target_var, rel=0.03)
    x = pair.sample_source(50_000, torch.Generator().manual_seed(10), dtype=torch.float64)
    assert float(x.var(0).sum()) == pytest.approx(pair.source_var, rel=0.03)


@pytest.mark.parametrize("name", FAMILIES)
def test_construction_is_deterministic_seeded_and_leaves_the_global_rng_alone(name, monkeypatch):
    # the full recipe at a tenth of the Adam steps and 2k variance samples, to keep this test fast
    monkeypatch.setattr(B, "_ICNN_STEPS", 30)
    monkeypatch.setattr(B, "_VAR_SAMPLES", 2000)
    build = _BUILDERS[name].__wrapped__  # bypasses the cache
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = build(2, 0)
    assert torch.equal(torch.get_rng_state(), state)
    again, other = build(2, 0), build(2, 1)
    x = _points(first, 64, 11, spread=2.0)
    assert torch.equal(first.true_map(x), again.true_map(x)) and first.target_var == again.target_var
    assert (other.true_map(x) - first.true_map(x)).abs().max() > 1e-3
    assert not any(p.requires_grad for p in first.target.psi.parameters())


def test_pairs_are_cached_per_dim_and_seed():
    for name in FAMILIES:
        pair = B.create_pair(name, 2, seed=0)
        assert B.create_pair(name, 2, seed=0) is pair and B.create_pair(name, 5, seed=0) is not pair


@pytest.mark.parametrize("name", FAMILIES)
def test_target_log_prob_is_the_change_of_variables(name):
    pair = B.create_pair(name, 2)
    x = _points(pair, 20, 17)
    h = 1e-6  # central differences of the true map: independent of the closed-form Jacobian
    eye = torch.eye(2, dtype=torch.float64)
    J = torch.stack([(pair.true_map(x + h * e) - pair.true_map(x - h * e)) / (2 * h) for e in eye], dim=-1)
    expected = pair.source.log_prob(x) - torch.linalg.slogdet(J)[1]
    torch.testing.assert_close(pair.target.log_prob(pair.true_map(x)), expected, rtol=1e-5, atol=1e-5)


def test_icnn_has_no_certified_lipschitz_bound_and_smoothed_norm_has_one():
    with pytest.raises(NotImplementedError):
        B.create_pair("icnn", 2).target.psi.lipschitz_bound()
    pair = B.create_pair("smoothed_norm", 5)
    psi = pair.target.psi
    x = torch.cat([_points(pair, 200, 12), psi.centres.detach()])  # the centres: where the curvature peaks
    top = float(torch.linalg.eigvalsh(psi.jacobian(x)).max())
    assert top <= float(psi.lipschitz_bound()) * (1 + 1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_pairs_are_registered_and_validate_their_arguments(name):
    assert name in B.list_pairs()
    assert B.create_pair(name, 2).name == name
    fn = getattr(B, f"{name}_pair")
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="dim"):
            fn(bad)
    with pytest.raises(ValueError, match="seed"):
        fn(2, seed=-1)
    with pytest.raises(ValueError, match="dim"):
        B.create_pair(name, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_full_construction_is_deterministic(name):
    fresh = _BUILDERS[name].__wrapped__(2, 0)
    cached = B.create_pair(name, 2, seed=0)
    x = _points(cached, 256, 18, spread=2.0)
    assert torch.equal(fresh.true_map(x), cached.true_map(x)) and fresh.target_var == cached.target_var


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_d64_construction_time_inverse_and_linear_baseline_difficulty(name):
    start = time.process_time()
    pair = _BUILDERS[name].__wrapped__(64, 0)
    assert time.process_time() - start < 60  # CPU s: ~6 (icnn); wall time varies with the machine's load
    y = pair.sample_target(256, torch.Generator().manual_seed(13), dtype=torch.float64)
    torch.testing.assert_close(pair.true_map(pair.true_inverse(y)), y, rtol=1e-9, atol=1e-9)
    x = pair.sample_source(20_000, torch.Generator().manual_seed(14), dtype=torch.float64)
    y = pair.sample_target(20_000, torch.Generator().manual_seed(15), dtype=torch.float64)
    x_test = pair.sample_source(20_000, torch.Generator().manual_seed(16), dtype=torch.float64)
    uvp = l2_uvp(bures_map(x, y), pair.true_map, x_test, pair.target_var)
    assert 10 < uvp < 70  # the linear map is clearly not the answer, yet not useless
