"""Reliability: one PSNR, metrics and closed-form overrides that check their input, no silent dtype change
(bad input raises ValueError naming the argument; valid but unusual input keeps working)."""

import math

import numpy as np
import pytest
import torch

import gradflow.inverse as inverse
import gradflow.vision as vision
from gradflow.inverse import MRI, Denoising, Inpainting, LinearOperator, Tikhonov, psnr, solve, ssim

F64 = torch.float64
NONFINITE_OR_NONPOSITIVE = [0.0, -1.0, math.nan, math.inf]


def rgb_pair(shape=(2, 3, 16, 16), dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    ref = torch.rand(shape, generator=gen, dtype=dtype)
    return (ref + 0.05 * torch.randn(shape, generator=gen, dtype=dtype)).clamp(0, 1), ref


# ---- one PSNR ------------------------------------------------------------------------------------------


def test_inverse_and_vision_psnr_are_one_metric_with_one_default():
    x, ref = rgb_pair()
    assert inverse.psnr is vision.psnr
    mse = (x.double() - ref.double()).square().mean((1, 2, 3))
    torch.testing.assert_close(psnr(x, ref).double(), -10 * torch.log10(mse), rtol=1e-6, atol=1e-5)
    # the luma variant is explicit and a different number on an RGB pair
    luma = psnr(x, ref, channel="y")
    y_mse = (vision.rgb_to_y(x).double() - vision.rgb_to_y(ref).double()).square().mean((1, 2, 3))
    torch.testing.assert_close(luma.double(), -10 * torch.log10(y_mse), rtol=1e-6, atol=1e-5)
    assert bool((luma - psnr(x, ref)).abs().min() > 1.0)


def test_psnr_keeps_dtype_extra_batch_dims_non_contiguous_and_scores_identity_as_infinity():
    x, ref = rgb_pair((2, 3, 3, 8, 8), F64)
    value = psnr(x, ref, data_range=1.0)
    assert value.shape == (2, 3) and value.dtype == F64
    torch.testing.assert_close(value[1], psnr(x[1], ref[1]))
    xt, rt = x[0].transpose(-1, -2), ref[0].transpose(-1, -2)  # non-contiguous
    assert not xt.is_contiguous()
    torch.testing.assert_close(psnr(xt, rt), psnr(x[0], ref[0]))
    torch.testing.assert_close(psnr(255 * x, 255 * ref, data_range=255.0), value)
    assert torch.isinf(psnr(ref, ref)).all() and bool((psnr(ref, ref) > 0).all())


@pytest.mark.parametrize("data_range", NONFINITE_OR_NONPOSITIVE)
@pytest.mark.parametrize("metric", [psnr, ssim])
def test_psnr_and_ssim_reject_a_non_positive_or_non_finite_data_range(metric, data_range):
    x, ref = rgb_pair((1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"data_range must be a finite number > 0"):
        metric(x, ref, data_range=data_range)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_psnr_and_ssim_reject_nan_images(metric):
    x, ref = rgb_pair((1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"^x contains NaN"):
        metric(x * math.nan, ref)


def test_psnr_data_range_is_keyword_only():  # a positional 3rd argument meant crop in vision, data_range here
    x, ref = rgb_pair()
    with pytest.raises(TypeError):
        psnr(x, ref, 2)


# ---- closed-form data_prox overrides -------------------------------------------------------------------


def operators():
    return {"denoising": Denoising(), "inpainting": Inpainting(torch.tensor([[1.0, 0.0, 0.5, 1.0]] * 4))}


@pytest.mark.parametrize("name", list(operators()))
@pytest.mark.parametrize("tau", NONFINITE_OR_NONPOSITIVE)
def test_closed_form_data_prox_rejects_a_bad_tau(name, tau):
    z = torch.rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0"):
        operators()[name].data_prox(z, z, tau)


@pytest.mark.parametrize("name", list(operators()))
def test_closed_form_data_prox_rejects_nan_measurements(name):
    z = torch.rand(1, 1, 4, 4)
    y = z.clone()
    y[0, 0, 1, 1] = math.nan
    with pytest.raises(ValueError, match=r"^y contains NaN"):
        operators()[name].data_prox(z, y, 0.5)
    with pytest.raises(ValueError, match=r"^y must have the shape of z"):
        operators()[name].data_prox(z, z[..., :3], 0.5)


@pytest.mark.parametrize("name", list(operators()))
def test_closed_form_data_prox_equals_the_generic_conjugate_gradient_solve_in_float64(name):
    op = operators()[name]
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(2, 1, 4, 4, generator=gen, dtype=F64).transpose(-1, -2)  # non-contiguous
    y = torch.rand(2, 1, 4, 4, generator=gen, dtype=F64)
    closed = op.data_prox(z, y, 0.7)
    generic = LinearOperator.data_prox(op, z, y, 0.7, tol=1e-12)
    assert closed.dtype == F64
    torch.testing.assert_close(closed, generic, rtol=1e-9, atol=1e-10)


# ---- masks and lipschitz -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Inpainting, MRI])
@pytest.mark.parametrize("bad", [2.0, -0.5, 1.0 + 1e-6])
def test_masks_outside_zero_one_are_rejected(cls, bad):
    mask = torch.ones(4, 4)
    mask[1, 2] = bad
    with pytest.raises(ValueError, match=r"^mask values must lie in \[0, 1\]"):
        cls(mask)


def test_fractional_boolean_and_float64_masks_keep_working():
    assert Inpainting(torch.full((4, 4), 0.5)).lipschitz() == 0.25
    assert Inpainting(torch.ones(4, 4, dtype=torch.bool)).lipschitz() == 1.0
    assert Inpainting(torch.zeros(2, 4, 4, dtype=F64)).mask.dtype == F64


@pytest.mark.parametrize("op", [Denoising(), Inpainting(torch.ones(4, 4)), MRI(torch.ones(4, 4))],
                         ids=["denoising", "inpainting", "mri"])
@pytest.mark.parametrize("kwargs,match", [
    ({"n_iter": 0}, "n_iter must be an integer >= 1"),
    ({"safety": 0.5}, "safety must be a finite number >= 1"),
    ({"safety": math.nan}, "safety"),
    ({"tol": -1.0}, "tol must be a finite number > 0"),
    ({"seed": 0.5}, "seed must be an integer"),
])
def test_closed_form_lipschitz_overrides_check_the_power_iteration_options(op, kwargs, match):
    with pytest.raises(ValueError, match=match):
        op.lipschitz(**kwargs)
    with pytest.raises(TypeError):
        op.lipschitz(unknown_option=1)
    assert op.lipschitz(n_iter=1, safety=1.0) == 1.0


# ---- solve keeps the measurements' dtype ---------------------------------------------------------------


def test_solve_rejects_an_x0_of_another_dtype_or_shape():
    y = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"^x0 is torch.float64 .* estimate from y is torch.float32"):
        solve(y, Denoising(), Tikhonov(), 0.1, x0=y.double(), max_iter=3)
    with pytest.raises(ValueError, match=r"^x0 must have the shape"):
        solve(y, Denoising(), Tikhonov(), 0.1, x0=y[..., :7], max_iter=3)


def test_solve_with_a_float64_non_contiguous_x0_stays_float64():
    y = torch.rand(1, 1, 8, 8, dtype=F64)
    x0 = torch.rand(1, 1, 8, 8, dtype=F64).transpose(-1, -2)
    result = solve(y, Denoising(), Tikhonov(), 0.1, x0=x0, max_iter=3)
    assert result.x.dtype == F64 and result.x.shape == y.shape
    assert solve(y.float(), Denoising(), Tikhonov(), 0.1, x0=x0.float(), max_iter=3).x.dtype == torch.float32


# ---- image files: the shared reader and an atomic writer -----------------------------------------------


def test_read_image_goes_through_the_shared_reader_with_its_pixel_cap(tmp_path):
    rgb = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(0))
    path = inverse.write_image(tmp_path / "rgb.png", rgb)
    assert inverse.read_image(path, gray=None, max_pixels=48).shape == (1, 3, 6, 8)  # colour stays colour
    torch.testing.assert_close(inverse.read_image(path, gray=False), rgb, rtol=0, atol=0.5 / 255 + 1e-6)
    assert inverse.read_image(path).shape == (1, 1, 6, 8)
    with pytest.raises(ValueError, match=r"above max_pixels=47"):
        inverse.read_image(path, max_pixels=47)
    with pytest.raises(ValueError, match=r"^gray must be True, False or None"):
        inverse.read_image(path, gray="rgb")


def test_write_image_is_atomic_and_names_a_bad_path(tmp_path):
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    target = tmp_path / "elsewhere.png"
    target.write_bytes(b"keep")
    (tmp_path / "out.png").symlink_to(target)
    path = inverse.write_image(tmp_path / "out.png", x)
    assert not path.is_symlink() and target.read_bytes() == b"keep"
    with pytest.raises(ValueError, match=r"^path must be a path"):
        inverse.write_image(3, x)
    with pytest.raises(ValueError, match=r"^x contains NaN"):
        inverse.write_image(tmp_path / "nan.png", x * math.nan)


# ---- arguments checked at the boundary -----------------------------------------------------------------


def test_objective_and_solve_name_a_measurement_of_the_wrong_shape():
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    op, prior = Denoising(), Tikhonov("identity")
    torch.testing.assert_close(inverse.objective(x, x, op, prior, 2.0), prior.cost(x) * 2.0)
    with pytest.raises(ValueError, match=r"^y must be shaped like the measurements A x \(1, 1, 8, 8\)"):
        inverse.objective(x, x[..., :7], op, prior, 1.0)
    with pytest.raises(ValueError, match=r"^lam must be a finite number >= 0"):
        inverse.objective(x, x, op, prior, True)
    with pytest.raises(ValueError, match=r"^y must be shaped like the measurements A x of images"):
        solve(x.flatten(), op, prior, 0.1, max_iter=2)
    with pytest.raises(ValueError, match=r"^x_true must have the shape of the estimate"):
        inverse.select_lam(x, op, prior, x_true=x[..., :7], lams=[0.1], max_iter=2)
    assert solve(x, op, prior, 0.0, max_iter=2).x.shape == x.shape  # lam = 0: unregularised, valid


def test_kernels_and_masks_are_tensors_or_arrays():
    with pytest.raises(ValueError, match=r"^kernel must be a torch.Tensor \(or a NumPy array\), got list"):
        inverse.Blur([[0.25, 0.5, 0.25]])
    assert inverse.Blur(np.array([[0.25, 0.5, 0.25]])).kernel.dtype == F64
    mask = torch.tensor([[1, 0], [0, 1]])  # a 0/1 integer mask is a mask
    assert Inpainting(mask).mask.dtype == torch.float32 and MRI(mask).lipschitz() == 1.0
    with pytest.raises(ValueError, match=r"^shape must be \(H, W\) or \(C, H, W\)"):
        inverse.CompressedSensing(4, "ab")
    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\*\*63\)"):
        inverse.CompressedSensing(4, (4, 4), seed=-1)


@pytest.mark.parametrize("prior", [Tikhonov("identity"), Tikhonov(), inverse.TotalVariation()],
                         ids=["tikhonov-identity", "tikhonov-gradient", "tv"])
def test_every_prox_checks_tau_and_tau_zero_is_the_identity(prior):
    v = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(prior.prox(v, 0.0), v)
    for tau in (-1.0, math.nan, True, "a"):
        with pytest.raises(ValueError, match=r"^tau must be a finite number >= 0"):
            prior.prox(v, tau)
