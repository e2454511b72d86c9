"""Reliability: metrics that reject what they cannot score, SR numbers that are explicitly luma PSNR, and
super_resolve on 8-bit images (bad input raises ValueError naming the argument; valid but unusual input
keeps working)."""

import math

import pytest
import torch

from gradflow.vision import accuracy, create_backbone, evaluate_sr, mean_iou, psnr, ssim, super_resolve
from gradflow.vision import data as D

F64 = torch.float64


# ---- accuracy and mean IoU -----------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [[0, 2, 1], [0, -1, 1], [7, 0, 0]])
def test_accuracy_rejects_labels_outside_the_classes(labels):
    logits = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        accuracy(logits, torch.tensor(labels))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_accuracy_and_mean_iou_reject_non_finite_logits(bad):
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    logits[1, 2, 0, 0] = bad
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^logits contains NaN or inf"):
        accuracy(logits, labels)
    with pytest.raises(ValueError, match=r"^logits contains NaN or inf"):
        mean_iou(logits, labels)


def test_accuracy_and_mean_iou_reject_integer_logits_and_too_few_classes():
    labels = torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^logits must be a floating-point tensor"):
        accuracy(torch.zeros(1, 3, 2, 2, dtype=torch.long), labels)
    with pytest.raises(ValueError, match=r"^num_classes must be >= the 3 classes"):
        mean_iou(torch.zeros(1, 3, 2, 2), labels, num_classes=2)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2"):
        mean_iou(torch.zeros(1, 3, 2, 2), labels + 3)


def test_accuracy_and_mean_iou_valid_unusual_input():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]], dtype=F64)
    assert accuracy(logits, torch.tensor([0, 1, 1], dtype=torch.uint8)) == pytest.approx(2 / 3)
    seg = torch.nn.functional.one_hot(torch.tensor([[[0, 1], [1, 0]]]), 2).permute(0, 3, 2, 1).double()
    assert not seg.is_contiguous()
    labels = torch.tensor([[[0, 1], [1, 0]]], dtype=torch.int32)
    assert mean_iou(seg, labels, num_classes=5) == pytest.approx(1.0)  # more classes than the logits: fine


# ---- PSNR / SSIM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("data_range", [0.0, -1.0, math.nan, math.inf])
@pytest.mark.parametrize("metric", [psnr, ssim])
def test_vision_psnr_and_ssim_reject_a_bad_data_range(metric, data_range):
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"data_range must be a finite number > 0"):
        metric(x, x.flip(-1), data_range=data_range)


def test_psnr_and_ssim_score_every_channel_unless_luma_is_asked_for():
    gen = torch.Generator().manual_seed(0)
    hr = torch.rand(1, 3, 24, 24, generator=gen)
    sr = (hr + 0.05 * torch.randn(1, 3, 24, 24, generator=gen)).clamp(0, 1)
    mse = (sr.double() - hr.double()).square().mean()
    assert float(psnr(sr, hr)) == pytest.approx(float(-10 * torch.log10(mse)), rel=1e-6)
    assert float(psnr(sr, hr, channel="y")) > float(psnr(sr, hr)) + 1.0  # luma averages the noise away
    assert float(ssim(sr, hr, channel="y")) != pytest.approx(float(ssim(sr, hr)), abs=1e-3)
    with pytest.raises(ValueError, match=r"unknown channel 'luma'; valid: all, y"):
        psnr(sr, hr, channel="luma")
    with pytest.raises(TypeError):
        psnr(sr, hr, y_channel=True)  # the old implicit-luma switch is gone: the choice is explicit


def test_evaluate_sr_reports_luma_psnr_explicitly():
    gen = torch.Generator().manual_seed(0)
    pairs = D.sr_pairs([torch.rand(3, 24, 24, generator=gen) for _ in range(2)], 2)
    scores = evaluate_sr(None, pairs, 2)
    expected = [float(psnr(D.bicubic_resize(lr, hr.shape[-2:])[None], hr[None], crop=2, channel="y"))
                for lr, hr in pairs]
    assert scores["psnr_per_image"] == pytest.approx(expected)
    every_channel = [float(psnr(D.bicubic_resize(lr, hr.shape[-2:])[None], hr[None], crop=2)) for lr, hr in pairs]
    assert scores["psnr_per_image"] != pytest.approx(every_channel)


# ---- super_resolve -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sr_model():
    torch.manual_seed(0)
    return create_backbone("sedsr", scale=2)


def test_super_resolve_accepts_uint8_images_and_returns_uint8(sr_model):
    gen = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 8, 8), generator=gen, dtype=torch.uint8)
    out = super_resolve(sr_model, image)
    assert out.dtype == torch.uint8 and out.shape == (3, 16, 16)
    expected = (super_resolve(sr_model, image.float() / 255) * 255).round().to(torch.uint8)
    assert (out.int() - expected.int()).abs().max() <= 1
    assert 0 < float(out.float().mean()) < 255  # not saturated


def test_super_resolve_rejects_unscaled_float_and_other_integer_images(sr_model):
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"values in \[0, 1\].*divide by 255 or pass a uint8"):
        super_resolve(sr_model, 255 * image)
    with pytest.raises(ValueError, match=r"^image must be floating-point .* or uint8"):
        super_resolve(sr_model, (255 * image).to(torch.int32))
    with pytest.raises(ValueError, match=r"^image contains NaN"):
        super_resolve(sr_model, image * math.nan)


def test_super_resolve_float_input_unchanged_and_non_contiguous(sr_model):
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = super_resolve(sr_model, image.transpose(-1, -2))
    assert out.dtype == torch.float32 and out.shape == (3, 16, 16)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    torch.testing.assert_close(out, super_resolve(sr_model, image.transpose(-1, -2).contiguous()))
