"""Input checks for images and measurements (private)."""

from __future__ import annotations

import contextlib
import contextvars

import torch

from .._validation import check_finite, check_number

__all__ = ["check_image", "check_lam", "check_like", "check_measurement", "inputs_checked"]

#: False inside :func:`inputs_checked`: image and measurement checks then skip the NaN/inf test
_CHECK_FINITE = contextvars.ContextVar("gradflow_inverse_check_finite", default=True)


@contextlib.contextmanager
def inputs_checked():
    """Within this context :func:`check_image` and :func:`check_measurement` check types and shapes only, not
    finiteness (a device sync per call): for a solver's iterations, whose inputs were checked once at its entry
    and whose divergence guard catches non-finite iterates."""
    token = _CHECK_FINITE.set(False)
    try:
        yield
    finally:
        _CHECK_FINITE.reset(token)


def check_image(x, name: str = "x", channels: int | None = None) -> torch.Tensor:
    """Validate an image batch of shape (B, C, H, W): a finite floating-point tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor (float32 or float64), got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W) (rank 4), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channel(s), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if _CHECK_FINITE.get():
        check_finite(x, name)
    return x


def check_measurement(y, name: str = "y") -> torch.Tensor:
    """Validate a measurement: a finite, non-empty floating-point or complex tensor."""
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if not (y.is_floating_point() or y.is_complex()):
        raise ValueError(f"{name} must be a floating-point or complex tensor, got dtype {y.dtype}")
    if y.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(y.shape)}")
    if _CHECK_FINITE.get():
        check_finite(y, name)
    return y


def check_like(x: torch.Tensor, reference: torch.Tensor, name: str, what: str) -> None:
    """Raise ValueError if ``x`` does not share the dtype and device of ``reference`` (a parameter or buffer)."""
    real = x.real.dtype if x.is_complex() else x.dtype
    ref = reference.real.dtype if reference.is_complex() else reference.dtype
    if real != ref:
        raise ValueError(f"{name} has dtype {x.dtype} but the {what} is {ref}; convert one of them (e.g. .to({real}))")
    if x.device != reference.device:
        raise ValueError(f"{name} is on {x.device} but the {what} is on {reference.device}; move one of them")


def check_lam(lam, name: str = "lam") -> float:
    """A regularisation weight: a finite number >= 0 (0: no regularisation)."""
    return check_number(lam, name, minimum=0.0)
