"""Checkpoints: atomic writes, weights_only loading, exact resume, and never losing the last good state."""

import os
import random
import signal
import time

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
    with pytest.raises(CheckpointError, match=r"torn\.pt is not a readable gradflow checkpoint \(truncated or corr"):
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


# --------------------------------------------------------------------- non-finite states are never saved
def test_finite_loss_with_non_finite_gradient_keeps_the_last_good_checkpoint(tmp_path, regression, mse_loss):
    x, y, _ = regression
    calls = {"n": 0}

    def loss_with_nan_gradient_at_step_7(model, batch):
        calls["n"] += 1
        value = mse_loss(model, batch)
        if calls["n"] == 7:  # sqrt'(0) = inf times 0: the loss stays finite, the weight's gradient is NaN
            value = value + 0.0 * torch.sqrt(model.weight - model.weight.detach()).sum()
        return value

    model = torch.nn.Linear(3, 1).double()
    options = {"steps": 20, "checkpoint_every": 1, "checkpoint_dir": tmp_path, **QUIET}
    with pytest.raises(TrainingError, match=r"model entries are not finite after step 7 \(.*\): weight;") as err:
        fit(model, loss_with_nan_gradient_at_step_7, (x, y), **options)
    assert str(err.value).endswith(f"{tmp_path / 'last.pt'} keeps the last good state (step 6)")
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["step"] == 6 and all(torch.isfinite(v).all() for v in last["model"].values())
    result = fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), resume=True, **options)
    assert result.steps == 20 and result.history[5]["step"] == 6  # the run goes on from step 6


def test_non_finite_validation_loss_is_an_error_like_a_non_finite_training_loss(tmp_path, regression, mse_loss):
    x, y, _ = regression
    evaluations = []

    def val_loss_nan_at_second_evaluation(model, batch):
        evaluations.append(1)
        return mse_loss(model, batch) * (float("nan") if len(evaluations) == 2 else 1.0)

    with pytest.raises(TrainingError, match=r"validation loss is nan at step 4; .*last.pt keeps .* \(step 2\)$"):
        fit(
            torch.nn.Linear(3, 1).double(),
            mse_loss,
            (x, y),
            val_data=(x, y),
            val_loss=val_loss_nan_at_second_evaluation,
            steps=10,
            eval_every=2,
            checkpoint_every=2,
            checkpoint_dir=tmp_path,
            **QUIET,
        )
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2 and load_checkpoint(tmp_path / "best.pt")["step"] == 2


def test_a_successful_write_removes_stale_temporary_files_of_that_file_only(tmp_path):
    killed = tmp_path / ".last.pt.0123456789ab.tmp"  # left by a write that was killed
    in_progress = tmp_path / ".last.pt.ba9876543210.tmp"  # modified after our write began
    others = [".best.pt.0123456789ab.tmp", ".last.pt.backup.tmp", "last.pt.0123456789ab.tmp", "notes.txt"]
    for path in (killed, in_progress, *(tmp_path / name for name in others)):
        path.write_bytes(b"partial")
    now = time.time()
    os.utime(killed, (now - 3600, now - 3600))
    os.utime(in_progress, (now + 3600, now + 3600))
    save_checkpoint(tmp_path / "last.pt", step=1)
    assert sorted(os.listdir(tmp_path)) == sorted(["last.pt", in_progress.name, *others])


# --------------------------------------------------------------------------------- integrity of files
def test_save_and_load_return_the_same_dict_with_a_verified_checksum(tmp_path):
    state = {"weights": torch.arange(4.0), "meta": {"name": "w", "shape": (2, 2), "scale": 0.5, "none": None}}
    path = save_checkpoint(tmp_path / "w.pt", **state)
    loaded = load_checkpoint(path)
    assert list(loaded) == ["weights", "meta"] and loaded["meta"] == state["meta"]
    assert torch.equal(loaded["weights"], state["weights"])
    assert torch.load(path, weights_only=True)["gradflow_checksum"].startswith("sha256:")
    torch.save(state, tmp_path / "old.pt")  # a file without a checksum (earlier versions) loads unverified
    assert load_checkpoint(tmp_path / "old.pt")["meta"] == state["meta"]
    with pytest.raises(CheckpointError, match="'gradflow_checksum' is reserved"):
        save_checkpoint(tmp_path / "x.pt", gradflow_checksum="mine")


def _flip_a_byte_of(path, values):
    raw = bytearray(path.read_bytes())
    at = raw.find(values.numpy().tobytes())
    assert at >= 0
    raw[at + values.numel() * values.element_size() // 2] ^= 0x10
    path.write_bytes(bytes(raw))


def test_flipped_bytes_in_tensor_data_are_detected(tmp_path):
    values = torch.arange(1000, dtype=torch.float64) + 0.5
    path = save_checkpoint(tmp_path / "w.pt", weights=values, step=3)
    _flip_a_byte_of(path, values)
    with pytest.raises(CheckpointError, match=r"w.pt is corrupt: its contents do not match the checksum stored in it"):
        load_checkpoint(path)


def test_resuming_from_a_corrupted_checkpoint_fails_clearly(tmp_path, regression, mse_loss):
    x, y, _ = regression
    model = torch.nn.Linear(3, 1).double()
    fit(model, mse_loss, (x, y), steps=3, checkpoint_dir=tmp_path, **QUIET)
    _flip_a_byte_of(tmp_path / "last.pt", model.weight.detach().clone())
    with pytest.raises(CheckpointError, match=r"last\.pt is corrupt"):
        fit(torch.nn.Linear(3, 1).double(), mse_loss, (x, y), steps=6, checkpoint_dir=tmp_path, resume=True, **QUIET)


@pytest.mark.parametrize("kept", [0.02, 0.5, 0.98])
def test_truncated_checkpoint_is_reported_as_truncated_or_corrupt(tmp_path, kept):
    path = save_checkpoint(tmp_path / "w.pt", weights=torch.randn(500, dtype=torch.float64), step=3)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(kept * len(raw))])
    with pytest.raises(CheckpointError, match=r"w.pt is not a readable gradflow checkpoint \(truncated or corrupt\)"):
        load_checkpoint(path)


def test_refused_objects_are_reported_without_suggesting_an_unsafe_load(tmp_path):
    torch.save({"rng": np.zeros(3)}, tmp_path / "numpy.pt")
    with pytest.raises(CheckpointError, match="which gradflow does not load: Unsupported global") as err:
        load_checkpoint(tmp_path / "numpy.pt")
    assert "weights_only" not in str(err.value)


# ------------------------------------------------------------------------ resuming only the same run
class Renamed(torch.nn.Sequential):
    """The same layers under another class name: same parameter names and shapes."""


def _small_net(activation=torch.nn.Tanh, kind=torch.nn.Sequential):
    torch.manual_seed(0)
    return kind(torch.nn.Linear(3, 4), activation(), torch.nn.Linear(4, 1)).double()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": lambda: _small_net(kind=Renamed)}, r"model class: torch\.nn\S+\.Sequential in the checkpoint, "),
        ({"model": lambda: _small_net(torch.nn.ReLU)}, r"model config: \(1\): Tanh\(\) in the checkpoint, \(1\): ReLU"),
        ({"data": lambda x, y: (x, y + 1)}, r"data\[1\]: float64 \(64, 1\), sample hash \w+ in the checkpoint, "),
        ({"val_data": lambda x, y: (x, 2 * y)}, r"val_data\[1\]: float64 \(64, 1\), sample hash \w+ in the checkpo"),
        ({"lr": 0.001}, r"lr: 0.01 in the checkpoint, 0.001 now"),
        ({"optimizer": "sgd"}, r"optimizer: torch\.optim\.adam\.Adam in the checkpoint, torch\.optim\.sgd\.SGD now"),
        ({"weight_decay": 0.1}, r"weight_decay: 0.0 in the checkpoint, 0.1 now"),
        ({"grad_clip": 1.0}, r"grad_clip: None in the checkpoint, 1.0 now"),
        ({"scheduler": "step"}, r"scheduler: \S+\.CosineAnnealingLR in the checkpoint, \S+\.StepLR now"),
        ({"steps": 8}, r"scheduler T_max: 4 in the checkpoint, 8 now"),
    ],
)
def test_checkpoint_of_another_run_is_refused_naming_the_difference(tmp_path, regression, mse_loss, change, message):
    x, y, _ = regression

    def train(model=_small_net, data=lambda x, y: (x, y), val_data=lambda x, y: (x, y), **kwargs):
        options = {"steps": 4, "lr": 0.01, "scheduler": "cosine", "checkpoint_dir": tmp_path, **QUIET, **kwargs}
        return fit(model(), mse_loss, data(x, y), val_data=val_data(x, y), **options)

    train()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(CheckpointError, match=r"last.pt was written by a different run: " + message) as err:
        train(resume=True, **change)
    assert str(err.value).count(" in the checkpoint, ") == 1  # exactly the one difference is named
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    assert train(resume=True).steps == 4  # the same arguments resume


def test_checkpoint_without_a_fingerprint_resumes_with_a_warning(tmp_path, regression, mlp_factory):
    x, y, _ = regression
    reference, _ = run(mlp_factory, (x, y))
    with pytest.raises(Interrupt):
        run(mlp_factory, (x, y), tmp_path, callbacks=[interrupt_at(12)])
    state = load_checkpoint(tmp_path / "last.pt")
    del state["fingerprint"]
    save_checkpoint(tmp_path / "last.pt", **{**state, "format": "gradflow.train/1"})  # as written before
    with pytest.warns(UserWarning, match=r"older gradflow \(gradflow.train/1\) without a run fingerprint"):
        model, _ = run(mlp_factory, (x, y), tmp_path, resume=True)
    assert same_state(model, reference)
    assert "fingerprint" in load_checkpoint(tmp_path / "last.pt")  # rewritten in the current format


def test_load_checkpoint_names_a_bad_path(tmp_path):
    with pytest.raises(ValueError, match=r"^path must be a str or os.PathLike, got int"):
        load_checkpoint(3)
    with pytest.raises(FileNotFoundError, match=r"\(path does not exist\)"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match=r"\(path is a directory\)"):
        load_checkpoint(tmp_path)
