"""Numerical building blocks shared by the domains (private): the core they all import, never the reverse."""

from __future__ import annotations

import torch

from ._validation import check_float_dtype, check_positive_int

__all__ = ["symplectic_form"]


def symplectic_form(dim: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """J = [[0, I], [-I, 0]] of size (dim, dim), dim = 2n, so that dz/dt = J grad H(z) for z = (q, p);
    ``dtype`` torch.float32 or torch.float64.

    Example:
        >>> symplectic_form(2)
        tensor([[ 0.,  1.],
                [-1.,  0.]], dtype=torch.float64)
    """
    check_positive_int(dim, "dim")
    if dim % 2:
        raise ValueError(f"dim must be even (the state size 2n of z = (q, p)), got {dim}")
    check_float_dtype(dtype)
    n = dim // 2
    eye = torch.eye(n, dtype=dtype, device=device)
    zero = torch.zeros(n, n, dtype=dtype, device=device)
    return torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)
