"""Backbones: shapes, every parameter trained, eval/no_grad, determinism, the registry's errors."""

import math

import pytest
import torch

from gradflow.vision import RESIDUALS, SR_SCALES, GradResidual, create_backbone, list_backbones

# tiny versions keep the default run fast; the full-size defaults are covered in the slow tests
SMALL = {
    "edsr": {"n_blocks": 2, "channels": 8},
    "sedsr": {},
    "resnet20": {},
    "resnet56": {"stages": [(4, 2), (8, 2)]},
    "resnet18": {"stages": [(8, 1), (16, 1), (32, 1), (64, 1)]},
    "unet": {"width": 4, "depth": 2},
}
# default run: every backbone with the gradient residual, the small ones with the baseline and the GradNet
# residual too; all other (backbone, residual) pairs run in the slow stage
DEFAULT_CASES = {("sedsr", "identity"), ("sedsr", "gradnet"), ("resnet20", "identity"), ("resnet20", "gradnet"),
                 ("unet", "identity"), ("unet", "gradnet"), *((name, "convex") for name in SMALL)}


def build(name, residual, small=True, **kwargs):
    kwargs = {**(SMALL[name] if small else {}), **kwargs}
    if name in list_backbones("sr"):
        return create_backbone(name, residual=residual, scale=2, **kwargs)
    return create_backbone(name, residual=residual, num_classes=5, in_channels=2, **kwargs)


def example_input(name, batch=2):
    channels = 3 if name in list_backbones("sr") else 2
    return torch.rand(batch, channels, 8, 8, generator=torch.Generator().manual_seed(0))


def expected_shape(name, batch=2):
    task = create_backbone(name).task
    return {"sr": (batch, 3, 16, 16), "classification": (batch, 5), "segmentation": (batch, 5, 8, 8)}[task]


def check_backbone(name, residual, small=True):
    def run():
        torch.manual_seed(0)
        model = build(name, residual, small)
        x = example_input(name)
        out = model(x)
        assert out.shape == expected_shape(name)
        out.square().mean().backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        model.eval()
        with torch.no_grad():
            evaluated = model(x)
        return out, grads, evaluated

    out, grads, evaluated = run()
    missing = [n for n, g in grads.items() if g is None or not torch.isfinite(g).all()]
    assert not missing, f"no (finite) gradient for {missing}"
    assert not evaluated.requires_grad and torch.isfinite(evaluated).all()
    out2, grads2, evaluated2 = run()  # same seed: same model, outputs and gradients
    assert torch.equal(out2, out) and torch.equal(evaluated2, evaluated)
    assert all(torch.equal(grads2[n], grads[n]) for n in grads)


CASES = [pytest.param(name, residual, id=f"{name}-{residual}",
                      marks=() if (name, residual) in DEFAULT_CASES else (pytest.mark.slow,))
         for name in SMALL for residual in RESIDUALS]


@pytest.mark.parametrize(("name", "residual"), CASES)
def test_backbone_shapes_backward_eval_and_determinism(name, residual):
    check_backbone(name, residual)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("residual", ["identity", "convex"])
def test_full_size_backbones(name, residual):
    check_backbone(name, residual, small=False)


def test_edsr_baseline_size():
    model = create_backbone("edsr", scale=2)
    assert sum(p.numel() for p in model.parameters()) == 1_369_859  # EDSR-baseline x2: 1.37M
    gated = create_backbone("edsr", scale=2, residual="convex")
    assert len(gated.gates()) == 16
    assert all(g == pytest.approx(1 / (1 + math.exp(3.0))) for g in gated.gates())  # alpha_init -3


@pytest.mark.parametrize("scale", SR_SCALES)
def test_sr_scales(scale):
    model = create_backbone("sedsr", scale=scale, residual="convex")
    assert model(torch.rand(1, 3, 7, 5)).shape == (1, 3, 7 * scale, 5 * scale)


@pytest.mark.parametrize("name", ["sedsr", "unet", "resnet20"])
def test_gradient_blocks_use_the_closed_form(name):
    # the ResNets' conv-BN-ReLU-conv-BN branches included (batch-norm statistics held fixed)
    blocks = [m for m in create_backbone(name, residual="convex").modules() if isinstance(m, GradResidual)]
    assert blocks and all(b.uses_fast_path for b in blocks)


def test_alpha_minus_infinity_reproduces_the_identity_backbone():
    torch.manual_seed(0)
    identity = create_backbone("sedsr", scale=2, residual="identity")
    gated = create_backbone("sedsr", scale=2, residual="convex", alpha_init=-math.inf)
    missing, unexpected = gated.load_state_dict(identity.state_dict(), strict=False)
    assert unexpected == [] and all(k.endswith("alpha") for k in missing)
    x = torch.rand(2, 3, 9, 9)
    assert torch.equal(gated(x), identity(x))


def test_odd_sizes_in_unet():
    model = create_backbone("unet", num_classes=3, width=4, depth=3)
    assert model(torch.rand(1, 3, 13, 10)).shape == (1, 3, 13, 10)


def test_registry_lists_and_rejects():
    assert {"edsr", "sedsr", "resnet20", "resnet56", "resnet18", "unet"} <= set(list_backbones())
    assert list_backbones("sr") == ["edsr", "sedsr"]
    with pytest.raises(ValueError, match="valid: edsr"):
        create_backbone("vgg16")
    with pytest.raises(ValueError, match="unknown argument"):
        create_backbone("resnet20", scale=2)
    with pytest.raises(ValueError, match="residual"):
        create_backbone("sedsr", residual="dense")
    with pytest.raises(ValueError, match="scale"):
        create_backbone("sedsr", scale=5)
    with pytest.raises(ValueError, match="task"):
        list_backbones("detection")


def test_backbone_input_validation():
    model = create_backbone("resnet20", num_classes=4, in_channels=1)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="dtype"):
        model(torch.rand(2, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((2, 1, 8, 8), math.nan))
