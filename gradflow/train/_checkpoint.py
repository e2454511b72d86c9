"""Atomic, weights_only-safe checkpoint files (private)."""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch

__all__ = ["CheckpointError", "atomic_write", "check_model_matches", "load_checkpoint", "save_checkpoint"]

_SAFE_LEAVES = (torch.Tensor, str, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)


class CheckpointError(ValueError):
    """A checkpoint cannot be written, read, or does not fit the model / run it is loaded into."""


def _check_safe(obj, where: str) -> None:
    """Raise CheckpointError if ``obj`` holds anything ``torch.load(weights_only=True)`` would refuse."""
    if isinstance(obj, (dict, collections.OrderedDict)):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"checkpoint key {where}[{key!r}] must be a str or int, got {type(key).__name__}")
            _check_safe(value, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_safe(value, f"{where}[{i}]")
    elif not isinstance(obj, _SAFE_LEAVES):
        raise CheckpointError(
            f"checkpoint entry {where} is a {type(obj).__name__}; only tensors, numbers, strings, None and "
            "lists/tuples/dicts of them can be loaded with weights_only=True (convert it first)"
        )


def save_checkpoint(path: str | os.PathLike, **state) -> Path:
    """Write ``state`` to ``path`` atomically and return the path.

    The state is written to a temporary file in the same directory, flushed and fsync'ed, then moved
    over ``path`` with :func:`os.replace`: a crash at any moment leaves either the old file or the new
    one, never a torn one. Only tensors, numbers, strings, None and lists/tuples/dicts of them are
    accepted (CheckpointError otherwise), so the file always loads with ``weights_only=True``.

    Example:
        >>> import tempfile, os
        >>> p = save_checkpoint(os.path.join(tempfile.mkdtemp(), "w.pt"), weights=torch.ones(2), step=3)
        >>> load_checkpoint(p)["step"]
        3
    """
    _check_safe(state, "state")
    return atomic_write(path, lambda f: torch.save(state, f))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a fresh temporary file next to ``path``, fsync it and rename it to ``path``.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:  # exclusive create, permissions from the umask
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(..., weights_only=True)``.

    Raises FileNotFoundError if ``path`` does not exist and CheckpointError if it cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"could not load checkpoint {path}: {err}") from err


def check_model_matches(saved: dict, model: torch.nn.Module, source: str) -> None:
    """Raise CheckpointError naming missing, extra and mis-shaped entries unless ``saved`` fits ``model``."""
    current = model.state_dict()
    missing = [k for k in current if k not in saved]
    unexpected = [k for k in saved if k not in current]
    shapes = [
        f"{k}: checkpoint {tuple(saved[k].shape)} vs model {tuple(current[k].shape)}"
        for k in current
        if k in saved and tuple(saved[k].shape) != tuple(current[k].shape)
    ]
    problems = [
        f"{label} ({len(items)}): {', '.join(items[:5])}{', ...' if len(items) > 5 else ''}"
        for label, items in (
            ("missing from checkpoint", missing),
            ("unexpected in checkpoint", unexpected),
            ("shape mismatch", shapes),
        )
        if items
    ]
    if problems:
        raise CheckpointError(f"checkpoint {source} was written for a different model; " + "; ".join(problems))
