"""Defaults that start well (SR at bicubic), gates that learn (their own Adam group), the warm-up schedule
and the baselines every report shows."""

import itertools
import math

import pytest
import torch

from gradflow.vision import (
    RESIDUALS,
    GradResidual,
    auto_gate_lr,
    bicubic_upsample,
    create_backbone,
    evaluate_sr,
    gate_parameters,
    linear_classifier_baseline,
    list_backbones,
    threshold_segmenter_baseline,
    train_classifier,
    train_sr,
    warmup_cosine,
)
from gradflow.vision import data as D

TINY_SR = {"n_blocks": 2, "channels": 8}


@pytest.mark.parametrize(("height", "width", "scale"), [(5, 7, 2), (12, 9, 3), (6, 6, 4), (1, 3, 2), (2, 2, 2)])
def test_bicubic_upsample_is_pillows_bicubic(height, width, scale):
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(height * width))
    ours = bicubic_upsample(image[None].double(), scale)[0].clamp(0, 1).float()
    pillow = D.bicubic_resize(image, (scale * height, scale * width))
    torch.testing.assert_close(ours, pillow, atol=2e-7, rtol=0)


def test_bicubic_upsample_keeps_constants_and_rejects_bad_input():
    assert torch.allclose(bicubic_upsample(torch.full((2, 1, 3, 5), 0.7, dtype=torch.float64), 3),
                          torch.full((2, 1, 9, 15), 0.7, dtype=torch.float64), atol=1e-15)
    with pytest.raises(ValueError, match="x must be"):
        bicubic_upsample(torch.zeros(3, 4, 4), 2)
    with pytest.raises(ValueError, match="scale"):
        bicubic_upsample(torch.zeros(1, 3, 4, 4), 0)


@pytest.mark.parametrize("residual", RESIDUALS)
@pytest.mark.parametrize("name", list_backbones("sr"))
def test_untrained_sr_models_output_the_bicubic_upsampling(name, residual):
    torch.manual_seed(0)
    model = create_backbone(name, scale=2, residual=residual, **TINY_SR)
    x = torch.rand(2, 3, 7, 6, generator=torch.Generator().manual_seed(1))
    expected = torch.stack([D.bicubic_resize(image, (14, 12)) for image in x])
    torch.testing.assert_close(model(x).clamp(0, 1), expected, atol=1e-6, rtol=0)


def test_untrained_sr_model_scores_bicubics_psnr_and_the_literal_edsr_does_not():
    pairs = D.sr_pairs([D.load_image("chelsea")[:, 100:164, 150:214]], 2)
    torch.manual_seed(0)
    floor = evaluate_sr(None, pairs, 2)["psnr"]
    assert evaluate_sr(create_backbone("sedsr", scale=2, residual="convex"), pairs, 2)["psnr"] == pytest.approx(
        floor, abs=1e-4)
    literal = create_backbone("sedsr", scale=2, residual="convex", bicubic_skip=False)
    assert evaluate_sr(literal, pairs, 2)["psnr"] < floor - 3


def test_a_gate_at_zero_trains_exactly_like_the_identity_residual():
    data = D.SRPatchDataset([D.load_image("astronaut")[:, :64, :64]], scale=2, patch_size=8, n_patches=16, seed=0)
    models = {}
    for residual, alpha in (("identity", 0.0), ("convex", -math.inf)):
        torch.manual_seed(0)
        model = create_backbone("sedsr", scale=2, residual=residual, alpha_init=alpha, **TINY_SR)
        with torch.no_grad():  # a nonzero tail, so that every weight gets a gradient from the first step
            model.tail.weight.normal_(0, 0.05)
        models[residual] = train_sr(model, data, steps=3, batch_size=4, lr=1e-3, progress=False, device="cpu").model
    gated = models["convex"]
    assert gated.gates() == [0.0, 0.0] and all(a.item() == -math.inf for a in gate_parameters(gated))
    for name, value in models["identity"].state_dict().items():
        torch.testing.assert_close(gated.state_dict()[name], value, atol=1e-7, rtol=0)


def test_auto_gate_lr_is_lr_over_the_rms_of_the_branch_weights():
    torch.manual_seed(0)
    model = create_backbone("sedsr", scale=2, residual="convex", **TINY_SR)
    weights = [b.branch.conv1.weight for b in model.modules() if isinstance(b, GradResidual)]
    weights += [b.branch.conv2.weight for b in model.modules() if isinstance(b, GradResidual)]
    rms = math.sqrt(sum(float(w.detach().square().sum()) for w in weights) / sum(w.numel() for w in weights))
    assert auto_gate_lr(model, 1e-3) == pytest.approx(1e-3 / rms, rel=1e-6)
    assert auto_gate_lr(create_backbone("sedsr", scale=2, residual="identity"), 1e-3) == 1e-3
    with pytest.raises(ValueError, match="lr"):
        auto_gate_lr(model, 0.0)


def test_gates_move_at_their_own_rate_and_their_trajectory_is_recorded():
    data = D.SRPatchDataset([D.load_image("astronaut")[:, :64, :64]], scale=2, patch_size=8, n_patches=32, seed=0)
    moved = {}
    for gate_lr in (None, 1e-3):
        torch.manual_seed(0)
        model = create_backbone("sedsr", scale=2, residual="convex", alpha_init=0.0, **TINY_SR)
        result = train_sr(model, data, steps=6, batch_size=4, lr=1e-3, gate_lr=gate_lr, progress=False, device="cpu",
                          log_every=1)
        alphas = torch.stack([a.detach() for a in gate_parameters(model)])
        moved[gate_lr] = float(alphas.abs().max())
        assert [h["step"] for h in result.history] == list(range(1, 7))
        assert all(len(h["gates"]) == 2 for h in result.history)
        assert result.history[-1]["gates"] == pytest.approx(model.gates())
    assert moved[1e-3] <= 6 * 1e-3 * 1.01  # Adam: at most about lr per step
    assert moved[None] > 10 * moved[1e-3]


def test_gate_lr_is_refused_beside_a_users_optimizer_and_when_not_positive():
    model = create_backbone("sedsr", scale=2, residual="convex", **TINY_SR)
    data = D.SRPatchDataset([D.load_image("astronaut")[:, :64, :64]], scale=2, patch_size=8, n_patches=4, seed=0)
    with pytest.raises(ValueError, match="gate_lr"):
        train_sr(model, data, steps=1, gate_lr=1e-2, optimizer="sgd", progress=False, device="cpu")
    with pytest.raises(ValueError, match="gate_lr"):
        train_sr(model, data, steps=1, gate_lr=-1.0, progress=False, device="cpu")


def test_warmup_cosine_ramps_up_then_decays_to_zero():
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=2.0)
    schedule = warmup_cosine(10, 4)(opt)
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    expected = [2.0 * min(1.0, (t + 1) / 4) * 0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(10)]
    assert rates == pytest.approx(expected)
    assert rates[0] < rates[1] < rates[2] < rates[3] and all(b < a for a, b in itertools.pairwise(rates[3:]))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="total_steps"):
        warmup_cosine(0, 0)


def test_classifier_recipe_uses_the_schedule_over_the_epochs():
    x = torch.rand(40, 1, 6, 6)
    y = (x.mean((1, 2, 3)) > 0.5).long()
    model = create_backbone("resnet20", stages=[(4, 1)], num_classes=2, in_channels=1, residual="convex")
    result = train_classifier(model, (x, y), epochs=2, batch_size=8, lr=1e-2, warmup=0.2, progress=False,
                              device="cpu", log_every=1)
    # 10 steps, 2 of warm-up; history holds the rate after each step's scheduler step (t = 1..10)
    expected = [1e-2 * min(1.0, (t + 1) / 2) * 0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(1, 11)]
    assert [h["lr"] for h in result.history] == pytest.approx(expected)
    with pytest.raises(ValueError, match="warmup"):
        train_classifier(model, (x, y), epochs=1, warmup=1.0, progress=False, device="cpu")


def test_linear_classifier_baseline_scores_a_separable_problem_and_checks_its_input():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 3, 3, generator=gen)
    y = (x[:, 0, 1, 1] > 0.5).long()
    scores = linear_classifier_baseline((x, y), (x, y))
    assert scores["accuracy"] > 0.9 and scores["train_accuracy"] > 0.9
    with pytest.raises(ValueError, match="test"):
        linear_classifier_baseline((x, y), (x[:, :, :2], y))
    with pytest.raises(ValueError, match="labels"):
        linear_classifier_baseline((x, y.float()), (x, y))


def test_threshold_segmenter_baseline():
    x = torch.zeros(3, 1, 4, 4)
    x[:, :, 1:3, 1:3] = 1.0
    y = torch.where(x[:, 0] > 0.5, 3, 0)
    scores = threshold_segmenter_baseline((x, y), (x, y), num_classes=4)
    assert scores["miou"] == 1.0 and scores["pixel_accuracy"] == 1.0
    assert scores["majority_pixel_accuracy"] == pytest.approx(0.75) and scores["majority_miou"] == pytest.approx(0.375)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        threshold_segmenter_baseline((x, y), (x, y), num_classes=2)
