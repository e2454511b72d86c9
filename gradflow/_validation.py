"""Input checks shared by every public entry point (private)."""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "check_choice",
    "check_field_input",
    "check_finite",
    "check_float_dtype",
    "check_number",
    "check_positive_int",
    "check_seed",
    "from_numpy",
]


#: the largest integer option gradflow takes: torch's int64 range (larger ones fail inside torch)
MAX_INT = 2**63 - 1


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise ValueError if it is not an integer in [``minimum``, 2**63 - 1]."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_INT:
        raise ValueError(f"{name} must be an integer >= {minimum} (and <= 2**63 - 1), got {value!r}")
    return value


def check_seed(value, name: str = "seed") -> int:
    """Return ``value`` if it is an integer in [0, 2**63) (what torch, NumPy and ``random`` all accept),
    else raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"{name} must be an integer in [0, 2**63), got {value!r}")
    return value


def check_choice(value: str, name: str, valid) -> str:
    """Raise ValueError naming the valid options if ``value`` is not one of them (an unhashable ``value``,
    e.g. a list, is not one of them either)."""
    try:
        known = value in valid
    except TypeError:
        known = False
    if not known:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(sorted(valid))}")
    return value


def check_finite(x: torch.Tensor, name: str = "input") -> None:
    """Raise ValueError if ``x`` holds NaN or inf. Skipped while ``torch.compile`` traces and for the wrapped
    tensors of ``torch.func`` transforms (vmap, grad, jacrev), where reading a value is a graph break or an
    error: a transformed or compiled call is checked by its caller's own entry point."""
    if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x):
        return
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


def check_field_input(x, dim: int, reference: torch.Tensor | None = None, name: str = "x", *,
                      finite: bool = True) -> None:
    """Validate a batch of points ``x`` of shape (..., dim) for a model whose parameters look like ``reference``.

    Raises ValueError naming what was expected and what was given, for: a non-tensor, a non-floating
    dtype, a wrong last dimension, a dtype or device different from the model's, NaN or inf entries.
    ``finite=False`` skips the NaN/inf check, the only one that costs a device sync (for a model's
    per-step forward whose inner potential, or whose entry point, checks finiteness).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (..., {dim}), got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (float32 or float64), got dtype {x.dtype}")
    if x.ndim == 0 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., {dim}), got {tuple(x.shape)}")
    if reference is not None:
        if x.dtype != reference.dtype:
            raise ValueError(
                f"{name} has dtype {x.dtype} but the model's parameters are {reference.dtype}; "
                f"convert one of them (e.g. model.to({x.dtype}))"
            )
        if x.device != reference.device:
            raise ValueError(
                f"{name} is on {x.device} but the model's parameters are on {reference.device}; "
                "move one of them"
            )
    if finite:
        check_finite(x, name)


def check_number(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 strict: bool = False) -> float:
    """Return ``value`` as a finite float, or raise ValueError naming ``name`` and the expected range.

    ``minimum`` is a lower bound (exclusive when ``strict``, inclusive otherwise), ``maximum`` an inclusive
    upper bound. NaN, inf, booleans and non-numbers are rejected.
    """
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if strict else '>='} {minimum:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    expected = f"a finite number{' ' + ' and '.join(bounds) if bounds else ''}"
    if isinstance(value, (bool, complex, str, bytes)):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be {expected}, got {value!r}") from None
    ok = math.isfinite(number)
    if ok and minimum is not None:
        ok = number > minimum if strict else number >= minimum
    if ok and maximum is not None:
        ok = number <= maximum
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return number


def check_float_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """Raise ValueError unless ``dtype`` is torch.float32 or torch.float64 (the dtypes gradflow computes in)."""
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def from_numpy(x, like: torch.Tensor | None = None):
    """A NumPy array as a torch tensor (the boundary conversion of data arguments), anything else unchanged
    (for the caller's own checks to judge). With ``like``, a floating-point array takes ``like``'s dtype and
    device (a fitted model's); without it the array's dtype is kept (float64 stays float64).

    Example:
        >>> import numpy as np
        >>> from_numpy(np.zeros((2, 3))).dtype, from_numpy(np.zeros(2), like=torch.zeros(1)).dtype
        (torch.float64, torch.float32)
    """
    if not isinstance(x, np.ndarray):
        return x
    if like is not None and np.issubdtype(x.dtype, np.floating):
        return torch.as_tensor(x, dtype=like.dtype, device=like.device)
    return torch.from_numpy(np.ascontiguousarray(x))
