"""Held-out validation of fit_ot_map on sample tensors: split, early stopping, best weights, options."""

import math

import pytest
import torch

from gradflow.transport import OTMap, bures_map, fit_ot_map, l2_uvp
from gradflow.transport._fit import _held_out, _HeldOutSelection, _Law
from gradflow.transport.benchmarks import create_pair

FAST = {"progress": False, "device": "cpu"}


def _samples(name: str, dim: int, n: int, dtype=torch.float32):
    pair = create_pair(name, dim, seed=0)
    g = torch.Generator().manual_seed(n)
    return pair, pair.sample_source(n, g, dtype=dtype), pair.sample_target(n, g, dtype=dtype)


def test_held_out_semi_dual_stops_an_overfitting_fit_in_d32():
    # 256 samples per side in d = 32 (the benchmark's setting): without held-out samples the semi-dual
    # overfits the empirical measures within ~100 steps, ending above the linear map (and at 7.9e6 % after
    # 2000 steps, benchmarks/results/transport_samples.md); with them the best weights stay near it or below.
    pair, x, y = _samples("mixture", 32, 256)
    x_test = pair.sample_source(4096, torch.Generator().manual_seed(1))
    linear = l2_uvp(bures_map(x, y), pair.true_map, x_test, pair.target_var)
    T = fit_ot_map(x, y, method="dual", steps=150, batch_size=256, eval_every=10, early_stopping=5, seed=0, **FAST)
    with torch.no_grad():
        fitted = l2_uvp(T, pair.true_map, x_test, pair.target_var)
    assert math.isfinite(fitted) and fitted < 1.1 * linear, (fitted, linear)
    assert T.stop_reason == "early_stopping" and T.best_step < T.steps
    assert [h["step"] for h in T.history if "val_loss" in h] == list(range(10, T.steps + 1, 10))


def test_the_selected_weights_are_restored():
    _, x, y = _samples("mixture", 2, 40, torch.float64)
    states = {}

    def record(info):
        if info["val_loss"] is not None:
            psi = info["model"].psi  # the default conjugate is amortised: psi trains beside its network
            states[info["step"]] = {k: v.detach().clone() for k, v in psi.state_dict().items()}

    T = fit_ot_map(x, y, method="dual", steps=60, eval_every=5, lr=0.1, early_stopping=None, seed=0,
                   callbacks=[record], **FAST)
    assert T.stop_reason == "completed" and T.steps == 60
    assert 0 < T.best_step < 60  # the last weights were not kept: restoring matters
    assert T.best_val_loss == next(h["val_loss"] for h in T.history if h["step"] == T.best_step)
    for name, value in T.model.state_dict().items():
        torch.testing.assert_close(value, states[T.best_step][name], rtol=0, atol=0)


def test_the_initial_map_is_kept_when_no_step_improves_it():
    # 32 training samples in d = 8 and a large lr: every step worsens the held-out objective of the Bures start
    _, x, y = _samples("gaussian", 8, 40, torch.float64)
    torch.manual_seed(0)  # the same initial network for both fits
    T = fit_ot_map(x, y, method="dual", steps=20, eval_every=5, lr=0.3, seed=0, **FAST)
    assert T.best_step == 0 and T.steps == 20
    assert T.best_val_loss < min(h["val_loss"] for h in T.history if "val_loss" in h)
    torch.manual_seed(0)
    initial = fit_ot_map(x, y, method="dual", steps=1, lr=1e-12, seed=0, **FAST)  # one vanishing step
    with torch.no_grad():
        torch.testing.assert_close(T(x), initial(x), rtol=1e-9, atol=1e-9)


def test_one_standard_error_rule_keeps_the_latest_indistinguishable_weights():
    selection = _HeldOutSelection(lambda model, batch: batch)
    model = torch.nn.Linear(1, 1)
    noise = torch.randn(100, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    best = torch.zeros(100, dtype=torch.float64)
    # J_t - J_best and its paired standard error sd(a_t - a_best) / 10 (no target terms here)
    for step, terms in [(0, best + 5.0), (10, best), (20, best + 0.05 + noise), (30, best + 0.5 + 0.1 * noise),
                        (40, best + float("nan"))]:
        selection.loss(model, (terms, torch.zeros(0)))
        selection.record(step, model)
    assert selection.select()[:2] == (20, pytest.approx(0.05 + float(noise.mean())))  # 0.04 <= SE 0.1
    selection.loss(model, (best + 0.005 * noise - 0.001, torch.zeros(0)))  # lowest, and SE 5e-4 < its margin
    selection.record(50, model)
    assert selection.select()[0] == 50
    selection.loss(model, (best + 0.01, torch.zeros(0)))  # ~0.011 above the lowest, SE 5e-4: a significant loss
    selection.record(60, model)
    assert selection.select()[0] == 50


def test_split_is_a_seeded_partition_of_the_rows():
    x, y = torch.randn(100, 3, dtype=torch.float64), torch.randn(30_000, 3, dtype=torch.float64)
    laws = [_Law(x, "source", None), _Law(y, "target", None)]
    x_val, y_val = _held_out(*laws, 0.25, seed=3, method="dual")
    assert x_val.shape == (25, 3) and y_val.shape == (2048, 3)  # 25% of the rows, at most 2048
    assert laws[0].samples.shape == (75, 3) and laws[1].samples.shape == (30_000 - 2048, 3)
    rows = torch.cat([x_val, laws[0].samples])
    torch.testing.assert_close(rows[rows[:, 0].argsort()], x[x[:, 0].argsort()], rtol=0, atol=0)
    again = _held_out(_Law(x, "source", None), _Law(y, "target", None), 0.25, seed=3, method="dual")
    torch.testing.assert_close(again[0], x_val, rtol=0, atol=0)
    other = _held_out(_Law(x, "source", None), _Law(y, "target", None), 0.25, seed=4, method="dual")
    assert not torch.equal(other[0], x_val)
    assert _held_out(_Law(x, "source", None), _Law(y, "target", None), 0, seed=3, method="dual") is None


def test_samplers_and_distributions_are_not_validated():
    pair = create_pair("gaussian", 2, seed=0)
    T = fit_ot_map(pair.source, pair.target, method="dual", steps=4, eval_every=2, **FAST)
    assert T.best_step is None and T.best_val_loss is None and T.stop_reason == "completed"
    assert not any("val_loss" in h for h in T.history)
    T = fit_ot_map(lambda n: pair.sample_source(n), lambda n: pair.sample_target(n), method="plan", steps=3, **FAST)
    assert T.best_step is None
    torch.manual_seed(0)
    unset = fit_ot_map(pair.source, pair.target, method="dual", steps=4, **FAST)
    torch.manual_seed(0)
    disabled = fit_ot_map(pair.source, pair.target, method="dual", steps=4, val_fraction=0, **FAST)
    z = pair.source.sample((8,)).float()
    with torch.no_grad():
        torch.testing.assert_close(unset(z), disabled(z), rtol=0, atol=0)


def test_a_tensor_facing_a_distribution_is_validated():
    # the tensor's rows are held out; the distribution gives a fixed draw of as many points
    pair = create_pair("gaussian", 2, seed=0)
    T = fit_ot_map(pair.sample_source(100), pair.target, method="dual", steps=4, eval_every=2, **FAST)
    assert T.best_step is not None and [h["step"] for h in T.history if "val_loss" in h] == [2, 4]


def test_plan_regression_is_validated_only_on_request(tmp_path):
    # plan targets are averages of target samples, so the plan fit cannot run off; no held-out rows by default
    _, x, y = _samples("gaussian", 2, 200)
    assert fit_ot_map(x, y, method="plan", steps=2, **FAST).best_step is None
    T = fit_ot_map(x, y, method="plan", steps=6, eval_every=3, val_fraction=0.2, seed=0, **FAST)
    assert T.best_step in (0, 3, 6) and math.isfinite(T.best_val_loss)
    T.save(tmp_path / "map.pt")
    loaded = OTMap.load(tmp_path / "map.pt")
    assert (loaded.best_step, loaded.best_val_loss) == (T.best_step, T.best_val_loss)


_X, _Y = torch.randn(50, 2), torch.randn(50, 2)


@pytest.mark.parametrize(
    "source, target, kwargs, match",
    [
        (_X, _Y, {"val_fraction": -0.1}, r"val_fraction must be a number in \[0, 1\)"),
        (_X, _Y, {"val_fraction": 1.0}, r"val_fraction must be a number in \[0, 1\)"),
        (_X, _Y, {"val_fraction": "0.2"}, "val_fraction must be a number"),
        (_X, _Y, {"val_fraction": True}, "val_fraction must be a number"),
        (_X, _Y, {"val_fraction": 0.95}, r"leaves 2 of the 50 source samples .* d \+ 1 = 3"),
        (_X, _Y, {"val_fraction": 0, "early_stopping": 3}, "early_stopping needs held-out samples"),
        (_X, _Y, {"early_stopping": 0}, "early_stopping must be an integer >= 1"),
        (_X, _Y, {"val_data": (_X, _Y)}, "unknown option"),
    ],
)
def test_bad_validation_options_raise(source, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_ot_map(source, target, method="dual", steps=1, **FAST, **kwargs)


def test_val_fraction_needs_a_sample_tensor():
    pair = create_pair("gaussian", 2, seed=0)
    with pytest.raises(ValueError, match="val_fraction applies to sample tensors"):
        fit_ot_map(pair.source, pair.target, val_fraction=0.2, steps=1, **FAST)
    with pytest.raises(ValueError, match="early_stopping needs held-out samples"):
        fit_ot_map(pair.source, pair.target, early_stopping=3, steps=1, **FAST)
