"""Composite Gauss-Legendre quadrature of elementwise functions from 0 to u (private)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["integrate_from_zero"]

_RTOL = {torch.float64: 1e-10, torch.float32: 1e-6}
_CHUNK_ELEMENTS = 1 << 22


def _composite_gauss_legendre(f, u: torch.Tensor, panels: int, nodes: int) -> torch.Tensor:
    """Evaluates f at all panels' nodes at once, in chunks of panels bounded to ~4M points."""
    xi, w = np.polynomial.legendre.leggauss(nodes)
    offsets = (np.arange(panels)[:, None] + 0.5 * (1.0 + xi)).ravel()  # node positions in panel units
    offsets = torch.as_tensor(offsets, dtype=u.dtype, device=u.device)
    weights = torch.as_tensor(np.tile(w, panels), dtype=u.dtype, device=u.device)
    h = u / panels
    step = max(nodes, _CHUNK_ELEMENTS // max(u.numel(), 1) // nodes * nodes)
    total = torch.zeros_like(u)
    for start in range(0, panels * nodes, step):
        t = h.unsqueeze(-1) * offsets[start:start + step]
        total = total + f(t) @ weights[start:start + step]
    return total * (0.5 * h)


def integrate_from_zero(f, u: torch.Tensor, panels: int = 8, nodes: int = 8, max_panels: int = 1024) -> torch.Tensor:
    """G(u) = int_0^u f(t) dt entrywise, for ``f`` acting entrywise on tensors shaped like ``u``.

    [0, u] is cut into equal panels with ``nodes`` Gauss-Legendre nodes each. Starting from ``panels``,
    the number of panels is doubled (without building autograd graphs) until two successive results
    agree to a dtype-dependent relative tolerance (1e-10 in float64, 1e-6 in float32) or ``max_panels``
    is reached; the result is then computed once more, differentiably, with that many panels.
    """
    if u.numel() == 0:
        return torch.zeros_like(u)
    rtol = _RTOL.get(u.dtype, 1e-3)
    with torch.no_grad():
        coarse = _composite_gauss_legendre(f, u, panels, nodes)
        while panels < max_panels:
            fine = _composite_gauss_legendre(f, u, 2 * panels, nodes)
            panels *= 2
            converged = float((fine - coarse).abs().max().detach()) <= rtol * (1.0 + float(fine.abs().max()))
            coarse = fine
            if converged:
                break
    if not torch.is_grad_enabled():
        return coarse
    return _composite_gauss_legendre(f, u, panels, nodes)
