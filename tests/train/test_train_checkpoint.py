"""Checkpoints: atomic writes, weights_only loading, exact resume, and never losing the last good state."""

import os
import random
import signal

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from gradflow.train import CheckpointError, TrainingError, fit, load_checkpoint, save_checkpoint

QUIET = {"progress": False, "device": "cpu", "deterministic": True}


class Interrupt(KeyboardInterrupt):
    """Raised by a callback to simulate a run killed after a given step."""


def interrupt_at(step):
    def callback(state):
        if state["step"] == step:
            raise Interrupt

    return callback


def noisy_mse(model, batch):
    """MSE plus noise from torch's, NumPy's and Python's global RNGs: resuming must restore all three."""
    x, y = batch
    noise = 0.01 * (torch.randn(y.shape, dtype=y.dtype) + np.random.randn() + random.random())  # noqa: NPY002
    return ((model(x) - y - noise) ** 2).mean()


def sampler(generator):
    x = torch.randn(16, 3, generator=generator, dtype=torch.float64)
    return x, x.sum(-1, keepdim=True)


def run(make_model, data, ckpt=None, callbacks=(), resume=False, **kwargs):
    model = make_model(seed=0, dropout=0.2)
    options = {
        "val_data": data if not callable(data) else sampler,
        "steps": 23,
        "batch_size": None if callable(data) else 10,
        "scheduler": "cosine",
        "eval_every": 4,
        "checkpoint_every": 5,
        "lr": 0.01,
        **QUIET,
        **kwargs,
    }
    result = fit(model, noisy_mse, data, checkpoint_dir=ckpt, resume=resume, callbacks=callbacks, **options)
    return model, result


def same_state(a, b):
    return all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def strip_time(history):
    return [{k: v for k, v in h.items() if k != "time"} for h in history]


@pytest.mark.parametrize("kind", ["tensors", "dataset", "sampler"])
# 7 batches per epoch; checkpoints every 5 steps, written after the callbacks of that step ran
@pytest.mark.parametrize("stop_at", [7, 10, 12])
def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path, regression, mlp_factory, kind, stop_at):
    x, y, _ = regression
    data = {"tensors": (x, y), "dataset": TensorDataset(x, y), "sampler": sampler}[kind]
    reference, expected = run(mlp_factory, data)
    with pytest.raises(Interrupt):
        run(mlp_factory, data, tmp_path, callbacks=[interrupt_at(stop_at)])
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 5 * ((stop_at - 1) // 5)  # mid-epoch: 5 or 10
    model, result = run(mlp_factory, data, tmp_path, resume=True)
    assert same_state(model, reference)
    assert strip_time(result.history) == strip_time(expected.history)
    assert (result.best_step, result.best_val_loss, result.steps) == (expected.best_step, expected.best_val_loss, 23)


def _forget_torch_rng(state):
    state["rng"][0]["torch"] = torch.Generator().manual_seed(5).get_state()


def _forget_numpy_rng(state):
    state["rng"][0]["numpy"]["pos"] = 0


def _forget_python_rng(state):
    state["rng"][0]["python"]["state"][-1] = 0  # the Mersenne Twister's position


def _forget_data_position(state):
    state["data"]["position"]["position"] = 0


@pytest.mark.parametrize("forget", [_forget_torch_rng, _forget_numpy_rng, _forget_python_rng, _forget_data_position])
def test_every_piece_of_resume_state_matters(tmp_path, regression, mlp_factory, forget):
    """Control for the test above: a checkpoint missing one piece of state does not reproduce the run."""
    x, y, _ = regression
    reference, _ = run(mlp_factory, (x, y))
    with pytest.raises(Interrupt):
        run(mlp_factory, (x, y), tmp_path, callbacks=[interrupt_at(12)])
    state = load_checkpoint(tmp_path / "last.pt")
    forget(state)
    save_checkpoint(tmp_path / "last.pt", **state)
    model, _ = run(mlp_factory, (x, y), tmp_path, resume=True)
    assert not same_state(model, reference)


def test_resuming_a_finished_run_returns_it_unchanged(tmp_path, regression, mlp_factory):
    x, y, _ = regression
    first, expected = run(mlp_factory, (x, y), tmp_path)
    again, result = run(mlp_factory, (x, y), tmp_path, resume=True)
    assert same_state(first, again) and result.steps == 23 and result.history == expected.history


def test_ctrl_c_finishes_the_step_and_saves_it(tmp_path, regression, mlp_factory):
    x, y, _ = regression
    reference, _ = run(mlp_factory, (x, y))
    calls = {"n": 0}

    def loss_that_gets_ctrl_c(model, batch):
        calls["n"] += model.training  # count training steps, not validation batches
        if calls["n"] == 8 and model.training:
            os.kill(os.getpid(), signal.SIGINT)
        return noisy_mse(model, batch)

    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 8"):
        fit(
            mlp_factory(seed=0, dropout=0.2),
            loss_that_gets_ctrl_c,
            (x, y),
            val_data=(x, y),
            steps=23,
            batch_size=10,
            scheduler="cosine",
            eval_every=4,
            checkpoint_every=5,
            lr=0.01,
            checkpoint_dir=tmp_path,
            **QUIET,
        )
    assert signal.getsignal(signal.SIGINT) is previous
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 8  # not the scheduled 5: no step lost
    model, _ = run(mlp_factory, (x, y), tmp_path, resume=True)
    assert same_state(model, reference)


def test_checkpoints_load_with_weights_only(tmp_path, regression, mlp_factory):
    x, y, _ = regression
    model, result = run(mlp_factory, (x, y), tmp_path, optimizer="adamw")
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert last["step"] == 23 and len(last["history"]) == len(result.history)
    assert best["step"] == result.best_step and best["val_loss"] == result.best_val_loss
    assert all(torch.equal(best["model"][k], v) for k, v in model.state_dict().items())  # best weights loaded
    fit(
        mlp_factory(),
        noisy_mse,
        (x, y),
        val_data=(x, y),
        steps=4,
        eval_every=1,
        scheduler="plateau",
        checkpoint_dir=tmp_path / "plateau",
        **QUIET,
    )
    torch.load(tmp_path / "plateau" / "last.pt", weights_only=True)


def test_best_checkpoint_without_validation_holds_the_final_weights(tmp_path, regression, mlp_factory, mse_loss):
    x, y, _ = regression
    model = mlp_factory()
    fit(model, mse_loss, (x, y), steps=3, checkpoint_dir=tmp_path, **QUIET)
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["val_loss"] is None and best["step"] == 3
    assert all(torch.equal(best["model"][k], v) for k, v in model.state_dict().items())


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    save_checkpoint(path, weights=torch.ones(3), step=1)
    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, weights=torch.zeros(3), step=2)
    monkeypatch.setattr(torch, "save", real_save)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert os.listdir(tmp_path) == ["state.pt"]  # no temporary file left behind


def test_crash_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch, regression, mse_loss):
    x, y, _ = regression
    real_save, calls = torch.save, {"n": 0}

    def save_then_crash_on_third(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            f.write(b"garbage")
            raise OSError("killed")
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_crash_on_third)
    with pytest.raises(OSError, match="killed"):
        fit(
            torch.nn.Linear(3, 1).double(),
            mse_loss,
            (x, y),
            steps=10,
            checkpoint_every=2,
            checkpoint_dir=tmp_path,
            **QUIET,
        )
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4


def test_save_checkpoint_rejects_what_weights_only_cannot_load(tmp_path):
    with pytest.raises(CheckpointError, match=r"state\['extra'\]\['rng'\] is a ndarray"):
        save_checkpoint(tmp_path / "x.pt", extra={"rng": np.zeros(3)})
    assert not (tmp_path / "x.pt").exists()


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "torn.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not load checkpoint"):
        load_checkpoint(tmp_path / "torn.pt")


def test_non_finite_loss_raises_and_keeps_the_last_good_checkpoint(tmp_path, regression, mse_loss):
    x, y, _ = regression
    calls = {"n": 0}

    def loss_that_explodes(model, batch):
        calls["n"] += 1
        value = mse_loss(model, batch)
        return value * float("nan") if calls["n"] == 7 else value

    model = torch.nn.Linear(3, 1).double()
    with pytest.raises(TrainingError, match="loss is nan at step 7"):
        fit(model, loss_that_explodes, (x, y), steps=20, checkpoint_every=5, checkpoint_dir=tmp_path, **QUIET)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["step"] == 5 and all(torch.isfinite(v).all() for v in last["model"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad step was not applied


def test_checkpoint_of_another_model_is_refused_and_left_untouched(tmp_path, regression, mse_loss):
    x, y, _ = regression
    history = tmp_path / "history.jsonl"
    fit(
        torch.nn.Linear(3, 1).double(),
        mse_loss,
        (x, y),
        val_data=(x, y),
        steps=4,
        checkpoint_dir=tmp_path,
        history_path=history,
        **QUIET,
    )
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1)).double()
    with pytest.raises(CheckpointError, match=r"different model.*missing from checkpoint \(4\): 0.weight") as err:
        fit(
            other,
            mse_loss,
            (x, y),
            val_data=(x, y),
            steps=8,
            checkpoint_dir=tmp_path,
            resume=True,
            history_path=history,
            **QUIET,
        )
    assert "unexpected in checkpoint (2): weight, bias" in str(err.value)
    wider = torch.nn.Linear(3, 2).double()
    with pytest.raises(CheckpointError, match=r"weight: checkpoint \(1, 3\) vs model \(2, 3\)"):
        fit(wider, mse_loss, (x, y), steps=8, checkpoint_dir=tmp_path, resume=True, **QUIET)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 1}, "seed=0, this call has seed=1"),
        ({"batch_size": 8}, "written for data"),
        ({"scheduler": None}, "written with a scheduler"),
    ],
)
def test_checkpoint_from_another_run_setup_is_refused(tmp_path, regression, mlp_factory, change, message):
    x, y, _ = regression
    run(mlp_factory, (x, y), tmp_path, steps=5)
    with pytest.raises(CheckpointError, match=message):
        run(mlp_factory, (x, y), tmp_path, resume=True, **change)


def test_resume_rewrites_the_history_file_without_duplicates(tmp_path, regression, mlp_factory):
    x, y, _ = regression
    path = tmp_path / "h.jsonl"
    _, expected = run(mlp_factory, (x, y), history_path=tmp_path / "ref.jsonl")
    with pytest.raises(Interrupt):
        run(mlp_factory, (x, y), tmp_path / "ck", callbacks=[interrupt_at(13)], history_path=path)
    run(mlp_factory, (x, y), tmp_path / "ck", resume=True, history_path=path)
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in path.read_text().splitlines()]
    assert steps == [h["step"] for h in expected.history]
