"""Input checks shared by every public entry point (private)."""

from __future__ import annotations

import torch

__all__ = ["check_choice", "check_field_input", "check_finite", "check_positive_int"]


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise ValueError if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_choice(value: str, name: str, valid) -> str:
    """Raise ValueError naming the valid options if ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(sorted(valid))}")
    return value


def check_finite(x: torch.Tensor, name: str = "input") -> None:
    """Raise ValueError if ``x`` holds NaN or inf."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


def check_field_input(x, dim: int, reference: torch.Tensor | None = None, name: str = "x") -> None:
    """Validate a batch of points ``x`` of shape (..., dim) for a model whose parameters look like ``reference``.

    Raises ValueError naming what was expected and what was given, for: a non-tensor, a non-floating
    dtype, a wrong last dimension, a dtype or device different from the model's, NaN or inf entries.
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
    check_finite(x, name)
