import math

import pytest
import torch

from gradflow.inverse.operators import (
    MRI,
    Blur,
    CompressedSensing,
    Denoising,
    Downsampling,
    Inpainting,
    gaussian_kernel,
    motion_kernel,
)

SHAPE = (2, 12, 16)  # (C, H, W)


def operators():
    return {
        "denoising": Denoising(),
        "blur_gaussian": Blur(gaussian_kernel(1.2)),
        "blur_motion": Blur(motion_kernel(5, 30)),
        "blur_even": Blur(torch.rand(4, 2)),
        "inpainting": Inpainting.random(SHAPE[1:], missing=0.5, seed=1),
        "inpainting_channels": Inpainting.random(SHAPE, missing=0.3, seed=2),
        "downsampling": Downsampling(2),
        "downsampling_x4_box": Downsampling(4, kernel=torch.ones(4, 4) / 16),
        "compressed_sensing": CompressedSensing(50, SHAPE, seed=0),
        "mri": MRI.cartesian(SHAPE[1:], acceleration=3, seed=0),
    }


@pytest.mark.parametrize("name", list(operators()))
def test_adjoint_is_exact_in_float64(name, generator):
    op = operators()[name]
    u = torch.randn(3, *SHAPE, generator=generator, dtype=torch.float64)
    Au = op(u)
    v = torch.randn(Au.shape, generator=generator, dtype=Au.dtype)
    lhs = (Au.conj() * v).real.sum() if Au.is_complex() else (Au * v).sum()
    rhs = (u * op.adjoint(v)).sum()
    assert abs(float(lhs - rhs)) <= 1e-12 * (1 + abs(float(lhs)))
    assert op.adjoint(v).dtype == torch.float64 and op.adjoint(v).shape == u.shape


@pytest.mark.parametrize("name", list(operators()))
def test_lipschitz_bounds_rayleigh_quotients_tightly(name, generator):
    op = operators()[name].double()
    L = op.lipschitz(SHAPE)
    x = torch.randn(1, *SHAPE, generator=generator, dtype=torch.float64)
    for _ in range(300):  # a long independent power iteration approaches ||A^T A|| from below
        x = op.normal(x)
        x = x / x.norm()
    worst = float((x * op.normal(x)).sum())
    for _ in range(20):
        u = torch.randn(1, *SHAPE, generator=generator, dtype=torch.float64)
        assert float(op(u).abs().square().sum() / u.square().sum()) <= L
    assert worst <= L * (1 + 1e-9) and L <= 1.02 * worst + 1e-12


def test_known_norms():
    assert Denoising().lipschitz() == 1.0
    assert Inpainting(torch.ones(4, 4)).lipschitz() == 1.0
    # a normalised nonnegative kernel averages: ||A|| <= 1, and on a large image nearly 1
    assert 0.95 <= Blur(gaussian_kernel(1.0)).lipschitz((1, 48, 48)) <= 1.01


def test_kernels_are_normalised_and_shaped():
    k = gaussian_kernel(2.0)
    assert k.shape == (13, 13) and math.isclose(float(k.sum()), 1.0, rel_tol=1e-6)
    assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0))
    m = motion_kernel(9, 0)
    assert m.shape == (9, 9) and math.isclose(float(m.sum()), 1.0, rel_tol=1e-6)
    assert float(m[4].sum()) > 0.99  # horizontal motion lies on the middle row
    assert torch.allclose(motion_kernel(9, 90), m.T, atol=1e-6)


def test_blur_matches_scipy_convolution():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    k = torch.rand(5, 3, dtype=torch.float64)
    x = torch.rand(1, 1, 10, 11, dtype=torch.float64)
    ref = scipy_ndimage.convolve(x[0, 0].numpy(), k.numpy(), mode="constant", cval=0.0)
    assert torch.allclose(Blur(k)(x)[0, 0], torch.from_numpy(ref), atol=1e-12)


def test_inpainting_and_mri_data_prox_match_conjugate_gradients(generator):
    for op in (Inpainting.random((8, 8), seed=3), Denoising()):
        z = torch.randn(2, 1, 8, 8, generator=generator, dtype=torch.float64)
        y = op(torch.randn(2, 1, 8, 8, generator=generator, dtype=torch.float64))
        closed = op.data_prox(z, y, 0.7)
        cg = type(op).__mro__[1].data_prox(op, z, y, 0.7, tol=1e-12)
        assert torch.allclose(closed, cg, atol=1e-9)
        # optimality: A^T (A x - y) + (x - z) / tau = 0
        res = op.adjoint(op(closed) - y) + (closed - z) / 0.7
        assert float(res.abs().max()) < 1e-9


def test_data_prox_optimality_by_conjugate_gradients(generator):
    op = MRI.cartesian((8, 10), acceleration=2, seed=1).double()
    z = torch.randn(2, 1, 8, 10, generator=generator, dtype=torch.float64)
    y = op.measure(torch.rand(2, 1, 8, 10, dtype=torch.float64), 0.1, generator=generator)
    x = op.data_prox(z, y, 2.0, tol=1e-12)
    res = op.adjoint(op(x) - y) + (x - z) / 2.0
    assert float(res.abs().max()) < 1e-8


def test_float32_and_dtype_preserved():
    x = torch.rand(1, 1, 8, 8)
    for op in (Blur(gaussian_kernel(1.0).double()), Downsampling(2), Inpainting(torch.ones(8, 8))):
        assert op(x).dtype == torch.float32 and op.adjoint(op(x)).dtype == torch.float32


@pytest.mark.parametrize(
    ("make", "x", "match"),
    [
        (lambda: Blur(gaussian_kernel(1.0)), torch.rand(8, 8), "rank 4"),
        (lambda: Blur(gaussian_kernel(1.0)), torch.rand(1, 1, 8, 8).int(), "floating-point"),
        (lambda: Blur(gaussian_kernel(3.0)), torch.rand(1, 1, 8, 8), "larger than the image"),
        (lambda: Blur(gaussian_kernel(1.0)), torch.full((1, 1, 8, 8), float("nan")), "NaN"),
        (lambda: Inpainting(torch.ones(8, 8)), torch.rand(1, 1, 8, 9), "does not match the mask"),
        (lambda: Inpainting(torch.ones(3, 8, 8)), torch.rand(1, 1, 8, 8), "does not match the mask"),
        (lambda: Downsampling(2), torch.rand(1, 1, 9, 8), "multiple of factor"),
        (lambda: CompressedSensing(10, (8, 8)), torch.rand(1, 1, 8, 7), r"shape \(B, 1, 8, 8\)"),
        (lambda: MRI(torch.ones(8, 8)), torch.rand(1, 1, 4, 8), "must have shape"),
    ],
)
def test_bad_images_raise(make, x, match):
    with pytest.raises(ValueError, match=match):
        make()(x)


def test_bad_construction_and_measurements_raise():
    with pytest.raises(ValueError, match="2-D"):
        Blur(torch.rand(3))
    with pytest.raises(ValueError, match="all zeros"):
        Blur(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        Blur(torch.tensor([[float("inf")]]))
    with pytest.raises(ValueError, match="mask must have shape"):
        Inpainting(torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(-1.0)
    with pytest.raises(ValueError, match="integer"):
        Downsampling(0)
    with pytest.raises(ValueError, match="NaN"):
        Denoising().adjoint(torch.full((1, 1, 2, 2), float("inf")))
    with pytest.raises(ValueError, match=r"shape \(B, 10\)"):
        CompressedSensing(10, (4, 4)).adjoint(torch.rand(1, 9))
    with pytest.raises(ValueError, match="pass shape"):
        Blur(gaussian_kernel(1.0)).lipschitz()
    with pytest.raises(ValueError, match="sigma"):
        Denoising().measure(torch.rand(1, 1, 2, 2), -0.1)


def test_measure_adds_noise_of_the_given_level(generator):
    x = torch.zeros(1, 1, 64, 64, dtype=torch.float64)
    y = Denoising().measure(x, 0.1, generator=generator)
    assert 0.095 < float(y.std()) < 0.105
    yc = MRI(torch.ones(64, 64)).measure(x, 0.1, generator=generator)
    assert yc.is_complex() and 0.095 < float(yc.abs().square().mean().sqrt()) < 0.105
