"""Bad inputs and bad constructor arguments raise ValueError saying what was expected."""

import pytest
import torch

from gradflow.potentials import (
    ICNN,
    GradNetC,
    GradNetM,
    MGradNetC,
    MGradNetM,
    MLPField,
    MLPPotential,
    create_potential,
    list_potentials,
)

from .models import FIELDS


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(4, 2), r"shape \(\.\.\., 3\)"),
        (torch.zeros(4, 3, dtype=torch.int64), "floating-point"),
        (torch.tensor([[0.0, float("nan"), 1.0]]), "NaN or inf"),
        (torch.tensor([[0.0, float("inf"), 1.0]]), "NaN or inf"),
        (torch.zeros(4, 3, dtype=torch.float64), "dtype"),
        (torch.tensor(1.0), r"shape \(\.\.\., 3\)"),
        ([[0.0, 1.0, 2.0]], "torch.Tensor"),
    ],
)
def test_bad_inputs_raise(name, x, match):
    net = FIELDS[name](3, 4)
    with pytest.raises(ValueError, match=match):
        net(x)
    with pytest.raises(ValueError, match=match):
        net.jacobian(x)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: GradNetC(0), "dim"),
        (lambda: GradNetC(2, width=0), "width"),
        (lambda: GradNetC(2, depth=0), "depth"),
        (lambda: GradNetM(2, n_modules=0), "n_modules"),
        (lambda: MGradNetC(2, strong_convexity=-0.1), "strong_convexity"),
        (lambda: MGradNetM(2, strong_convexity=float("nan")), "strong_convexity"),
        (lambda: GradNetC(2, activation="relu"), "valid: sigmoid, sin, tanh, weighted_tanh"),
        (lambda: MGradNetC(2, activation="sin"), "valid: sigmoid, tanh, weighted_tanh"),
        (lambda: MGradNetM(2, activation="bogus"), "softmax"),
        (lambda: MLPPotential(2, widths=()), "widths"),
        (lambda: MLPPotential(2, activation="relu"), "valid: gelu, silu, softplus, tanh"),
        (lambda: ICNN(2, widths=(4, 0)), "width"),
        (lambda: create_potential("nope", 2), "valid: " + ", ".join(list_potentials())),
        (lambda: create_potential("icnn", 2, n_params=0), "n_params"),
        (lambda: create_potential("gradnet_c", 2, n_params=100, width=3), "not both"),
    ],
)
def test_bad_constructor_arguments_raise(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_mlp_field_has_no_energy():
    with pytest.raises(TypeError, match="no potential"):
        MLPField(2).energy(torch.zeros(1, 2))


def test_device_mismatch_is_reported():
    net = GradNetC(2)
    x = torch.zeros(1, 2, device="meta")
    with pytest.raises(ValueError, match="meta"):
        net(x)
