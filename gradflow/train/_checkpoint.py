"""Atomic, weights_only-safe, checksummed checkpoint files (private)."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import pickle
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch

__all__ = [
    "CheckpointError",
    "atomic_write",
    "atomic_write_text",
    "check_model_matches",
    "load_checkpoint",
    "save_checkpoint",
    "tensor_bytes",
]

_SAFE_LEAVES = (torch.Tensor, str, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)
_CHECKSUM_KEY = "gradflow_checksum"
_TMP_SUFFIX = r"\.[0-9a-f]{12}\.tmp"  # atomic_write's temporary names: .<name>.<12 hex digits>.tmp


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


def tensor_bytes(tensor: torch.Tensor):
    """The bytes of ``tensor``'s values (row-major, on the CPU) as a buffer for :mod:`hashlib`."""
    flat = tensor.detach().to("cpu")
    if flat.layout != torch.strided:
        flat = flat.to_dense()
    return flat.contiguous().reshape(-1).view(torch.uint8).numpy()


def _feed(digest, obj) -> None:
    """Hash ``obj`` (a checkpoint state) into ``digest``: structure, keys, leaf values and tensor bytes.

    Dicts and lists/tuples hash alike whatever their exact type, and tensors regardless of their
    device, so the digest of a loaded state equals that of the saved one.
    """
    if isinstance(obj, torch.Tensor):
        digest.update(f"tensor {obj.dtype} {tuple(obj.shape)};".encode())
        digest.update(tensor_bytes(obj))
    elif isinstance(obj, dict):
        digest.update(f"dict {len(obj)};".encode())
        for key, value in obj.items():
            digest.update(f"{type(key).__name__} {key!r};".encode())
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)) and not isinstance(obj, torch.Size):
        digest.update(f"seq {len(obj)};".encode())
        for value in obj:
            _feed(digest, value)
    else:
        digest.update(f"{type(obj).__name__} {obj!r};".encode())


def _checksum(state: dict) -> str:
    digest = hashlib.sha256()
    _feed(digest, state)
    return f"sha256:{digest.hexdigest()}"


def save_checkpoint(path: str | os.PathLike, **state) -> Path:
    """Write ``state`` to ``path`` atomically and return the path.

    The state is written to a temporary file in the same directory, flushed and fsync'ed, then moved
    over ``path`` with :func:`os.replace`: a crash at any moment leaves either the old file or the new
    one, never a torn one. Only tensors, numbers, strings, None and lists/tuples/dicts of them are
    accepted (CheckpointError otherwise), so the file always loads with ``weights_only=True``. A
    SHA-256 checksum of the state (structure, values and tensor bytes) is stored with it under the
    reserved key ``"gradflow_checksum"``; :func:`load_checkpoint` verifies and removes it.

    Example:
        >>> import tempfile, os
        >>> p = save_checkpoint(os.path.join(tempfile.mkdtemp(), "w.pt"), weights=torch.ones(2), step=3)
        >>> load_checkpoint(p)["step"]
        3
    """
    _check_safe(state, "state")
    if _CHECKSUM_KEY in state:
        raise CheckpointError(f"checkpoint key {_CHECKSUM_KEY!r} is reserved for the checksum gradflow stores")
    payload = {**state, _CHECKSUM_KEY: _checksum(state)}
    return atomic_write(path, lambda f: torch.save(payload, f))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a fresh temporary file next to ``path``, fsync it and rename it to ``path``.

    On any error the temporary file is removed and ``path`` is left as it was. After a successful
    write, temporary files of ``path`` left by earlier writes that were killed (named like ours and
    last modified before this write began) are removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
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
    _remove_stale_temporaries(path, started)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`: the output-file writer of the CLI (text,
    JSON, Markdown). Other formats pass a writer to :func:`atomic_write` itself, e.g.
    ``atomic_write(p, lambda f: np.save(f, array))`` or ``atomic_write(p, lambda f: image.save(f, format="PNG"))``.

    Example:
        >>> import tempfile, os
        >>> atomic_write_text(os.path.join(tempfile.mkdtemp(), "a.json"), "{}\\n").read_text()
        '{}\\n'
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _remove_stale_temporaries(path: Path, before: float) -> None:
    """Remove ``.<name>.<12 hex>.tmp`` files of ``path`` last modified before ``before`` (a time.time())."""
    pattern = re.compile(re.escape(f".{path.name}") + _TMP_SUFFIX)
    with os.scandir(path.parent) as entries:
        stale = [e.path for e in entries if pattern.fullmatch(e.name) and e.is_file() and e.stat().st_mtime < before]
    for name in stale:
        with contextlib.suppress(OSError):  # already gone, e.g. removed by a concurrent writer
            os.unlink(name)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(..., weights_only=True)``.

    Returns the state that was saved (the stored checksum is verified and removed). Files without a
    checksum (written by earlier gradflow versions) load unverified. Raises ValueError if ``path`` is not
    a str or os.PathLike, FileNotFoundError if it is not a file, and CheckpointError if it is truncated or
    corrupt (unreadable, or its contents do not match its checksum) or holds objects that a weights_only
    load refuses.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"no checkpoint at {path} (path {problem})")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise _load_error(path, err) from err
    if isinstance(state, dict) and _CHECKSUM_KEY in state:
        stored = state.pop(_CHECKSUM_KEY)
        if _checksum(state) != stored:
            raise CheckpointError(f"{path} is corrupt: its contents do not match the checksum stored in it")
    return state


def _load_error(path: Path, err: Exception) -> CheckpointError:
    """The CheckpointError for a failed load: objects a weights_only load refuses, or a truncated/corrupt file.

    The detail is the unpickler's reason or the first sentence of the reader's message, never torch's
    advice to load the file without ``weights_only``.
    """
    text = str(err)
    if isinstance(err, pickle.UnpicklingError) and "WeightsUnpickler error:" in text:
        reason = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0].split(" by default.")[0]
        if "GLOBAL" in reason or "allowlisted" in reason:
            return CheckpointError(
                f"{path} holds objects other than tensors, numbers, strings, None and lists/tuples/dicts of them, "
                f"which gradflow does not load: {reason}"
            )
    else:
        reason = text.split(". ")[0]  # torch's zip reader appends generic advice after the first sentence
    return CheckpointError(f"{path} is not a readable gradflow checkpoint (truncated or corrupt): {reason}")


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
