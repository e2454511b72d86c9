r"""Forward operators of linear inverse problems y = A x + noise, each with an exact adjoint.

Every operator maps an image batch x of shape (B, C, H, W) (float32 or float64, any device) to a
measurement ``A(x)`` and a measurement back with ``adjoint`` (A^T, exact: <A u, v> = <u, A^T v> up to
rounding, tested in float64). Kernels, masks and matrices are buffers, used in the input's dtype and
device. ``lipschitz()`` is ||A^T A||_2 by power iteration (times a small safety margin), the constant the
solvers' step sizes need; ``data_prox`` is the proximal map of 1/2 ||A x - y||^2.

Example:
    >>> op = Blur(gaussian_kernel(1.5))
    >>> x = torch.rand(2, 1, 32, 32)
    >>> op(x).shape, op.adjoint(op(x)).shape
    (torch.Size([2, 1, 32, 32]), torch.Size([2, 1, 32, 32]))
"""

from __future__ import annotations

import math
from operator import index as _as_index

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_finite, check_float_dtype, check_number, check_positive_int, check_seed, from_numpy
from ._checks import check_image, check_measurement

__all__ = [
    "MRI",
    "Blur",
    "CompressedSensing",
    "Denoising",
    "Downsampling",
    "Inpainting",
    "LinearOperator",
    "gaussian_kernel",
    "motion_kernel",
]


def _as_float_tensor(value, name: str) -> torch.Tensor:
    """``value`` (a tensor or a NumPy array) as a finite, non-empty real tensor (float64 stays float64, any
    other dtype, e.g. a boolean or 0/1 integer mask, becomes float32)."""
    t = from_numpy(value)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (or a NumPy array), got {type(value).__name__}")
    if t.is_complex():
        raise ValueError(f"{name} must be real, got dtype {t.dtype}")
    t = t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)
    if t.numel() == 0:
        raise ValueError(f"{name} is empty")
    check_finite(t, name)
    return t


def _dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-sample real inner product over all but the first dimension, shape (B, 1, ..., 1)."""
    prod = (u.conj() * v).real if (u.is_complex() or v.is_complex()) else u * v
    return prod.flatten(1).sum(1).view(-1, *([1] * (u.ndim - 1)))


class LinearOperator(nn.Module):
    """A linear map A from images (B, C, H, W) to measurements, with its exact adjoint.

    Subclasses implement ``_forward`` and ``_adjoint`` (inputs already validated) and set
    ``input_shape`` = (C, H, W) when the operator only acts on one image size.
    """

    input_shape: tuple[int, int, int] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x for images x (B, C, H, W)."""
        check_image(x, "x")
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        return self._forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T y for a batch of measurements y, shaped like ``A(x)``."""
        check_measurement(y, "y")
        return self._adjoint(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """A^T A x."""
        return self.adjoint(self(x))

    def measure(self, x: torch.Tensor, sigma: float = 0.0, generator: torch.Generator | None = None):
        """y = A x + sigma n with standard Gaussian (complex: circular, unit variance per entry) noise n."""
        if not (sigma >= 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
        y = self(x)
        if sigma == 0:
            return y
        if y.is_complex():
            re = torch.randn(y.shape, generator=generator, dtype=y.real.dtype).to(y.device)
            im = torch.randn(y.shape, generator=generator, dtype=y.real.dtype).to(y.device)
            return y + sigma * torch.complex(re, im) / math.sqrt(2.0)
        return y + sigma * torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)

    def _probe_shape(self, shape) -> tuple[int, int, int]:
        if shape is None:
            shape = self.input_shape
        if shape is None:
            raise ValueError(f"{type(self).__name__} acts on any image size: pass shape=(C, H, W)")
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape must be (C, H, W) with positive entries, got {shape}")
        return shape

    def _reference(self) -> torch.Tensor | None:
        return next(iter(self.buffers()), None)

    @staticmethod
    def _check_lipschitz_options(n_iter, tol, safety, seed) -> None:
        """The options of :meth:`lipschitz`, checked by every override (closed-form ones ignore their values
        but still refuse invalid ones)."""
        check_positive_int(n_iter, "n_iter")
        check_number(tol, "tol", minimum=0.0, strict=True)
        check_number(safety, "safety", minimum=1.0)
        try:
            _as_index(seed)
        except TypeError:
            raise ValueError(f"seed must be an integer, got {seed!r}") from None

    def _check_prox_arguments(self, z, y, tau) -> float:
        """Validate the arguments of :meth:`data_prox` (shared by the closed-form overrides)."""
        check_image(z, "z")
        check_measurement(y, "y")
        return check_number(tau, "tau", minimum=0.0, strict=True)

    @torch.no_grad()
    def lipschitz(self, shape=None, *, n_iter: int = 200, tol: float = 1e-7, safety: float = 1.01,
                  seed: int = 0) -> float:
        """A bound on ||A^T A||_2 = ||A||_2^2 for images of ``shape`` (C, H, W) (default: ``input_shape``).

        Power iteration on A^T A in float64 from a seeded random start, stopped when the Rayleigh
        quotient changes by less than ``tol`` (relative), then multiplied by ``safety`` >= 1 (power
        iteration approaches the top eigenvalue from below). This is the Lipschitz constant of the
        gradient of the data term 1/2 ||A x - y||^2.
        """
        shape = self._probe_shape(shape)
        self._check_lipschitz_options(n_iter, tol, safety, seed)
        ref = self._reference()
        device = ref.device if ref is not None else torch.device("cpu")
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((1, *shape), generator=gen, dtype=torch.float64).to(device)
        x = x / x.norm()
        value = 0.0
        for _ in range(n_iter):
            z = self._adjoint(self._forward(x))
            new = float(_dot(x, z).item())
            norm = z.norm()
            if float(norm) == 0.0:
                return 0.0
            x = z / norm
            if abs(new - value) <= tol * abs(new):
                value = new
                break
            value = new
        return value * safety

    def data_prox(self, z: torch.Tensor, y: torch.Tensor, tau: float, *, tol: float = 1e-6,
                  max_iter: int = 200) -> torch.Tensor:
        """argmin_x 1/2 ||A x - y||^2 + 1/(2 tau) ||x - z||^2 = (I + tau A^T A)^{-1} (z + tau A^T y).

        Solved by conjugate gradients to a relative residual ``tol`` (closed form for diagonal A^T A).
        ``z`` and ``y`` must be finite, ``tau`` a finite number > 0.
        """
        tau = self._check_prox_arguments(z, y, tau)
        check_number(tol, "tol", minimum=0.0, strict=True)
        check_positive_int(max_iter, "max_iter")
        rhs = z + tau * self.adjoint(y)
        x = z.clone()
        r = rhs - (x + tau * self._adjoint(self._forward(x)))
        p = r.clone()
        rr = _dot(r, r)
        stop = (tol * rhs.flatten(1).norm(dim=1)).square().view_as(rr)
        for _ in range(max_iter):
            if bool((rr <= stop).all()):
                break
            Ap = p + tau * self._adjoint(self._forward(p))
            alpha = rr / _dot(p, Ap).clamp_min(torch.finfo(p.dtype).tiny)
            x = x + alpha * p
            r = r - alpha * Ap
            rr_new = _dot(r, r)
            p = r + (rr_new / rr.clamp_min(torch.finfo(p.dtype).tiny)) * p
            rr = rr_new
        return x


class Denoising(LinearOperator):
    """The identity: y = x + noise."""

    def _forward(self, x):
        return x.clone()

    def _adjoint(self, y):
        return y.clone()

    def lipschitz(self, shape=None, *, n_iter: int = 200, tol: float = 1e-7, safety: float = 1.01,
                  seed: int = 0) -> float:
        """||I||^2 = 1 (exact; the power-iteration options are checked but not needed)."""
        self._check_lipschitz_options(n_iter, tol, safety, seed)
        return 1.0

    def data_prox(self, z, y, tau, *, tol: float = 1e-6, max_iter: int = 200):
        """(z + tau y) / (1 + tau) (closed form; ``tol`` and ``max_iter`` are not needed)."""
        tau = self._check_prox_arguments(z, y, tau)
        if y.shape != z.shape:
            raise ValueError(f"y must have the shape of z {tuple(z.shape)}, got {tuple(y.shape)}")
        return (z + tau * y) / (1.0 + tau)


def gaussian_kernel(sigma: float, size: int | None = None, dtype=torch.float32) -> torch.Tensor:
    """Normalised isotropic Gaussian blur kernel (size, size), size odd (default 2 ceil(3 sigma) + 1).

    Example:
        >>> k = gaussian_kernel(1.0); k.shape, round(float(k.sum()), 6)
        (torch.Size([7, 7]), 1.0)
    """
    sigma = check_number(sigma, "sigma", minimum=0.0, strict=True)
    check_float_dtype(dtype)
    size = 2 * math.ceil(3 * sigma) + 1 if size is None else check_positive_int(size, "size")
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    k = g[:, None] * g[None, :]
    return (k / k.sum()).to(dtype)


def motion_kernel(length: float, angle: float = 0.0, size: int | None = None, dtype=torch.float32) -> torch.Tensor:
    """Normalised linear motion blur: a segment of ``length`` pixels at ``angle`` degrees, antialiased.

    The segment, centred in a (size, size) grid (default: the smallest odd size holding it), is sampled
    at 16 points per pixel and splatted bilinearly.

    Example:
        >>> motion_kernel(7, 45).shape
        torch.Size([7, 7])
    """
    length = check_number(length, "length", minimum=1.0)
    angle = check_number(angle, "angle")
    check_float_dtype(dtype)
    theta = math.radians(angle)
    if size is None:
        extent = (length - 1) * max(abs(math.cos(theta)), abs(math.sin(theta)))
        size = 2 * math.ceil(round(extent, 9) / 2) + 1
    size = check_positive_int(size, "size")
    n = max(2, int(16 * length))
    s = torch.linspace(-(length - 1) / 2, (length - 1) / 2, n, dtype=torch.float64)
    c = (size - 1) / 2
    px, py = c + s * math.cos(theta), c - s * math.sin(theta)
    k = torch.zeros(size, size, dtype=torch.float64)
    x0, y0 = px.floor(), py.floor()
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            w = (1 - (px - xi).abs()) * (1 - (py - yi).abs())
            inside = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
            k.index_put_((yi[inside].long(), xi[inside].long()), w[inside], accumulate=True)
    return (k / k.sum()).to(dtype)


def _check_kernel(kernel) -> torch.Tensor:
    k = _as_float_tensor(kernel, "kernel")
    if k.ndim != 2:
        raise ValueError(f"kernel must be a 2-D tensor (kh, kw), got shape {tuple(k.shape)}")
    if not bool(k.abs().sum() > 0):
        raise ValueError("kernel is all zeros")
    return k


class Blur(LinearOperator):
    """Convolution of every channel with ``kernel`` (kh, kw), zero boundary, output the size of the input.

    A x = k * x (true convolution, "same" size: the kernel's centre is at ((kh-1)//2, (kw-1)//2));
    A^T is the correlation with k, i.e. ``conv_transpose2d`` with the same weights, cropped.
    """

    def __init__(self, kernel):
        super().__init__()
        self.register_buffer("kernel", _check_kernel(kernel))

    def _check_size(self, x):
        kh, kw = self.kernel.shape
        if kh > x.shape[-2] or kw > x.shape[-1]:
            raise ValueError(f"kernel {kh}x{kw} is larger than the image {x.shape[-2]}x{x.shape[-1]}")

    def _weight(self, x):
        k = self.kernel.flip(0, 1).to(dtype=x.real.dtype if x.is_complex() else x.dtype, device=x.device)
        return k.expand(x.shape[1], 1, *k.shape)

    def _pads(self):
        kh, kw = self.kernel.shape
        top, left = (kh - 1) // 2, (kw - 1) // 2
        return top, kh - 1 - top, left, kw - 1 - left

    def _forward(self, x):
        self._check_size(x)
        top, bottom, left, right = self._pads()
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self._weight(x), groups=x.shape[1])

    def _adjoint(self, y):
        if y.ndim != 4 or not y.is_floating_point():
            raise ValueError(f"y must be a real tensor of shape (B, C, H, W), got {tuple(y.shape)} {y.dtype}")
        self._check_size(y)
        top, _, left, _ = self._pads()
        full = F.conv_transpose2d(y, self._weight(y), groups=y.shape[1])
        return full[..., top:top + y.shape[-2], left:left + y.shape[-1]]


class Downsampling(LinearOperator):
    """Super-resolution: antialiasing blur then keeping every ``factor``-th pixel, A = S_f B_k.

    ``kernel`` defaults to :func:`gaussian_kernel` with sigma = factor / 2. H and W must be multiples
    of ``factor``; A^T puts the low-resolution pixels back on the fine grid (zeros elsewhere) and
    applies B_k^T.
    """

    def __init__(self, factor: int = 2, kernel=None):
        super().__init__()
        self.factor = check_positive_int(factor, "factor")
        self.blur = Blur(gaussian_kernel(factor / 2) if kernel is None else kernel)

    def _forward(self, x):
        f = self.factor
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"image size {x.shape[-2]}x{x.shape[-1]} is not a multiple of factor {f}")
        return self.blur._forward(x)[..., ::f, ::f]

    def _adjoint(self, y):
        if y.ndim != 4 or not y.is_floating_point():
            raise ValueError(f"y must be a real tensor of shape (B, C, h, w), got {tuple(y.shape)} {y.dtype}")
        f = self.factor
        up = y.new_zeros(*y.shape[:2], y.shape[-2] * f, y.shape[-1] * f)
        up[..., ::f, ::f] = y
        return self.blur._adjoint(up)


def _check_mask(mask, name: str = "mask") -> torch.Tensor:
    m = _as_float_tensor(mask, name)
    if m.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (H, W) or (C, H, W), got {tuple(m.shape)}")
    if bool((m < 0).any()) or bool((m > 1).any()):
        raise ValueError(f"{name} values must lie in [0, 1] (1 = observed, 0 = missing, in between = partially "
                         f"observed), got values in [{float(m.min()):g}, {float(m.max()):g}]")
    return m


class Inpainting(LinearOperator):
    """Pixel mask: A x = m * x with ``mask`` m of shape (H, W) or (C, H, W) (1 = observed), broadcast
    over the batch (and over channels for an (H, W) mask). A is diagonal, so A^T = A.

    ``Inpainting.random((H, W), missing=0.5, seed=0)`` draws a mask hiding a fraction of the pixels.
    """

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", _check_mask(mask))

    @classmethod
    def random(cls, shape, missing: float = 0.5, seed: int = 0) -> Inpainting:
        """A mask of ``shape`` (H, W) or (C, H, W) with each pixel hidden with probability ``missing``."""
        if not 0 <= check_number(missing, "missing") < 1:
            raise ValueError(f"missing must be in [0, 1), got {missing!r}")
        gen = torch.Generator().manual_seed(check_seed(seed))
        return cls((torch.rand(tuple(shape), generator=gen) >= missing).float())

    def _check(self, t, name):
        m = self.mask
        if tuple(t.shape[-m.ndim:]) != tuple(m.shape) and not (m.ndim == 2 and tuple(t.shape[-2:]) == tuple(m.shape)):
            raise ValueError(f"{name} of shape {tuple(t.shape)} does not match the mask of shape {tuple(m.shape)}")
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(t.shape)}")
        return m.to(dtype=t.dtype, device=t.device)

    def _forward(self, x):
        return self._check(x, "x") * x

    def _adjoint(self, y):
        return self._check(y, "y") * y

    def lipschitz(self, shape=None, *, n_iter: int = 200, tol: float = 1e-7, safety: float = 1.01,
                  seed: int = 0) -> float:
        """max m^2 (exact: A^T A is diagonal; the power-iteration options are checked but not needed)."""
        self._check_lipschitz_options(n_iter, tol, safety, seed)
        return float(self.mask.square().max())

    def data_prox(self, z, y, tau, *, tol: float = 1e-6, max_iter: int = 200):
        """(z + tau m y) / (1 + tau m^2) (closed form; ``tol`` and ``max_iter`` are not needed)."""
        tau = self._check_prox_arguments(z, y, tau)
        m = self._check(z, "z")
        if y.shape != z.shape:
            raise ValueError(f"y must have the shape of z {tuple(z.shape)}, got {tuple(y.shape)}")
        return (z + tau * m * y) / (1.0 + tau * m.square())


def _check_shape(shape) -> tuple[int, int, int]:
    """``shape`` (H, W) or (C, H, W) of integers >= 1 as (C, H, W)."""
    expected = f"shape must be (H, W) or (C, H, W) with integer entries >= 1, got {shape!r}"
    if isinstance(shape, (str, bytes)):
        raise ValueError(expected)
    try:
        dims = tuple(_as_index(s) for s in shape)
    except TypeError:
        raise ValueError(expected) from None
    if len(dims) == 2:
        dims = (1, *dims)
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(expected)
    return dims


class CompressedSensing(LinearOperator):
    """Random Gaussian measurements y = Phi vec(x), Phi (m, C H W) with i.i.d. N(0, 1/m) entries
    (seeded), for images of one ``shape`` (H, W) or (C, H, W). y has shape (B, m)."""

    def __init__(self, m: int, shape, seed: int = 0):
        super().__init__()
        self.input_shape = _check_shape(shape)
        self.m = check_positive_int(m, "m")
        check_seed(seed)
        n = math.prod(self.input_shape)
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("matrix", torch.randn(self.m, n, generator=gen, dtype=torch.float64) / math.sqrt(self.m))

    def _forward(self, x):
        return x.flatten(1) @ self.matrix.to(dtype=x.dtype, device=x.device).T

    def _adjoint(self, y):
        if y.ndim != 2 or y.shape[1] != self.m or not y.is_floating_point():
            raise ValueError(f"y must be a real tensor of shape (B, {self.m}), got {tuple(y.shape)} {y.dtype}")
        return (y @ self.matrix.to(dtype=y.dtype, device=y.device)).view(-1, *self.input_shape)


class MRI(LinearOperator):
    """Undersampled Fourier measurements (MRI-like): A x = m * shift(FFT2(x)) with the orthonormal 2-D
    FFT, the zero frequency at the centre (``fftshift``) and a k-space ``mask`` (H, W) (1 = sampled).
    y is complex; A^T y = Re IFFT2(ishift(m * y)) is the adjoint for the real inner product Re<., .>.

    ``MRI.cartesian((H, W), acceleration=4, center_fraction=0.08, seed=0)`` samples random full columns.
    """

    def __init__(self, mask):
        super().__init__()
        m = _check_mask(mask)
        if m.ndim != 2:
            raise ValueError(f"mask must have shape (H, W), got {tuple(m.shape)}")
        self.register_buffer("mask", m)

    @classmethod
    def cartesian(cls, shape, acceleration: float = 4.0, center_fraction: float = 0.08, seed: int = 0) -> MRI:
        """Random k-space columns: a fully sampled centre band of ``center_fraction`` of the columns and
        random others, 1/``acceleration`` of all columns in total."""
        H, W = _check_shape(shape)[1:]
        check_number(acceleration, "acceleration", minimum=1.0)
        check_number(center_fraction, "center_fraction", minimum=0.0, maximum=1.0)
        check_seed(seed)
        n_keep = max(1, round(W / acceleration))
        n_center = min(n_keep, max(1, round(W * center_fraction)))
        cols = torch.zeros(W, dtype=torch.bool)
        start = W // 2 - n_center // 2  # the band holds the zero frequency, at index W // 2 after fftshift
        cols[start:start + n_center] = True
        rest = torch.nonzero(~cols).squeeze(1)
        gen = torch.Generator().manual_seed(seed)
        cols[rest[torch.randperm(len(rest), generator=gen)[: n_keep - n_center]]] = True
        return cls(cols.float().expand(H, W).clone())

    def _check(self, t, name):
        if t.ndim != 4 or tuple(t.shape[-2:]) != tuple(self.mask.shape):
            raise ValueError(f"{name} must have shape (B, C, {self.mask.shape[0]}, {self.mask.shape[1]}), "
                             f"got {tuple(t.shape)}")
        return self.mask.to(dtype=t.real.dtype if t.is_complex() else t.dtype, device=t.device)

    def _forward(self, x):
        m = self._check(x, "x")
        return m * torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))

    def _adjoint(self, y):
        m = self._check(y, "y")
        if not y.is_complex():
            y = torch.complex(y, torch.zeros_like(y))
        return torch.fft.ifft2(torch.fft.ifftshift(m * y, dim=(-2, -1)), norm="ortho").real

    def lipschitz(self, shape=None, *, n_iter: int = 200, tol: float = 1e-7, safety: float = 1.01,
                  seed: int = 0) -> float:
        """max m^2 (exact: the FFT is unitary; the power-iteration options are checked but not needed)."""
        self._check_lipschitz_options(n_iter, tol, safety, seed)
        return float(self.mask.square().max())
