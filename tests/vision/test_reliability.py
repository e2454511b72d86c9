"""Reliability: metrics that reject what they cannot score, SR numbers that are explicitly luma PSNR, and
super_resolve on 8-bit images (bad input raises ValueError naming the argument; valid but unusual input
keeps working)."""

import math

import numpy as np
import pytest
import torch

from gradflow.vision import (
    EDSR,
    ConvBranch,
    GradResidual,
    PixelShuffleUpsampler,
    ResNet,
    accuracy,
    create_backbone,
    evaluate_classifier,
    evaluate_sr,
    mean_iou,
    normalize_field,
    psnr,
    rgb_to_y,
    ssim,
    super_resolve,
)
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


@pytest.mark.parametrize("options", [{"residual": "convex", "normalize": "position"}, {"residual": "identity"}],
                         ids=["convex-position", "identity"])
def test_tiled_super_resolve_equals_the_untiled_output_for_a_local_model(options):
    torch.manual_seed(0)
    model = create_backbone("sedsr", scale=2, n_blocks=2, channels=8, **options)
    image = torch.rand(3, 17, 14, generator=torch.Generator().manual_seed(1))
    whole = super_resolve(model, image)
    tiled = super_resolve(model, image, tile=4)  # 5 x 4 tiles, the last ones partial
    assert tiled.shape == whole.shape == (3, 34, 28)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    # without context the tile borders show: the comparison above can fail
    assert float((super_resolve(model, image, tile=4, overlap=0) - whole).abs().max()) > 1e-3


# ---- image files ---------------------------------------------------------------------------------------


def _png(path, width=8, height=6):
    from PIL import Image

    pixels = (torch.rand(height, width, 3, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    Image.fromarray(pixels.numpy()).save(path)
    return path


def test_read_image_refuses_an_image_above_max_pixels_and_a_missing_file(tmp_path):
    from gradflow._imaging import read_image

    path = _png(tmp_path / "small.png")  # 8 x 6 = 48 pixels
    assert read_image(path, max_pixels=48).shape == (3, 6, 8)
    with pytest.raises(ValueError, match=r"8x6 = 48 pixels, above max_pixels=47"):
        read_image(path, max_pixels=47)
    with pytest.raises(OSError, match=r"no such image file at path"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match=r"^path must be a path"):
        read_image(3)


def test_read_image_keeps_the_files_own_kind_with_channels_none(tmp_path):
    from PIL import Image

    from gradflow._imaging import read_image

    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((4, 5), 128, dtype=np.uint8)).save(grey)
    assert read_image(grey, channels=None).shape == (1, 4, 5)
    assert read_image(_png(tmp_path / "rgb.png"), channels=None).shape == (3, 6, 8)
    assert read_image(grey, channels=3).shape == (3, 4, 5)


def test_save_image_is_atomic_and_refuses_bad_images(tmp_path):
    image = torch.rand(3, 4, 5, generator=torch.Generator().manual_seed(0))
    target = tmp_path / "elsewhere.png"
    target.write_bytes(b"keep")
    link = tmp_path / "out.png"
    link.symlink_to(target)
    D.save_image(image, link)
    assert not link.is_symlink() and target.read_bytes() == b"keep"  # the link is replaced, not followed
    torch.testing.assert_close(D.read_image(link), image, rtol=0, atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match=r"^image contains NaN"):
        D.save_image(image * math.nan, tmp_path / "nan.png")
    with pytest.raises(ValueError, match=r"^path .* has no image suffix"):
        D.save_image(image, tmp_path / "out.unknown")


# ---- arguments checked at the boundary -----------------------------------------------------------------


def test_normalize_field_checks_its_arguments_and_the_block_forward_skips_the_nan_sync():
    g = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(normalize_field(g, "sample").flatten(1).norm(dim=1), torch.ones(2))
    torch.testing.assert_close(normalize_field(g, "position").norm(dim=1), torch.ones(2, 4, 4))
    with pytest.raises(ValueError, match=r"^g contains NaN or inf"):
        normalize_field(g * math.nan, "sample")
    with pytest.raises(ValueError, match=r"^g must be a non-empty floating-point tensor"):
        normalize_field(g.flatten(), "sample")
    with pytest.raises(ValueError, match=r"^eps must be a finite number > 0"):
        normalize_field(g, "sample", eps=0.0)
    block = GradResidual(ConvBranch(3))
    assert torch.isnan(block(g * math.nan)).all()  # per-block forward: no NaN check (a device sync per block)


def test_conv_branch_names_x_for_a_wrong_channel_count_or_dtype():
    branch = ConvBranch(4)
    with pytest.raises(ValueError, match=r"^x must have shape \(B, 4, H, W\)"):
        branch(torch.rand(1, 3, 6, 6))
    with pytest.raises(ValueError, match=r"^x must be a floating-point tensor"):
        branch(torch.zeros(1, 4, 6, 6, dtype=torch.long))


@pytest.mark.parametrize("scale", [2.0, True, 5, "2"])
def test_sr_scale_must_be_one_of_the_integer_factors(scale):
    with pytest.raises(ValueError, match=r"^scale must be one of the integers \(2, 3, 4\)"):
        EDSR(scale=scale, n_blocks=1, channels=4)
    with pytest.raises(ValueError, match=r"^scale must be one of the integers"):
        PixelShuffleUpsampler(4, scale)


@pytest.mark.parametrize("stages,match", [(3, "got 3"), ([], "got \\[\\]"), ([(8, 1), 8], "stages\\[1\\] = 8"),
                                          ([(8, 0)], "stages\\[0\\] blocks must be an integer >= 1")])
def test_resnet_stages_are_checked(stages, match):
    with pytest.raises(ValueError, match=match):
        ResNet(stages, num_classes=2)


def test_rgb_to_y_refuses_nan_and_other_channel_counts():
    with pytest.raises(ValueError, match=r"^image contains NaN or inf"):
        rgb_to_y(torch.full((1, 3, 2, 2), math.nan))
    with pytest.raises(ValueError, match=r"^image must have 1 or 3 channels"):
        rgb_to_y(torch.rand(1, 2, 2, 2))
    with pytest.raises(ValueError, match=r"x must have 1 or 3 channels"):
        psnr(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8), channel="y")


def test_evaluation_functions_check_scale_pairs_data_and_batch_size(sr_model):
    pairs = D.sr_pairs([torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(0))], 2)
    with pytest.raises(ValueError, match=r"^scale 3 differs from the model's scale 2"):
        evaluate_sr(sr_model, pairs, 3)
    with pytest.raises(ValueError, match=r"^pairs must be a list of \(LR, HR\) image tensor pairs"):
        evaluate_sr(sr_model, pairs[0], 2)
    classifier = create_backbone("resnet20", num_classes=3, in_channels=1)
    data = (torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"^batch_size must be an integer >= 1"):
        evaluate_classifier(classifier, data, batch_size=0)
    with pytest.raises(ValueError, match=r"^data must be a pair \(images, labels\) of tensors"):
        evaluate_classifier(classifier, data[0])
    assert 0 <= evaluate_classifier(classifier, data, batch_size=3)["accuracy"] <= 1
