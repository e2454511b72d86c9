"""Public invariant checks for vector fields and potentials (in the spirit of e3nn's assert_equivariant).

Each ``assert_*`` raises AssertionError carrying the measured defect, with tolerances chosen from the
input's dtype (see :data:`TOLERANCES`) unless given. Jacobians are taken with autograd on the field
itself, so the checks test the field, not a model's own (possibly wrong) ``jacobian``.

Example:
    >>> from gradflow.potentials import MGradNetM
    >>> net = MGradNetM(3).double()
    >>> x = torch.randn(16, 3, dtype=torch.float64)
    >>> assert_conservative(net, x); assert_monotone(net, x); assert_energy_consistent(net, x)
"""

from __future__ import annotations

import torch

from ._numerics import symplectic_form
from ._validation import check_finite, check_number, check_positive_int
from .potentials import autograd_gradient, autograd_jacobian

__all__ = [
    "TOLERANCES",
    "assert_adjoint",
    "assert_conservative",
    "assert_energy_consistent",
    "assert_inverse",
    "assert_jacobian_consistent",
    "assert_lipschitz_bound",
    "assert_monotone",
    "assert_symplectic",
    "tolerance",
]

#: dtype -> (rtol, atol) used when a check is not given explicit tolerances.
TOLERANCES = {
    torch.float64: (1e-7, 1e-9),
    torch.float32: (1e-4, 1e-5),
    torch.bfloat16: (5e-2, 5e-2),
    torch.float16: (1e-2, 1e-3),
}


def tolerance(dtype: torch.dtype, rtol: float | None = None, atol: float | None = None) -> tuple[float, float]:
    """(rtol, atol) for ``dtype``, overridden by any value given (finite numbers >= 0; ValueError otherwise)."""
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype must be a torch.dtype, got {dtype!r}")
    if rtol is not None:
        rtol = check_number(rtol, "rtol", minimum=0.0)
    if atol is not None:
        atol = check_number(atol, "atol", minimum=0.0)
    default_rtol, default_atol = TOLERANCES.get(dtype, TOLERANCES[torch.float32])
    return (default_rtol if rtol is None else rtol), (default_atol if atol is None else atol)


def _check(field, x, *, field_name: str = "field", x_name: str = "x", method: str | None = None) -> None:
    """ValueError naming the argument unless ``field`` is callable (and has a callable ``method``) and ``x`` is
    a non-empty finite floating-point tensor."""
    if not callable(field):
        raise ValueError(f"{field_name} must be callable (a field or a model), got {type(field).__name__}")
    if method is not None and not callable(getattr(field, method, None)):
        raise ValueError(f"{field_name} must have a {method}() method (e.g. a gradflow "
                         f"{'MonotonePotential' if method == 'inverse' else 'Potential'}), got {type(field).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim == 0 or x.numel() == 0:
        desc = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{x_name} must be a non-empty floating-point tensor of points (..., d), got {desc}")
    check_finite(x, x_name)


def _max_rel_error(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> tuple[float, bool]:
    """Worst |a - b| and whether |a - b| <= atol + rtol |b| holds everywhere."""
    err = (a - b).abs()
    ok = bool((err <= atol + rtol * b.abs()).all())
    return float(err.max()) if err.numel() else 0.0, ok


def _field_jacobian(field, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return autograd_jacobian(field, x)


def assert_conservative(field, x: torch.Tensor, rtol: float | None = None, atol: float | None = None) -> None:
    """Assert the Jacobian of ``field`` at the points ``x`` (..., d) is symmetric, i.e. the field is a
    gradient there: ``max |J - J^T| <= atol + rtol max|J|``."""
    _check(field, x)
    rtol, atol = tolerance(x.dtype, rtol, atol)
    J = _field_jacobian(field, x)
    asym = float((J - J.mT).abs().max())
    scale = float(J.abs().max())
    if asym > atol + rtol * scale:
        raise AssertionError(
            f"field is not conservative: max |J - J^T| = {asym:.3g} exceeds {atol + rtol * scale:.3g} "
            f"(max |J| = {scale:.3g})"
        )


def assert_monotone(field, x: torch.Tensor, rtol: float | None = None, atol: float | None = None) -> None:
    """Assert the symmetric part of the Jacobian of ``field`` at ``x`` is PSD (the field is monotone):
    min eigenvalue of (J + J^T)/2 >= -(atol + rtol max|J|)."""
    _check(field, x)
    rtol, atol = tolerance(x.dtype, rtol, atol)
    J = _field_jacobian(field, x)
    lam_min = float(torch.linalg.eigvalsh(0.5 * (J + J.mT)).min())
    scale = float(J.abs().max())
    if lam_min < -(atol + rtol * scale):
        raise AssertionError(
            f"field is not monotone: min eigenvalue of sym(J) = {lam_min:.3g} < -{atol + rtol * scale:.3g}"
        )


def assert_energy_consistent(potential, x: torch.Tensor, rtol: float | None = None,
                             atol: float | None = None) -> None:
    """Assert autograd of ``potential.energy`` equals ``potential(x)`` at the points ``x``."""
    _check(potential, x, field_name="potential", method="energy")
    rtol, atol = tolerance(x.dtype, rtol, atol)
    with torch.no_grad():
        field = potential(x)
        grad = autograd_gradient(potential.energy, x)
    err, ok = _max_rel_error(grad, field, rtol, atol)
    if not ok:
        raise AssertionError(f"energy is inconsistent with the field: max |grad energy - field| = {err:.3g}")


def assert_jacobian_consistent(potential, x: torch.Tensor, rtol: float | None = None,
                               atol: float | None = None) -> None:
    """Assert ``potential.jacobian(x)`` equals the autograd Jacobian of ``potential`` at ``x``."""
    _check(potential, x, field_name="potential", method="jacobian")
    rtol, atol = tolerance(x.dtype, rtol, atol)
    with torch.no_grad():
        J = potential.jacobian(x)
    err, ok = _max_rel_error(J, _field_jacobian(potential, x), rtol, atol)
    if not ok:
        raise AssertionError(f"jacobian is inconsistent with autograd: max abs error {err:.3g}")


def assert_inverse(potential, y: torch.Tensor, rtol: float | None = None, atol: float | None = None,
                   **inverse_options) -> None:
    """Assert ``potential(potential.inverse(y)) == y``: the inverse really solves grad psi(x) = y."""
    _check(potential, y, field_name="potential", x_name="y", method="inverse")
    rtol, atol = tolerance(y.dtype, rtol, atol)
    with torch.no_grad():
        x = potential.inverse(y, **inverse_options)
        err, ok = _max_rel_error(potential(x), y, rtol, atol)
    if not ok:
        raise AssertionError(f"inverse does not invert the field: max |grad psi(inverse(y)) - y| = {err:.3g}")


def assert_symplectic(step, z: torch.Tensor, rtol: float | None = None, atol: float | None = None) -> None:
    """Assert the map ``step``: R^2n -> R^2n (e.g. one integrator step) is symplectic at the point z (2n,):
    its Jacobian M satisfies M^T J M = J with J = [[0, I], [-I, 0]], to atol + rtol max|M|^2."""
    _check(step, z, field_name="step", x_name="z")
    rtol, atol = tolerance(z.dtype, rtol, atol)
    if z.ndim != 1 or z.shape[0] % 2:
        raise ValueError(f"z must be one state of even size (2n,), got shape {tuple(z.shape)}")
    M = torch.autograd.functional.jacobian(step, z).detach()
    J = symplectic_form(z.shape[0], dtype=z.dtype, device=z.device)
    defect = float((M.mT @ J @ M - J).abs().max())
    bound = atol + rtol * float(M.abs().max()) ** 2
    if defect > bound:
        raise AssertionError(f"map is not symplectic: max |M^T J M - J| = {defect:.3g} exceeds {bound:.3g}")


def _inner(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Real inner product per sample (first dimension), shape (B,): Re sum conj(u) v."""
    prod = (u.conj() * v).real if (u.is_complex() or v.is_complex()) else u * v
    return prod.reshape(prod.shape[0], -1).sum(1)


def assert_adjoint(operator, x: torch.Tensor, y: torch.Tensor | None = None, rtol: float | None = None,
                   atol: float | None = None) -> None:
    """Assert ``operator.adjoint`` is the adjoint of ``operator`` at the inputs ``x`` (B, ...): per sample,
    ``|<A x, y> - <x, A^T y>| <= atol + rtol ||A x|| ||y||``, with measurements ``y`` shaped like ``A(x)`` (default:
    standard normal ones from a fixed seed). Real inner products (the real part for complex measurements).

    Example:
        >>> from gradflow.inverse import Blur, gaussian_kernel
        >>> assert_adjoint(Blur(gaussian_kernel(1.5)).double(), torch.rand(2, 1, 16, 16, dtype=torch.float64))
    """
    _check(operator, x, field_name="operator", method="adjoint")
    if x.ndim < 2:
        raise ValueError(f"x must be a batch of inputs (B, ...) with at least 2 dimensions, got shape {tuple(x.shape)}")
    rtol, atol = tolerance(x.dtype, rtol, atol)
    with torch.no_grad():
        ax = operator(x)
        if y is None:
            gen = torch.Generator(device=ax.device).manual_seed(0)
            y = torch.randn(ax.shape, generator=gen, dtype=ax.dtype, device=ax.device)
        elif not isinstance(y, torch.Tensor) or y.shape != ax.shape:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"y must be a tensor shaped like operator(x) {tuple(ax.shape)}, got {got}")
        aty = operator.adjoint(y)
        if aty.shape != x.shape:
            raise AssertionError(f"adjoint(y) has shape {tuple(aty.shape)}, not the input shape {tuple(x.shape)}")
        defect = (_inner(ax, y) - _inner(x, aty)).abs()
        scale = ax.reshape(len(ax), -1).norm(dim=1) * y.reshape(len(y), -1).norm(dim=1)
    worst = int((defect - atol - rtol * scale).argmax())
    if float(defect[worst]) > atol + rtol * float(scale[worst]):
        raise AssertionError(f"adjoint is not the adjoint: |<A x, y> - <x, A^T y>| = {float(defect[worst]):.3g} "
                             f"for sample {worst}, above {atol + rtol * float(scale[worst]):.3g}")


def assert_lipschitz_bound(field, x: torch.Tensor, bound: float | None = None, rtol: float | None = None,
                           atol: float | None = None, iterations: int = 30) -> None:
    """Assert the Jacobian of ``field`` at the inputs ``x`` has spectral norm at most ``bound`` (default:
    ``field.lipschitz_bound()``, the certificate of gradflow's monotone nets and convex priors), i.e. no point
    of ``x`` contradicts that ``field`` is ``bound``-Lipschitz: ||J(x)||_2 <= bound (1 + rtol) + atol.

    ||J||_2 is estimated by ``iterations`` power iterations on J^T J with autograd (Jacobian-vector products
    by double backward), over the whole batch at once: for a field acting per sample the estimate tends to the
    largest norm among the samples. The estimate never exceeds the true norm, so a failure is a real violation.

    Example:
        >>> from gradflow.potentials import MGradNetM
        >>> net = MGradNetM(3).double()
        >>> assert_lipschitz_bound(net, torch.randn(64, 3, dtype=torch.float64))
    """
    _check(field, x)
    if bound is None:
        if not callable(getattr(field, "lipschitz_bound", None)):
            raise ValueError(f"field ({type(field).__name__}) has no lipschitz_bound() method: pass bound")
        with torch.no_grad():
            bound = float(field.lipschitz_bound())
    bound = check_number(bound, "bound", minimum=0.0)
    iterations = check_positive_int(iterations, "iterations")
    rtol, atol = tolerance(x.dtype, rtol, atol)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = field(x)
        u = torch.zeros_like(out, requires_grad=True)
        vjp = torch.autograd.grad(out, x, u, create_graph=True)[0]  # J^T u, linear in u
        gen = torch.Generator(device=x.device).manual_seed(0)
        v = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        norm = 0.0
        for _ in range(iterations):
            v = v / v.norm()
            jv = torch.autograd.grad(vjp, u, v, retain_graph=True)[0]  # J v
            norm = float(jv.norm())
            v = torch.autograd.grad(out, x, jv, retain_graph=True)[0]  # J^T J v
            if float(v.norm()) == 0.0:
                break
    if norm > bound * (1.0 + rtol) + atol:
        raise AssertionError(f"field exceeds its Lipschitz bound: ||J(x)||_2 >= {norm:.6g} > bound {bound:.6g}")
