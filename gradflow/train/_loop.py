"""The training loop behind :func:`fit` (private)."""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .._validation import check_number, check_positive_int, check_seed
from ._checkpoint import CheckpointError, check_model_matches, load_checkpoint, save_checkpoint
from ._data import make_source
from ._device import deterministic_algorithms, get_rng_state, preserved_rng_state, seed_everything, set_rng_state
from ._distributed import setup_distributed
from ._fingerprint import fingerprint_differences, run_fingerprint
from ._optim import is_plateau, make_optimizer, make_scheduler
from ._report import DeferredInterrupt, Reporter, format_duration, resolve_interval

__all__ = ["FitResult", "TrainingError", "fit"]

logger = logging.getLogger(__name__)
_FORMAT = "gradflow.train/2"
_FORMAT_V1 = "gradflow.train/1"  # before run fingerprints: still resumed, with a warning


class TrainingError(RuntimeError):
    """Training cannot go on: a loss is not a finite scalar tensor, or the gradients or weights are not finite.

    The message names the step, the value or entries at fault, and the checkpoint that still holds
    the last good state.
    """


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (same object as passed), holding the best validation weights, or the
            last weights without validation data.
        history: one dict per logged step: ``step``, ``epoch`` (None for sampler data), ``loss`` (mean
            training loss since the previous entry), ``lr``, ``time`` (training seconds, summed over
            resumed runs) and, at evaluations, ``val_loss``.
        best_step, best_val_loss: step and value of the best evaluation (None without validation data).
        stop_reason: ``"completed"``, ``"early_stopping"`` or ``"max_time"``.
        steps: optimizer steps done in total (including those before a resume).
        elapsed: wall-clock seconds of this call.
    """

    model: torch.nn.Module
    history: list[dict]
    best_step: int | None
    best_val_loss: float | None
    stop_reason: str
    steps: int
    elapsed: float


@dataclass(frozen=True)
class _Options:
    val_data: object
    val_loss: Callable | None
    val_grad: bool
    steps: int | None
    epochs: int | None
    batch_size: int | None
    num_workers: int
    optimizer: object
    lr: float
    weight_decay: float
    scheduler: object
    grad_clip: float | None
    eval_every: int | None
    early_stopping: int | None
    max_time: float | None
    log_every: int | None
    checkpoint_dir: object
    checkpoint_every: int | None
    resume: bool
    seed: int
    deterministic: bool
    device: object
    amp: bool
    progress: bool
    progress_interval: float | None
    history_path: object
    callbacks: Sequence[Callable]


def fit(
    model: torch.nn.Module,
    loss: Callable,
    data,
    *,
    val_data=None,
    val_loss: Callable | None = None,
    val_grad: bool = False,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    num_workers: int = 0,
    optimizer="adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    scheduler=None,
    grad_clip: float | None = None,
    eval_every: int | None = None,
    early_stopping: int | None = None,
    max_time: float | None = None,
    log_every: int | None = None,
    checkpoint_dir=None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    seed: int = 0,
    deterministic: bool = False,
    device="auto",
    amp: bool = False,
    progress: bool = True,
    progress_interval: float | None = None,
    history_path=None,
    callbacks: Sequence[Callable] = (),
) -> FitResult:
    """Train ``model`` by minimising ``loss(model, batch)``; the one training loop of gradflow.

    Data (``data`` and ``val_data``):
        * a tensor, or a tuple/list of tensors with equal first dimension N: each epoch is a permutation
          of the N rows (seeded from ``(seed, epoch)``) cut into batches of ``batch_size`` (default: all
          N rows in one batch; the last batch may be smaller). The batch is a tuple of tensors, or one
          tensor if one tensor was given, indexed afresh (caller tensors are never mutated) and moved
          to the device;
        * a map-style ``torch.utils.data.Dataset``: the same seeded batches of indices, loaded with a
          ``DataLoader`` (``num_workers`` workers, ``default_collate``; randomness inside worker
          processes is not reproduced across a resume, randomness in the main process is);
        * a callable ``sample(generator) -> batch`` (infinite/synthetic data): called once per step
          with a CPU ``torch.Generator`` seeded from ``(seed, rank, call index)``; use ``steps``.

        Validation visits ``val_data`` in order in batches of ``batch_size`` (a sampler: one batch from a
        fixed seed); the validation loss is the mean of ``val_loss`` (default ``loss``) over batches,
        computed in eval mode under ``torch.no_grad()``, or with gradients if ``val_grad=True`` (losses
        that differentiate through their inputs, e.g. Hamiltonian networks).

    Schedule: exactly one of ``steps`` and ``epochs`` (finite data only). ``eval_every`` and
    ``checkpoint_every`` default to once per epoch with ``epochs`` and every ``max(1, steps // 50)``
    steps with ``steps``; there is always a final evaluation and checkpoint. ``log_every`` defaults to
    ``max(1, total_steps // 1000)``. ``early_stopping=p`` stops after ``p`` evaluations without a new
    best; ``max_time`` (seconds) stops after the step in which it is exceeded. Either way the run
    evaluates once more and ``result.model`` holds the best weights.

    Optimisation: ``optimizer`` is ``"adam"``, ``"adamw"``, ``"sgd"`` (built with ``lr`` and
    ``weight_decay``), an Optimizer, or ``callable(params) -> Optimizer``. ``scheduler`` is None,
    ``"cosine"`` (over the whole run), ``"step"`` (x0.1 every third of the run), ``"plateau"``
    (``ReduceLROnPlateau`` with torch defaults, stepped with the validation loss) or
    ``callable(optimizer) -> scheduler`` (stepped every step, or per evaluation if it is a
    ``ReduceLROnPlateau``). ``grad_clip`` bounds the global gradient norm. ``amp=True`` autocasts to
    bfloat16 (float16 with a GradScaler where bf16 is unsupported) on CUDA; elsewhere it warns and
    trains in full precision.

    Checkpoints: with ``checkpoint_dir``, ``last.pt`` (everything needed to resume: model, optimizer,
    scheduler, scaler, data position, every rank's RNG states, best weights, early-stopping counter,
    history, and the run's fingerprint) and ``best.pt`` (best weights) are written atomically, carry
    a checksum and load with ``weights_only=True``. ``resume=True`` continues from ``last.pt`` if it
    exists; with the same arguments the result equals that of an uninterrupted run (bitwise on CPU).
    A checkpoint written for another run raises CheckpointError naming every difference, before any
    file is written: model parameters (names, shapes), model class and configuration (its repr),
    seed, data (size, batch size; tensors: dtype, shape and a hash of a sample of the values; a
    Dataset: type and length; a sampler: type), optimizer class and hyperparameters (``lr``,
    ``weight_decay``, ...), ``grad_clip`` and scheduler. ``steps``, ``epochs`` and the other
    arguments may change (e.g. to extend a run). A checkpoint of an older gradflow without a
    fingerprint resumes with a warning that these are not checked. A first Ctrl-C finishes the
    current step, writes ``last.pt`` and raises KeyboardInterrupt.

    Non-finite values stop the run with TrainingError and never reach a checkpoint: a training loss
    that is not a finite scalar (checked before the optimizer step, which is not applied), a
    validation loss that is NaN or inf (checked before it is recorded, like the training loss), and
    weights or buffers that hold NaN or inf when ``last.pt`` is due (e.g. after a NaN gradient of a
    finite loss; checked before writing). The message names the step and says which step
    ``last.pt`` still holds.

    Reproducibility and devices: ``fit`` seeds ``random``, NumPy and torch with ``seed + rank``
    (see :func:`seed_everything`) and restores the caller's generator states (``random``, NumPy,
    torch CPU and, if initialised, CUDA) when it returns or raises; ``deterministic=True`` enables
    deterministic algorithms (warn-only) for the duration of the call. ``device`` is resolved by
    :func:`resolve_device`; the model is moved there and trained in place.

    Progress: ``progress=True`` writes a first line with the budget (steps, epochs, batch size,
    ``max_time``, device) and a last line with the stop reason to stderr; in between, a tqdm bar if
    stderr is a terminal, otherwise (log file, ``nohup``, CI) one status line at most every
    ``progress_interval`` seconds (default: ``$GRADFLOW_PROGRESS_INTERVAL``, else 10) with step/total,
    loss, validation loss, learning rate, steps/s, elapsed time and ETA. Only rank 0 writes.
    ``progress=False`` writes nothing.

    Files: ``history_path`` (a file) receives the history as JSON lines. ``checkpoint_dir``
    and ``history_path`` are checked before training: an existing path of the wrong kind (a file for
    ``checkpoint_dir``, a directory for ``history_path``) or a file in the way of creating them
    raises ValueError. Each callback is called after every step with a dict holding
    ``step, epoch, loss, val_loss, lr, model, optimizer, rank, world_size``.

    Distributed: under ``torchrun`` (``WORLD_SIZE > 1``) the process group is created if needed
    (Gloo on CPU, NCCL on CUDA), parameters are broadcast from rank 0, each rank takes its share of
    every global batch and the share-weighted gradients are summed with ``all_reduce`` after backward
    (see ``_distributed``; no DistributedDataParallel, so double backward and methods other than
    ``forward`` work). For a loss that is a mean over the batch, the run equals the single-process
    one. A sampler is called on every rank with its own generator, so the global batch grows with
    the number of ranks. Only rank 0 writes files; every rank returns the same result.

    Example:
        >>> x = torch.linspace(-1, 1, 64).unsqueeze(1); y = 3 * x
        >>> net = torch.nn.Linear(1, 1)
        >>> mse = lambda m, batch: ((m(batch[0]) - batch[1]) ** 2).mean()
        >>> result = fit(net, mse, (x, y), steps=300, batch_size=16, lr=0.05, progress=False, device="cpu")
        >>> round(net.weight.item(), 2), result.stop_reason
        (3.0, 'completed')
    """
    options = _Options(**{k: v for k, v in locals().items() if k not in ("model", "loss", "data")})
    _check_options(model, loss, options)
    dist = setup_distributed(device)
    with (
        deterministic_algorithms(deterministic),
        preserved_rng_state(),
        DeferredInterrupt(checkpoint_dir is not None) as interrupt,
    ):
        return _Trainer(model, loss, data, options, dist, interrupt).run()


def _check_options(model, loss, o: _Options) -> None:
    """Argument checks that need no data or devices (ValueError with the offending value)."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if callable(o.callbacks) or isinstance(o.callbacks, (str, bytes)):
        raise ValueError("callbacks must be a sequence of callables, e.g. callbacks=[my_callback]")
    for name, fn in (
        ("loss", loss),
        ("val_loss", o.val_loss),
        *(("callbacks entry", cb) for cb in o.callbacks),
    ):
        if fn is not None and not callable(fn):
            raise ValueError(f"{name} must be callable, got {type(fn).__name__}")
    if (o.steps is None) == (o.epochs is None):
        raise ValueError(f"pass exactly one of steps and epochs (got steps={o.steps!r}, epochs={o.epochs!r})")
    for name in (
        "steps",
        "epochs",
        "batch_size",
        "eval_every",
        "early_stopping",
        "log_every",
        "checkpoint_every",
    ):
        if getattr(o, name) is not None:
            check_positive_int(getattr(o, name), name)
    check_positive_int(o.num_workers, "num_workers", minimum=0)
    check_seed(o.seed)
    check_number(o.lr, "lr", minimum=0.0, strict=True)
    check_number(o.weight_decay, "weight_decay", minimum=0.0)
    for name in ("grad_clip", "max_time", "progress_interval"):  # None: off
        if getattr(o, name) is not None:
            check_number(getattr(o, name), name, minimum=0.0, strict=True)
    if o.val_data is None and o.early_stopping is not None:
        raise ValueError("early_stopping needs val_data")
    if o.checkpoint_dir is None and o.resume:
        raise ValueError("resume=True needs checkpoint_dir")
    for name, value, directory in (("checkpoint_dir", o.checkpoint_dir, True), ("history_path", o.history_path, False)):
        if value is not None:
            _check_output_path(value, name, directory=directory)


def _check_output_path(value, name: str, *, directory: bool) -> None:
    """Raise ValueError unless ``value`` is a path to a directory (or file) that exists or can be created."""
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__}")
    path = Path(value)
    if path.exists() and path.is_dir() != directory:
        raise ValueError(
            f"{name} {path} exists and is {'a file' if directory else 'a directory'}; "
            f"{name} must be {'a directory' if directory else 'a file'}"
        )
    existing = next((parent for parent in path.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"{name} {path} cannot be created: {existing} is a file")


def _names(names: list[str], shown: int = 5) -> str:
    """``"a, b, c"``, at most ``shown`` names, then how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _amp_dtype(amp: bool, device: torch.device) -> torch.dtype | None:
    if not amp:
        return None
    if device.type != "cuda":
        warnings.warn(
            f"amp=True needs a CUDA device; training on {device} in full precision",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _cpu_copy(state: dict) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


class _Trainer:
    """State of one run: built from the options (or a checkpoint), advanced by :meth:`run`."""

    def __init__(self, model, loss, data, o: _Options, dist, interrupt: DeferredInterrupt):
        self.o, self.dist, self.interrupt, self.device = o, dist, interrupt, dist.device
        self.loss_fn, self.val_fn = loss, (loss if o.val_loss is None else o.val_loss)
        common = {
            "batch_size": o.batch_size,
            "seed": o.seed,
            "rank": dist.rank,
            "world_size": dist.world_size,
            "device": self.device,
            "num_workers": o.num_workers,
        }
        self.source = make_source(data, **common)
        self.val_source = None if o.val_data is None else make_source(o.val_data, name="val_data", **common)
        if o.epochs is not None and self.source.epoch is None:
            raise ValueError("epochs needs finite data (tensors or a Dataset); for a sampler pass steps")
        per_epoch = getattr(self.source, "batches_per_epoch", None)
        self.total = o.steps if o.steps is not None else o.epochs * per_epoch
        interval = per_epoch if o.epochs is not None else max(1, self.total // 50)
        self.eval_every, self.checkpoint_every = o.eval_every or interval, o.checkpoint_every or interval
        self.log_every = o.log_every or max(1, self.total // 1000)

        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no trainable parameters")
        self.optimizer = make_optimizer(o.optimizer, self.params, o.lr, o.weight_decay)
        self.scheduler = make_scheduler(o.scheduler, self.optimizer, self.total)
        if is_plateau(self.scheduler) and self.val_source is None:
            raise ValueError("a ReduceLROnPlateau ('plateau') scheduler needs val_data")
        self.fingerprint = None if o.checkpoint_dir is None else self._fingerprint()
        self.progress_interval = resolve_interval(o.progress_interval) if o.progress else None

        # Everything above only validated; from here on global state changes.
        seed_everything(o.seed + dist.rank)
        self.model.to(self.device)
        self.amp_dtype = _amp_dtype(o.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.dir = None if o.checkpoint_dir is None else Path(o.checkpoint_dir)
        self.step, self.bad_evals, self.history, self.best = 0, 0, [], None
        self.loss_sum, self.loss_count, self.time_before = 0.0, 0, 0.0
        self.saved_step = None  # the step last.pt holds, once this run wrote or resumed it
        state = self._read_checkpoint()
        if state is None:
            self.dist.broadcast_module(self.model)
        else:
            self._load(state)

    # ----------------------------------------------------------------------------------- checkpoints
    def _fingerprint(self) -> dict:
        """This run's :func:`run_fingerprint`, taken before any step or resume."""
        sources = {"data": self.source, "val_data": self.val_source}
        data = {name: source.fingerprint() for name, source in sources.items() if source is not None}
        return run_fingerprint(self.model, self.optimizer, self.scheduler, self.o.grad_clip, data)

    def _read_checkpoint(self) -> dict | None:
        path = None if self.dir is None else self.dir / "last.pt"
        if path is None or not path.is_file():
            return None
        if not self.o.resume:
            logger.warning("resume=False: %s will be overwritten by this run", path)
            return None
        outcome = None
        if self.dist.is_main:
            try:
                outcome = ("ok", load_checkpoint(path))
            except CheckpointError as err:
                outcome = ("error", str(err))
        status, payload = self.dist.broadcast_object(outcome)
        if status == "error":
            raise CheckpointError(payload)
        return payload

    def _load(self, state: dict) -> None:
        path = self.dir / "last.pt"
        if not isinstance(state, dict) or state.get("format") not in (_FORMAT, _FORMAT_V1):
            raise CheckpointError(f"{path} is not a gradflow training checkpoint ({_FORMAT})")
        check_model_matches(state["model"], self.model, str(path))
        if state["seed"] != self.o.seed:
            raise CheckpointError(f"{path} was written with seed={state['seed']}, this call has seed={self.o.seed}")
        if state["data"]["signature"] != self.source.signature():
            raise CheckpointError(
                f"{path} was written for data {state['data']['signature']}, this call has {self.source.signature()}"
            )
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise CheckpointError(
                f"{path} was written {'without' if state['scheduler'] is None else 'with'} a scheduler"
            )
        self._check_fingerprint(state, path)
        self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"optimizer state in {path} does not fit this optimizer: {err}") from err
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.source.load_state_dict(state["data"]["position"])
        self.step, self.bad_evals, self.history, self.best = (
            state["step"],
            state["bad_evals"],
            state["history"],
            state["best"],
        )
        self.loss_sum, self.loss_count = state["loss_acc"]
        self.time_before, self.saved_step = state["time"], self.step
        if len(state["rng"]) == self.dist.world_size:
            set_rng_state(state["rng"][self.dist.rank], self.device)
        else:
            logger.warning(
                "%s was written by %d process(es), this run has %d: RNG streams are not restored",
                path,
                len(state["rng"]),
                self.dist.world_size,
            )
        logger.info("resumed from %s at step %d", path, self.step)

    def _check_fingerprint(self, state: dict, path: Path) -> None:
        """Raise CheckpointError naming every difference between the checkpoint's run and this one."""
        if state["format"] == _FORMAT_V1:
            warnings.warn(
                f"{path} was written by an older gradflow ({_FORMAT_V1}) without a run fingerprint: resuming "
                "without checking the model class and configuration, optimizer, hyperparameters and data contents",
                UserWarning,
                stacklevel=5,
            )
            return
        differences = fingerprint_differences(state["fingerprint"], self.fingerprint)
        if differences:
            raise CheckpointError(
                f"{path} was written by a different run: {'; '.join(differences)}. Resume with the same arguments, "
                "or pass resume=False to start over (this overwrites it)"
            )

    def _kept(self) -> str:
        """What an error message says about ``last.pt``: the step of the last good state it keeps."""
        if self.dir is None:
            return ""
        if self.saved_step is None:
            return f"; no checkpoint was written to {self.dir / 'last.pt'} by this run"
        return f"; {self.dir / 'last.pt'} keeps the last good state (step {self.saved_step})"

    def _check_finite_model(self) -> None:
        """Raise TrainingError, before anything is written, if a weight or buffer holds NaN or inf."""
        bad = [name for name, value in self.model.state_dict().items() if not bool(torch.isfinite(value).all())]
        if bad:
            raise TrainingError(
                f"model entries are not finite after step {self.step} (e.g. after a NaN/inf gradient "
                f"of a finite loss): {_names(bad)}{self._kept()}"
            )

    def _save_last(self) -> None:
        if self.dir is None:
            return
        self._check_finite_model()  # the same weights on every rank: all raise, or none
        rng = self.dist.gather_objects(get_rng_state(self.device))  # collective: every rank calls it
        if self.dist.is_main:
            save_checkpoint(
                self.dir / "last.pt",
                format=_FORMAT,
                fingerprint=self.fingerprint,
                step=self.step,
                seed=self.o.seed,
                model=self.model.state_dict(),
                optimizer=self.optimizer.state_dict(),
                scheduler=None if self.scheduler is None else self.scheduler.state_dict(),
                scaler=self.scaler.state_dict(),
                data={"signature": self.source.signature(), "position": self.source.state_dict()},
                rng=rng,
                best=self.best,
                bad_evals=self.bad_evals,
                history=self.history,
                loss_acc=[self.loss_sum, self.loss_count],
                time=self._time(),
            )
        self.saved_step = self.step

    def _save_best(self, model_state: dict, val_loss: float | None) -> None:
        if self.dir is not None and self.dist.is_main:
            save_checkpoint(self.dir / "best.pt", format=_FORMAT, step=self.step, val_loss=val_loss, model=model_state)

    # ------------------------------------------------------------------------------------- one step
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _check_scalar(self, value, name: str) -> None:
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
            raise TrainingError(
                f"{name} must return a 0-dim tensor, got {got} at step {self.step + 1}; reduce it, e.g. with .mean()"
            )

    def _train_step(self) -> tuple[float, bool, bool]:
        """One optimizer step; returns (global loss, interrupted, out of time), the same on all ranks."""
        batch, share = self.source.next()
        self.optimizer.zero_grad(set_to_none=True)
        local = 0.0
        if batch is not None:
            with self._autocast():
                value = self.loss_fn(self.model, batch)
            self._check_scalar(value, "loss")
            if not value.requires_grad:
                raise TrainingError(
                    f"loss at step {self.step + 1} does not require grad: "
                    "it does not depend on the model's trainable parameters"
                )
            self.scaler.scale(value).backward()
            local = float(value.detach()) * share
        timed_out = self.o.max_time is not None and time.monotonic() - self.start > self.o.max_time
        loss, interrupt, timeout = self.dist.reduce_gradients(
            self.params, share, [local, float(self.interrupt.requested), float(timed_out)]
        )
        if not math.isfinite(loss):
            raise TrainingError(f"loss is {loss} at step {self.step + 1}{self._kept()}")
        if self.o.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.o.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and not is_plateau(self.scheduler):
            self.scheduler.step()
        self.step += 1
        return loss, interrupt > 0, timeout > 0

    def _evaluate(self) -> float:
        self.model.eval()
        total = 0.0
        try:
            with torch.enable_grad() if self.o.val_grad else torch.no_grad(), self._autocast():
                for batch, share in self.val_source.eval_batches():
                    value = self.val_fn(self.model, batch)
                    self._check_scalar(value, "val_loss")
                    total += float(value.detach()) * share
        finally:
            self.model.train()
        return self.dist.sum_floats([total])[0] / self.val_source.eval_count

    def _record_eval(self, val: float) -> None:
        if not math.isfinite(val):
            raise TrainingError(f"validation loss is {val} at step {self.step}{self._kept()}")
        if is_plateau(self.scheduler):
            self.scheduler.step(val)
        if self.best is None or val < self.best["val_loss"]:
            self.best = {"step": self.step, "val_loss": val, "model": _cpu_copy(self.model.state_dict())}
            self.bad_evals = 0
            self._save_best(self.best["model"], val)
        else:
            self.bad_evals += 1

    # ------------------------------------------------------------------------------------- the loop
    def _time(self) -> float:
        return self.time_before + time.monotonic() - self.start

    def _log(self, reporter: Reporter, epoch, val: float | None) -> None:
        entry = {
            "step": self.step,
            "epoch": epoch,
            "loss": self.loss_sum / self.loss_count,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "time": self._time(),
        }
        if val is not None:
            entry["val_loss"] = val
        self.history.append(entry)
        reporter.log(entry)
        self.loss_sum, self.loss_count = 0.0, 0

    def _budget(self) -> str:
        """The first progress line: what this run will do, and on what."""
        text = f"{self.total} steps"
        per_epoch = getattr(self.source, "batches_per_epoch", None)
        if self.o.epochs is not None:
            text += f" ({self.o.epochs} epochs of {per_epoch} batches)"
        batch_size = getattr(self.source, "batch_size", None)
        if batch_size is not None:
            text += f", batch size {batch_size}"
        if self.o.max_time is not None:
            text += f", max_time {format_duration(self.o.max_time)}"
        text += f", device {self.device}"
        if self.dist.world_size > 1:
            text += f", {self.dist.world_size} processes"
        if self.step:
            text += f", resuming at step {self.step}"
        return text

    def _initial_stop(self) -> str | None:
        if self.step >= self.total:
            return "completed"
        if self.o.early_stopping is not None and self.bad_evals >= self.o.early_stopping:
            return "early_stopping"
        return None

    def run(self) -> FitResult:
        self.start = time.monotonic()
        was_training = self.model.training
        self.model.train()
        reporter = Reporter(
            self.o.progress,
            self.total,
            self.step,
            self.o.history_path,
            self.history,
            write=self.dist.is_main,
            interval=self.progress_interval,
            budget=self._budget(),
            lr=lambda: float(self.optimizer.param_groups[0]["lr"]),
            max_time=self.o.max_time,
        )
        stop, ended = self._initial_stop(), None
        try:
            while stop is None:
                epoch = self.source.epoch
                loss, interrupted, timed_out = self._train_step()
                self.loss_sum, self.loss_count = self.loss_sum + loss, self.loss_count + 1
                stop = "completed" if self.step >= self.total else "max_time" if timed_out else None
                val = None
                if self.val_source is not None and (stop is not None or self.step % self.eval_every == 0):
                    val = self._evaluate()
                    self._record_eval(val)
                    if stop is None and self.o.early_stopping is not None and self.bad_evals >= self.o.early_stopping:
                        stop = "early_stopping"
                if stop is not None or val is not None or self.step % self.log_every == 0:
                    self._log(reporter, epoch, val)
                reporter.advance(loss, val, final=stop is not None)  # after evaluating: the line shows val
                for callback in self.o.callbacks:
                    callback(
                        {
                            "step": self.step,
                            "epoch": epoch,
                            "loss": loss,
                            "val_loss": val,
                            "lr": float(self.optimizer.param_groups[0]["lr"]),
                            "model": self.model,
                            "optimizer": self.optimizer,
                            "rank": self.dist.rank,
                            "world_size": self.dist.world_size,
                        }
                    )
                if stop is not None or interrupted or self.step % self.checkpoint_every == 0:
                    self._save_last()
                if interrupted:
                    raise KeyboardInterrupt(f"training interrupted at step {self.step}; state saved to {self.dir}")
            ended = stop
        except KeyboardInterrupt:
            ended = "interrupted"
            raise
        except BaseException as err:
            ended = type(err).__name__
            raise
        finally:
            best = "" if self.best is None else f"best val {self.best['val_loss']:.4g} at step {self.best['step']}"
            reporter.close(ended, best, step=self.step)
        if self.best is not None:
            self.model.load_state_dict(self.best["model"])
        else:
            self._save_best(self.model.state_dict(), None)
        self.model.train(was_training)
        logger.info("training stopped at step %d: %s", self.step, stop)
        return FitResult(
            model=self.model,
            history=list(self.history),
            best_step=None if self.best is None else self.best["step"],
            best_val_loss=None if self.best is None else self.best["val_loss"],
            stop_reason=stop,
            steps=self.step,
            elapsed=time.monotonic() - self.start,
        )
