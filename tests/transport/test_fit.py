import numpy as np
import ot
import pytest
import torch

from gradflow.potentials import MGradNetC
from gradflow.testing import assert_inverse, assert_monotone
from gradflow.transport import BrenierNet, MongeAmpere, OTMap, PlanRegression, bures_map, fit_ot_map, l2_uvp, w2
from gradflow.transport.benchmarks import create_pair

FAST = {"progress": False, "device": "cpu"}


@pytest.fixture(scope="module")
def gaussian2():
    pair = create_pair("gaussian", 2, seed=0)
    g = torch.Generator().manual_seed(0)
    return pair, pair.sample_source(4000, g), pair.sample_target(4000, g), pair.sample_source(4000, g)


@pytest.mark.parametrize("method, steps", [("dual", 150), ("plan", 40), ("monge_ampere", 150)])
def test_gaussian_to_gaussian_recovers_closed_form(gaussian2, method, steps):
    pair, x, y, x_test = gaussian2
    source, target = (pair.source, pair.target) if method == "monge_ampere" else (x, y)
    T = fit_ot_map(source, target, method=method, steps=steps, seed=0, **FAST)
    assert T.method == method and (T.steps == steps or T.stop_reason == "early_stopping")
    with torch.no_grad():
        assert l2_uvp(T, pair.true_map, x_test, pair.target_var) < 1.0


def test_dual_learns_the_gaussian_map_from_scratch(gaussian2):
    # no Bures start: the network itself must learn the map
    pair, x, y, x_test = gaussian2
    identity = l2_uvp(lambda z: z, pair.true_map, x_test, pair.target_var)
    T = fit_ot_map(x, y, method="dual", init="none", steps=250, batch_size=256, scheduler=None, seed=0, **FAST)
    with torch.no_grad():
        assert l2_uvp(T, pair.true_map, x_test, pair.target_var) < min(1.0, identity / 500)


@pytest.mark.slow
def test_dual_beats_the_linear_map_on_the_mixture_pair():
    pair = create_pair("mixture", 2, seed=0)
    g = torch.Generator().manual_seed(0)
    x, y, x_test = pair.sample_source(4000, g), pair.sample_target(4000, g), pair.sample_source(4000, g)
    linear = l2_uvp(bures_map(x, y), pair.true_map, x_test, pair.target_var)
    T = fit_ot_map(x, y, method="dual", steps=200, seed=0, **FAST)
    with torch.no_grad():
        fitted = l2_uvp(T, pair.true_map, x_test, pair.target_var)
    assert fitted < 0.5 * linear, (fitted, linear)


def test_agrees_with_pot_exact_plan_on_a_tiny_problem():
    pair = create_pair("mixture", 2, seed=2)
    g = torch.Generator().manual_seed(1)
    n = 60
    x = pair.sample_source(n, g, dtype=torch.float64)
    y = pair.sample_target(n, g, dtype=torch.float64)
    a = np.full(n, 1.0 / n)
    plan = ot.emd(a, a, ot.dist(x.numpy(), y.numpy()))
    matched = y[torch.from_numpy(plan.argmax(1))]
    # batch_size = n: every step regresses on POT's exact plan for the whole problem
    T = fit_ot_map(x, y, method="plan", batch_size=n, steps=300, seed=0, **FAST)
    with torch.no_grad():
        relative_error = float((T(x) - matched).square().sum(-1).mean() / y.var(0).sum())
    assert relative_error < 0.02, relative_error
    assert T.transport_cost(x) == pytest.approx(w2(x, y, squared=True), rel=0.03)


@pytest.fixture(scope="module")
def fitted_map(gaussian2):
    _, x, y, _ = gaussian2
    return fit_ot_map(x.double(), y.double(), method="plan", batch_size=256, steps=30, seed=0, **FAST)


def test_fitted_map_is_monotone_invertible_and_interpolates(fitted_map, gaussian2):
    T = fitted_map
    x = gaussian2[1][:64].double()
    assert_monotone(T.model, x)  # symmetric PSD Jacobian by construction
    J = T.model.jacobian(x).detach()
    assert float(torch.linalg.eigvalsh(J).min()) >= T.model.strong_convexity * (1 - 1e-9)
    with torch.no_grad():
        y = T(x)
        assert_inverse(T.model, y)
        torch.testing.assert_close(T.inverse(y), x, rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(T.interpolate(x, 0.0), x)
        torch.testing.assert_close(T.interpolate(x, 1.0), y)
        t = torch.rand(64, dtype=torch.float64)
        torch.testing.assert_close(T.interpolate(x, t), x + t[:, None] * (y - x))
        assert T.potential(x).shape == (64,)
        assert T.transport_cost(x) == pytest.approx(float((y - x).square().sum(-1).mean()))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        T.interpolate(x, 1.5)


def test_save_and_load_round_trip(fitted_map, gaussian2, tmp_path):
    x = gaussian2[1][:16].double()
    fitted_map.save(tmp_path / "map.pt")
    torch.load(tmp_path / "map.pt", weights_only=True)  # plain tensors and containers only
    loaded = OTMap.load(tmp_path / "map.pt")
    assert loaded.method == "plan" and loaded.steps == fitted_map.steps
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), fitted_map(x))


def test_malformed_map_files_raise_checkpoint_errors(fitted_map, tmp_path):
    from gradflow.train import CheckpointError, save_checkpoint

    save_checkpoint(tmp_path / "partial.pt", format="gradflow.transport.OTMap/1", spec=None)
    with pytest.raises(CheckpointError, match="lacks dtype"):
        OTMap.load(tmp_path / "partial.pt")
    fitted_map.save(tmp_path / "map.pt")
    with pytest.raises(CheckpointError, match="does not hold weights for this network"):
        OTMap.load(tmp_path / "map.pt", model=BrenierNet(2, MGradNetC(2, width=8, depth=1)))
    with pytest.raises(ValueError, match="model must be a MonotonePotential"):
        OTMap.load(tmp_path / "map.pt", model="x")


def test_transport_cost_is_chunked(fitted_map, gaussian2, monkeypatch):
    import gradflow.transport._map as map_module

    x = gaussian2[1].double()
    full = fitted_map.transport_cost(x)
    monkeypatch.setattr(map_module, "_EVAL_CHUNK", 300)
    assert fitted_map.transport_cost(x) == pytest.approx(full, rel=1e-12)
    with pytest.raises(ValueError, match="dtype"):
        fitted_map.transport_cost(x.float())


def test_user_network_needs_a_template_to_load(tmp_path, gaussian2):
    _, x, y, _ = gaussian2
    net = BrenierNet(2, MGradNetC(2, width=8, depth=1), strong_convexity=0.01)
    T = fit_ot_map(x, y, potential=net, method="dual", steps=5, **FAST)
    T.save(tmp_path / "map.pt")
    with pytest.raises(ValueError, match="model="):
        OTMap.load(tmp_path / "map.pt")
    template = BrenierNet(2, MGradNetC(2, width=8, depth=1), strong_convexity=0.01)
    with torch.no_grad():
        torch.testing.assert_close(OTMap.load(tmp_path / "map.pt", model=template)(x), T(x))


def test_accepts_samplers_and_distributions():
    pair = create_pair("gaussian", 2)
    T = fit_ot_map(lambda n: pair.sample_source(n), lambda n: pair.sample_target(n), method="plan", steps=3,
                   **FAST)
    assert T.method == "plan"
    assert fit_ot_map(pair.source, pair.target, steps=2, **FAST).method == "dual"  # auto
    assert fit_ot_map(pair.source, pair.sample_target(100), steps=2, **FAST).method == "dual"
    assert fit_ot_map(pair.sample_source(100), pair.sample_target(100), steps=2, **FAST).method == "plan"


_X = torch.randn(50, 2)


@pytest.mark.parametrize(
    "source, target, kwargs, match",
    [
        (_X, torch.randn(50, 3), {}, "same dimension"),
        (_X[:2], _X, {}, "at least d \\+ 1"),
        (_X.clone().index_fill_(0, torch.tensor([3]), float("nan")), _X, {}, "NaN"),
        (_X.long(), _X, {}, "float32 or float64"),
        (_X.half(), _X, {"method": "plan"}, "float32 or float64"),
        (_X[0], _X, {}, r"\(N, d\)"),
        ("samples.npy", _X, {}, "torch.distributions"),
        (lambda n: torch.randn(n + 1, 2), _X, {}, "must return a tensor of shape"),
        (_X, _X, {"method": "sinkhorn"}, "valid: auto, dual, monge_ampere, plan"),
        (_X, _X, {"method": "monge_ampere"}, "log-densities"),
        (_X, _X, {"method": MongeAmpere()}, "log-densities"),
        (_X, _X, {"method": torch.nn.Linear(2, 2)}, "TransportMethod"),
        (_X, _X, {"method": "dual", "plan": "exact"}, "unknown option"),
        (_X, _X, {"method": "plan", "reg": 0.1}, "arguments of SemiDual"),
        (_X, _X, {"potential": "mlp_field"}, "valid: brenier"),
        (_X, _X, {"potential": MGradNetC(3)}, "R\\^3"),
        (_X, _X, {"potential": torch.nn.Linear(2, 2)}, "MonotonePotential"),
        (_X, _X, {"steps": 0}, "steps"),
        (_X, _X, {"batch_size": 1}, "batch_size"),
        (_X, _X, {"dtype": torch.int32}, "dtype"),
        (_X, _X, {"init": "random"}, "valid: bures, none"),
        (_X, _X, {"seed": None}, "seed"),
        (_X, _X, {"seed": -1}, "seed"),
        (_X, _X, {"seed": 2**70}, "seed"),
    ],
)
def test_bad_inputs_raise(source, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_ot_map(source, target, **FAST, **kwargs)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: PlanRegression(plan="sliced"), "valid: entropic, exact"),
        (lambda: PlanRegression(reg=-1.0), "reg"),
        (lambda: PlanRegression(reg=True), "reg"),
    ],
)
def test_bad_method_settings_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_method_object_is_reusable_across_dimensions():
    from gradflow.transport import SemiDual

    method = SemiDual()  # each fit binds a copy: the object keeps no state of a fit
    for d in (2, 20):
        x = torch.randn(64, d)
        T = fit_ot_map(x, x + 1, method=method, steps=1, val_fraction=0, **FAST)
        assert T.method == "dual" and T.inverse_net is not None and T.inverse_net.dim == d
    assert not hasattr(method, "source")


def test_whole_data_plan_is_solved_once_and_regressed_on_in_minibatches(monkeypatch):
    import ot as pot

    calls, emd = [], pot.emd

    def counting_emd(a, b, M, **kwargs):
        calls.append(M.shape)
        return emd(a, b, M, **kwargs)

    monkeypatch.setattr(pot, "emd", counting_emd)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=g, dtype=torch.float64)
    y = 2 * x.flip(0) + 1  # the optimal map is x -> 2 x + 1
    T = fit_ot_map(x, y, steps=200, batch_size=64, seed=0, **FAST)  # auto: small tensors
    assert T.method == "plan" and calls == [(300, 300)]
    with torch.no_grad():
        assert float((T(x) - (2 * x + 1)).square().sum(-1).mean() / y.var(0).sum()) < 0.01
    with pytest.raises(ValueError, match="needs sample tensors"):
        fit_ot_map(lambda n: torch.randn(n, 2), y, method=PlanRegression(whole_data=True), steps=1, **FAST)


def test_the_default_network_is_recorded_and_old_specs_still_build(tmp_path):
    from gradflow.transport import DEFAULT_MODULES
    from gradflow.transport._map import build_potential

    x = torch.randn(200, 3)
    T = fit_ot_map(x, x + 1, method="dual", steps=1, **FAST)
    assert T.spec["n_modules"] == DEFAULT_MODULES == T.model.net.n_modules
    T.save(tmp_path / "map.pt")
    assert OTMap.load(tmp_path / "map.pt").model.net.n_modules == DEFAULT_MODULES
    old = build_potential({"name": "brenier", "dim": 3, "net": "mgradnet_m", "strong_convexity": 1e-3})
    assert old.net.n_modules == 4  # maps saved before the count was recorded


def test_fitting_leaves_the_callers_random_generators_alone():
    import random

    pair = create_pair("gaussian", 2, seed=0)
    g = torch.Generator().manual_seed(0)
    x, y = pair.sample_source(200, g), pair.sample_target(200, g)

    def draws():
        return torch.rand(3), np.random.rand(3), random.random()  # noqa: NPY002 (the global state is the subject)

    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # noqa: NPY002
    expected = draws()
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # noqa: NPY002
    fit_ot_map(pair.sample_source, pair.sample_target, steps=3, seed=7, **FAST)  # samplers use the global RNG
    fit_ot_map(x, y, method="dual", steps=3, seed=7, **FAST)
    after = draws()
    torch.testing.assert_close(after[0], expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(after[1], expected[1])
    assert after[2] == expected[2]
