"""Run fingerprints: what a training checkpoint and the run resuming it must agree on (private).

A fingerprint is a dict of sections (``model``, ``optimizer``, ``scheduler``, ``data``), each a dict
of labels to plain values (str, numbers, bools, None, tuples), so it survives a weights_only load.
It is taken when a run is set up, before any step and before a resume, so it depends only on the
arguments of :func:`fit`: the model's class and configuration (its ``repr``), the optimizer's class
and hyperparameters plus ``grad_clip``, the scheduler's class and settings, and each data argument
(tensors: dtype, shape and a hash of a sample of the values; a Dataset: its type and length; a
sampler: its type). Parameter names and shapes are checked from the saved weights instead
(:func:`check_model_matches`).
"""

from __future__ import annotations

import hashlib
import re

import torch

from ._checkpoint import tensor_bytes

__all__ = ["fingerprint_differences", "qualified_name", "run_fingerprint", "tensor_fingerprint"]

_SAMPLE = 2**16  # at most this many entries of a data tensor are hashed
_MIN_ROWS = 16  # rows sampled from a data tensor at least (when it has that many)
# Optimizer options that choose an implementation (same numbers), not the optimisation itself.
_IMPLEMENTATION_OPTIONS = frozenset({"params", "initial_lr", "foreach", "fused", "capturable", "differentiable"})
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # memory addresses in reprs differ from process to process
# The entry naming a section's class: when it differs, the rest of that section is not compared.
_CLASS_ENTRY = {"model": "model class", "optimizer": "optimizer", "scheduler": "scheduler"}
_PLAIN = (str, int, float, bool, type(None))
_ABSENT = object()  # an entry one of two fingerprints lacks


def qualified_name(kind: type) -> str:
    """``module.QualName`` of a class, e.g. ``torch.optim.adam.Adam``."""
    return f"{kind.__module__}.{kind.__qualname__}"


def tensor_fingerprint(tensor: torch.Tensor) -> str:
    """dtype, shape and a SHA-256 (16 hex digits) of evenly spaced rows of ``tensor``, at most ``_SAMPLE`` entries.

    Cheap for any size; two tensors that differ only outside the sample share a fingerprint.
    """
    n = len(tensor)
    rows = min(n, max(_MIN_ROWS, _SAMPLE // max(1, tensor[0].numel())))
    index = torch.linspace(0, n - 1, rows, dtype=torch.float64).round().long().to(tensor.device)
    sample = tensor.detach()[index].reshape(-1)
    sample = sample[:: max(1, -(-sample.numel() // _SAMPLE))]  # ceil: at most _SAMPLE entries
    digest = hashlib.sha256(tensor_bytes(sample)).hexdigest()[:16]
    return f"{str(tensor.dtype).removeprefix('torch.')} {tuple(tensor.shape)}, sample hash {digest}"


def _plain(value):
    """``value`` as something a weights_only load accepts: plain values (and tuples/lists of them) as they
    are, a one-element tensor (a tensor lr) as a number, anything else by its type's name."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, _PLAIN) or (isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value)):
        return value
    return qualified_name(type(value))


def _optimizer_section(optimizer: torch.optim.Optimizer, grad_clip: float | None) -> dict:
    section = {"optimizer": qualified_name(type(optimizer))}
    groups = optimizer.param_groups
    for i, group in enumerate(groups):
        prefix = "" if len(groups) == 1 else f"group {i} "
        section[f"{prefix}lr"] = _plain(group.get("initial_lr", group["lr"]))  # lr before any schedule
        for key, value in group.items():
            if key not in _IMPLEMENTATION_OPTIONS and key != "lr":
                section[prefix + key] = _plain(value)
    section["grad_clip"] = grad_clip
    return section


def _scheduler_section(scheduler) -> dict:
    if scheduler is None:
        return {"scheduler": None}
    settings = {
        f"scheduler {key}": value
        for key, value in scheduler.state_dict().items()
        if not key.startswith("_") and isinstance(value, _PLAIN)
    }
    return {"scheduler": qualified_name(type(scheduler)), **settings}


def run_fingerprint(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, grad_clip, data: dict[str, list[str]]
) -> dict:
    """The fingerprint of a run; ``data`` maps each data argument's name to its sources' fingerprints."""
    data_section = {}
    for name, parts in data.items():
        data_section.update({name if len(parts) == 1 else f"{name}[{i}]": part for i, part in enumerate(parts)})
    return {
        "model": {"model class": qualified_name(type(model)), "model config": _ADDRESS.sub("", repr(model))},
        "optimizer": _optimizer_section(optimizer, grad_clip),
        "scheduler": _scheduler_section(scheduler),
        "data": data_section,
    }


def _show(value) -> str:
    return "absent" if value is _ABSENT else str(value)


def _difference(label: str, saved, current) -> str:
    """``"label: <saved> in the checkpoint, <current> now"``; multi-line values show their first differing line."""
    if isinstance(saved, str) and isinstance(current, str) and "\n" in saved + current:
        saved_lines, current_lines = saved.splitlines(), current.splitlines()
        i = next((i for i, pair in enumerate(zip(saved_lines, current_lines)) if pair[0] != pair[1]), None)
        i = min(len(saved_lines), len(current_lines)) if i is None else i
        saved = saved_lines[i].strip() if i < len(saved_lines) else "(end)"
        current = current_lines[i].strip() if i < len(current_lines) else "(end)"
    return f"{label}: {_show(saved)} in the checkpoint, {_show(current)} now"


def fingerprint_differences(saved: dict, current: dict) -> list[str]:
    """One line per entry that differs between two fingerprints, e.g. ``"lr: 0.01 in the checkpoint, 0.001 now"``.

    Within a section, a different class (model, optimizer, scheduler) is reported alone.
    """
    lines = []
    for section in dict.fromkeys([*saved, *current]):
        old, new = saved.get(section, {}), current.get(section, {})
        class_entry = _CLASS_ENTRY.get(section)
        if class_entry is not None and old.get(class_entry, _ABSENT) != new.get(class_entry, _ABSENT):
            labels = [class_entry]
        else:
            labels = list(dict.fromkeys([*old, *new]))
        lines += [
            _difference(label, old.get(label, _ABSENT), new.get(label, _ABSENT))
            for label in labels
            if old.get(label, _ABSENT) != new.get(label, _ABSENT)
        ]
    return lines
