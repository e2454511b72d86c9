"""Devices, seeding and weights_only-safe RNG snapshots (private)."""

from __future__ import annotations

import contextlib
import hashlib
import random

import numpy as np
import torch

from .._validation import check_seed

__all__ = [
    "derive_seed",
    "deterministic_algorithms",
    "get_rng_state",
    "preserved_rng_state",
    "resolve_device",
    "seed_everything",
    "set_rng_state",
]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, a device string or a :class:`torch.device` into an available ``torch.device``.

    ``"auto"`` is ``cuda`` when CUDA is available, else ``cpu``. Asking for CUDA (``"cuda"``,
    ``"cuda:1"``) on a machine without it, or for a CUDA index that does not exist, raises ValueError.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device) with ``seed``.

    Example:
        >>> seed_everything(0); a = torch.rand(1); seed_everything(0)
        >>> bool(torch.rand(1) == a)
        True
    """
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (fit seeds the global RNG on purpose)
    torch.manual_seed(seed)


def derive_seed(seed: int, *parts) -> int:
    """A 63-bit seed hashed from ``seed`` and ``parts`` (e.g. ``"perm", epoch``): one stream per use."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool):
    """Within the block, use deterministic kernels (warn-only) and deterministic cuDNN; restore afterwards."""
    if not enabled:
        yield
        return
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[2], previous[3]


@contextlib.contextmanager
def preserved_rng_state():
    """Within the block the global RNGs may be reseeded and drawn from; on exit (also on error) they are reset.

    Restores Python's ``random``, NumPy's global RNG, torch's CPU generator and, if CUDA was initialised
    when the block began, every CUDA device's generator to their states at the start of the block.
    """
    cuda = torch.cuda.is_initialized()
    saved = (
        random.getstate(),
        np.random.get_state(),  # noqa: NPY002 (the caller's global NumPy RNG)
        torch.get_rng_state(),
        torch.cuda.get_rng_state_all() if cuda else None,
    )
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])  # noqa: NPY002
        torch.set_rng_state(saved[2])
        if cuda:
            torch.cuda.set_rng_state_all(saved[3])


def get_rng_state(device: torch.device) -> dict:
    """Snapshot of the global RNGs (torch CPU, ``device``'s CUDA RNG, ``random``, NumPy).

    The result contains nothing but tensors, strings and numbers, so it survives
    ``torch.load(..., weights_only=True)``.
    """
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)  # noqa: NPY002
    state = {
        "torch": torch.get_rng_state(),
        "python": {
            "version": py_version,
            "state": torch.tensor(py_internal, dtype=torch.int64),
            "gauss": py_gauss,
        },
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore a snapshot taken by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (nps["name"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"], nps["gauss"])
    )
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
