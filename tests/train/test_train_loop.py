"""fit: data kinds, optimisation, schedules, validation, early stopping, limits and argument checks."""

import json
import math
import os
import random
import time
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from gradflow.train import FitResult, TrainingError, fit, resolve_device, seed_everything

QUIET = {"progress": False, "device": "cpu"}


def test_fit_learns_linear_regression(regression, mse_loss):
    x, y, w_true = regression
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).double()
    initial = mse_loss(model, (x, y)).item()
    result = fit(model, mse_loss, (x, y), steps=400, batch_size=16, lr=0.05, **QUIET)
    assert isinstance(result, FitResult) and result.stop_reason == "completed" and result.steps == 400
    assert mse_loss(model, (x, y)).item() < 1e-4 * initial
    torch.testing.assert_close(model.weight.detach().T, w_true, atol=1e-2, rtol=0)
    assert result.best_step is None and result.best_val_loss is None  # no validation data
    assert [h["step"] for h in result.history] == list(range(1, 401))  # log_every defaults to 1 here


def test_tensor_tuple_and_dataset_see_the_same_batches(regression, mlp_factory, mse_loss, snapshot):
    x, y, _ = regression
    runs = []
    for data in ((x, y), TensorDataset(x, y)):
        model = mlp_factory()
        fit(model, mse_loss, data, epochs=3, batch_size=10, **QUIET)  # 64 = 6 * 10 + 4: partial batch
        runs.append(snapshot(model))
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key]), key


def test_single_tensor_data_yields_a_tensor_and_epochs_count_batches():
    data = torch.randn(20, 2)
    seen = []

    def loss(model, batch):
        seen.append(batch)
        return model(batch).pow(2).mean()

    result = fit(torch.nn.Linear(2, 1), loss, data, epochs=2, batch_size=8, **QUIET)
    assert all(isinstance(b, torch.Tensor) for b in seen)
    assert [len(b) for b in seen] == [8, 8, 4, 8, 8, 4] and result.steps == 6
    assert [h["epoch"] for h in result.history] == [0, 0, 0, 1, 1, 1]
    first_epoch = torch.cat(seen[:3])
    assert torch.equal(first_epoch.sort(0).values, data.sort(0).values)  # a permutation of the rows
    assert not torch.equal(torch.cat(seen[3:]), first_epoch)  # reshuffled


def test_caller_tensors_are_not_mutated(regression):
    x, y, _ = regression
    x_before, y_before = x.clone(), y.clone()

    def input_grad_loss(model, batch):  # HNN-style: turns its input into a leaf that requires grad
        inputs = batch[0].requires_grad_(True)
        out = model(inputs)
        (grad,) = torch.autograd.grad(out.sum(), inputs, create_graph=True)
        return (grad**2).mean() + ((out - batch[1]) ** 2).mean()

    fit(torch.nn.Linear(3, 1).double(), input_grad_loss, (x, y), steps=3, batch_size=64, **QUIET)
    assert not x.requires_grad and torch.equal(x, x_before) and torch.equal(y, y_before)


def test_sampler_data_gets_a_seeded_generator_and_learns():
    calls = []

    def sample(generator):
        assert isinstance(generator, torch.Generator)
        x = torch.randn(32, 1, generator=generator)
        calls.append(x)
        return x, 4.0 * x

    mse = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()  # noqa: E731
    torch.manual_seed(0)  # the initial weight; fit leaves the global RNG as it found it
    model = torch.nn.Linear(1, 1, bias=False)
    fit(model, mse, sample, steps=200, lr=0.05, **QUIET)
    assert len(calls) == 200 and not torch.equal(calls[0], calls[1])
    assert abs(model.weight.item() - 4.0) < 0.05
    first = calls[:]
    calls.clear()
    fit(torch.nn.Linear(1, 1, bias=False), mse, sample, steps=200, lr=0.05, **QUIET)
    assert all(torch.equal(a, b) for a, b in zip(first, calls, strict=True))  # reproducible stream


def test_validation_loss_is_mean_over_val_batches(regression, mse_loss):
    x, y, _ = regression
    model = torch.nn.Linear(3, 1).double()
    result = fit(model, mse_loss, (x, y), val_data=(x, y), steps=1, batch_size=16, lr=1e-12, **QUIET)
    expected = sum(mse_loss(model, (x[i : i + 16], y[i : i + 16])).item() for i in range(0, 64, 16)) / 4
    assert result.history[-1]["val_loss"] == pytest.approx(expected, rel=1e-9)
    assert result.best_val_loss == pytest.approx(expected, rel=1e-9) and result.best_step == 1


def test_val_grad_allows_input_gradients_in_evaluation(regression):
    x, y, _ = regression

    def input_grad_loss(model, batch):
        inputs = batch[0].detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(inputs).sum(), inputs, create_graph=True)
        return (grad**2).mean()

    model = torch.nn.Linear(3, 1).double()
    with pytest.raises(RuntimeError, match="does not require grad"):
        fit(model, input_grad_loss, (x, y), val_data=(x, y), steps=2, **QUIET)
    result = fit(model, input_grad_loss, (x, y), val_data=(x, y), val_grad=True, steps=2, **QUIET)
    assert math.isfinite(result.best_val_loss)


def test_early_stopping_restores_the_best_evaluated_weights():
    """Training pulls w to 10 while the validation loss is minimal at w = 3: it must stop, keep w ~ 3."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    weights_at = {}
    result = fit(
        model,
        lambda m, b: ((m.weight - 10.0) ** 2).sum(),
        torch.zeros(4, 1),
        val_data=torch.zeros(4, 1),
        val_loss=lambda m, b: ((m.weight - 3.0) ** 2).sum(),
        steps=500,
        optimizer="sgd",
        lr=0.01,
        eval_every=5,
        early_stopping=3,
        callbacks=[lambda s: weights_at.__setitem__(s["step"], s["model"].weight.item())],
        **QUIET,
    )
    assert result.stop_reason == "early_stopping" and result.steps < 500
    evals = [h for h in result.history if "val_loss" in h]
    best = min(evals, key=lambda h: h["val_loss"])
    assert result.best_step == best["step"] and result.best_val_loss == best["val_loss"]
    assert [h["step"] for h in evals][-1] == result.best_step + 3 * 5  # exactly `patience` evals without gain
    assert model.weight.item() == weights_at[result.best_step]
    assert abs(model.weight.item() - 3.0) < 0.5


def test_max_time_stops_cleanly_and_evaluates_once_more(regression, mse_loss):
    x, y, _ = regression

    def slow_loss(model, batch):
        time.sleep(0.01)
        return mse_loss(model, batch)

    start = time.monotonic()
    result = fit(
        torch.nn.Linear(3, 1).double(),
        slow_loss,
        (x, y),
        val_data=(x, y),
        steps=10**6,
        eval_every=10**5,
        max_time=0.3,
        **QUIET,
    )
    assert time.monotonic() - start < 5
    assert result.stop_reason == "max_time" and 1 <= result.steps < 200
    assert result.history[-1]["step"] == result.steps and "val_loss" in result.history[-1]
    assert result.best_step == result.steps


def test_grad_clip_bounds_the_update():
    x = torch.full((8, 4), 100.0)

    def step_size(grad_clip):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        fit(model, lambda m, b: m(b).pow(2).mean(), x, steps=1, optimizer="sgd", lr=1.0, grad_clip=grad_clip, **QUIET)
        return (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm().item()

    assert step_size(None) > 10.0
    assert step_size(0.1) == pytest.approx(0.1, rel=1e-4)


@pytest.mark.parametrize("name", ["cosine", "step"])
def test_named_schedulers_follow_their_formula(name, regression, mse_loss):
    x, y, _ = regression
    result = fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=30, lr=0.1, scheduler=name, **QUIET)
    lrs = [h["lr"] for h in result.history]  # lr after each step t = 1..30
    for t, lr in enumerate(lrs, start=1):
        expected = 0.05 * (1 + math.cos(math.pi * t / 30)) if name == "cosine" else 0.1 * 0.1 ** (t // 10)
        assert lr == pytest.approx(expected, abs=1e-12), t


def test_plateau_scheduler_reduces_lr_when_validation_stalls(regression, mse_loss):
    x, y, _ = regression
    result = fit(
        torch.nn.Linear(3, 1).double(),
        mse_loss,
        (x, y),
        val_data=(x, y),
        val_loss=lambda m, b: torch.tensor(1.0),
        steps=6,
        eval_every=1,
        lr=0.1,
        scheduler=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5),
        **QUIET,
    )
    assert [h["lr"] for h in result.history] == pytest.approx([0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125])


def test_history_file_is_json_lines_matching_the_result(tmp_path, regression, mse_loss):
    x, y, _ = regression
    path = tmp_path / "logs" / "history.jsonl"
    result = fit(
        torch.nn.Linear(3, 1).double(),
        mse_loss,
        (x, y),
        val_data=(x, y),
        steps=20,
        eval_every=5,
        log_every=2,
        history_path=path,
        **QUIET,
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == result.history  # entries at log steps and at evaluations
    assert [e["step"] for e in lines] == sorted(set(range(2, 21, 2)) | {5, 15})
    assert [e["step"] for e in lines if "val_loss" in e] == [5, 10, 15, 20]
    assert all({"step", "epoch", "loss", "lr", "time"} <= set(e) for e in lines)


def test_history_loss_is_mean_since_previous_entry(regression, mse_loss):
    x, y, _ = regression
    losses = []
    result = fit(
        torch.nn.Linear(3, 1).double(),
        mse_loss,
        (x, y),
        steps=6,
        log_every=3,
        batch_size=8,
        callbacks=[lambda s: losses.append(s["loss"])],
        **QUIET,
    )
    assert [h["loss"] for h in result.history] == pytest.approx([sum(losses[:3]) / 3, sum(losses[3:]) / 3])


def test_callbacks_see_every_step(regression, mse_loss):
    x, y, _ = regression
    states = []
    fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=5, callbacks=[states.append], **QUIET)
    assert [s["step"] for s in states] == [1, 2, 3, 4, 5]
    assert {"step", "epoch", "loss", "val_loss", "lr", "model", "optimizer", "rank", "world_size"} <= set(states[0])


def test_non_scalar_loss_fails_at_the_first_step(regression):
    x, y, _ = regression
    with pytest.raises(TrainingError, match=r"0-dim tensor, got shape \(64, 1\) at step 1"):
        fit(torch.nn.Linear(3, 1).double(), lambda m, b: (m(b[0]) - b[1]) ** 2, (x, y), steps=5, **QUIET)


def test_loss_that_ignores_the_model_is_reported(regression):
    x, y, _ = regression
    with pytest.raises(TrainingError, match="does not require grad"):
        fit(torch.nn.Linear(3, 1).double(), lambda m, b: b[1].mean(), (x, y), steps=2, **QUIET)


def test_amp_on_cpu_warns_and_trains_in_full_precision(regression, mse_loss):
    x, y, _ = regression
    model = torch.nn.Linear(3, 1).double()
    with pytest.warns(RuntimeWarning, match="amp=True needs a CUDA device"):
        fit(model, mse_loss, (x, y), steps=50, lr=0.05, amp=True, **QUIET)
    assert model.weight.dtype == torch.float64 and mse_loss(model, (x, y)).item() < 1.0


def test_deterministic_mode_is_restored_after_fit(regression, mse_loss):
    x, y, _ = regression
    assert not torch.are_deterministic_algorithms_enabled()
    seen = []
    fit(
        torch.nn.Linear(3, 1).double(),
        mse_loss,
        (x, y),
        steps=2,
        deterministic=True,
        callbacks=[lambda s: seen.append(torch.are_deterministic_algorithms_enabled())],
        **QUIET,
    )
    assert seen == [True, True] and not torch.are_deterministic_algorithms_enabled()


def test_seed_everything_makes_all_global_rngs_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:1")


def _sampler(generator):
    return torch.randn(4, 3, generator=generator)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 5, "epochs": 1}, "exactly one of steps and epochs"),
        ({}, "exactly one of steps and epochs"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"steps": 5, "batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"steps": 5, "optimizer": "adamx"}, "unknown optimizer 'adamx'; valid: adam, adamw, sgd"),
        ({"steps": 5, "scheduler": "linear"}, "unknown scheduler 'linear'; valid: cosine, plateau, step"),
        ({"steps": 5, "scheduler": "plateau"}, "needs val_data"),
        ({"steps": 5, "early_stopping": 2}, "early_stopping needs val_data"),
        ({"steps": 5, "resume": True}, "resume=True needs checkpoint_dir"),
        ({"steps": 5, "lr": -1.0}, "lr must be a finite number > 0"),
        ({"steps": 5, "grad_clip": 0}, "grad_clip must be a finite number > 0"),
        ({"steps": 5, "progress_interval": 0}, "progress_interval must be a finite number > 0"),
        ({"steps": 5, "data": torch.zeros(0, 3)}, "empty"),
        ({"steps": 5, "data": (torch.zeros(4, 3), torch.zeros(5))}, r"share their first dimension, got sizes \[4, 5\]"),
        ({"steps": 5, "data": {"x": 1}}, "must be a tensor, a tuple/list of tensors"),
        ({"epochs": 1, "data": _sampler}, "epochs needs finite data"),
        ({"steps": 1, "data": _sampler, "batch_size": 4}, "batch_size does not apply to a sampler"),
        ({"steps": 1, "device": "nope"}, "unknown device"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    kwargs = {"data": torch.randn(8, 3), "progress": False, **kwargs}
    data = kwargs.pop("data")
    model = torch.nn.Linear(3, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            fit(model, lambda m, b: m(b).mean(), data, **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _global_draws():
    return random.random(), np.random.rand(), torch.rand(1).item()  # noqa: NPY002


def _noisy_mse(model, batch):
    """MSE plus noise from the three global RNGs, which fit seeds."""
    x, y = batch
    return ((model(x) - y) ** 2).mean() + 0.01 * (torch.rand(()) + np.random.rand() + random.random())  # noqa: NPY002


def test_fit_leaves_the_callers_global_rngs_as_it_found_them(regression, mse_loss, snapshot):
    x, y, _ = regression
    seed_everything(7)
    expected = _global_draws()  # what the caller draws when no fit runs in between
    trained = []
    for caller_seed in (7, 8):
        model = torch.nn.Linear(3, 1).double()
        torch.nn.init.zeros_(model.weight), torch.nn.init.zeros_(model.bias)
        seed_everything(caller_seed)
        fit(model, _noisy_mse, (x, y), steps=5, batch_size=16, **QUIET)
        trained.append(snapshot(model))
        if caller_seed == 7:
            assert _global_draws() == expected
    assert all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0])  # the run depends on seed only

    def loss_nan_at_step_3(model, batch, calls=[]):  # noqa: B006 (counts calls)
        calls.append(1)
        return _noisy_mse(model, batch) * (float("nan") if len(calls) == 3 else 1.0)

    model = torch.nn.Linear(3, 1).double()
    seed_everything(7)
    with pytest.raises(TrainingError, match="loss is nan at step 3"):
        fit(model, loss_nan_at_step_3, (x, y), steps=5, **QUIET)
    assert _global_draws() == expected  # also when fit raises


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ({"checkpoint_dir": "a_file"}, r"checkpoint_dir \S+a_file exists and is a file; .* must be a directory"),
        ({"checkpoint_dir": "a_file/ckpt"}, r"checkpoint_dir \S+ckpt cannot be created: \S+a_file is a file"),
        ({"history_path": "a_dir"}, r"history_path \S+a_dir exists and is a directory; .* must be a file"),
        ({"history_path": "a_file/h.jsonl"}, r"history_path \S+h.jsonl cannot be created: \S+a_file is a file"),
    ],
)
def test_unusable_output_paths_are_refused_before_training(tmp_path, regression, mse_loss, paths, message):
    x, y, _ = regression
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "a_dir").mkdir()
    calls = []

    def counted_mse(model, batch):
        calls.append(1)
        return mse_loss(model, batch)

    paths = {name: tmp_path / value for name, value in paths.items()}
    with pytest.raises(ValueError, match=message):
        fit(torch.nn.Linear(3, 1).double(), counted_mse, (x, y), steps=3, **paths, **QUIET)
    assert calls == [] and sorted(os.listdir(tmp_path)) == ["a_dir", "a_file"]


@pytest.mark.parametrize("name", ["lr", "weight_decay"])
def test_required_numeric_options_refuse_none_naming_the_option(name):
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number"):
        fit(model, lambda m, b: m(b).sum(), torch.zeros(4, 1), steps=1, progress=False, **{name: None})
