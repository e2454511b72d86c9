"""Bad inputs and bad constructor arguments raise ValueError saying what was expected."""

import pytest
import torch

from gradflow.potentials import (
    ICNN,
    FastGradientField,
    GradNetC,
    GradNetM,
    MGradNetC,
    MGradNetM,
    MLPField,
    MLPPotential,
    autograd_gradient,
    autograd_jacobian,
    count_parameters,
    create_potential,
    identity_scale_init,
    list_potentials,
    make_elementwise_activation,
    make_module_activation,
    positive,
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
        (lambda: ICNN(2, width=0), "width"),
        (lambda: MLPPotential(2, width=8, depth=2.5), "depth"),
        (lambda: MLPField(2, widths=(8,), depth=2), "not both"),
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


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: MGradNetC(2, strong_convexity=None), r"^strong_convexity must be a finite number >= 0"),
        (lambda: ICNN(2, strong_convexity="0.1"), r"^strong_convexity must be a finite number >= 0"),
        (lambda: MGradNetM(2, strong_convexity=True), r"^strong_convexity must be a finite number >= 0"),
        (lambda: MLPPotential(2, widths=8), r"^widths must be a non-empty tuple of integers >= 1"),
        (lambda: MLPField(2, widths=[]), r"^widths must be a non-empty tuple"),
        (lambda: ICNN(2, widths="ab"), r"^widths must be a non-empty tuple"),
        (lambda: create_potential("icnn", 2, n_params=100, n_hidden=0), r"^n_hidden must be an integer >= 1"),
        (lambda: create_potential(None, 2), r"^unknown potential name None"),
        (lambda: create_potential(["icnn"], 2), r"^unknown potential name \['icnn'\]"),
        (lambda: make_elementwise_activation("weighted_tanh", 4, True), r"^shape must be a non-empty tuple"),
        (lambda: make_elementwise_activation("tanh", (), True), r"^shape must be a non-empty tuple"),
        (lambda: make_elementwise_activation("tanh", (4,), "yes"), r"^monotone must be True or False"),
        (lambda: make_module_activation("softmax", 0, 4, True), r"^n_modules must be an integer >= 1"),
        (lambda: make_module_activation("softmax", 2, None, True), r"^width must be an integer >= 1"),
        (lambda: positive([0.0]), r"^raw must be a floating-point torch.Tensor, got list"),
        (lambda: positive(torch.zeros(2, dtype=torch.int64)), r"^raw must be a floating-point"),
        (lambda: autograd_gradient("x", torch.zeros(2)), r"^energy must be a callable"),
        (lambda: autograd_jacobian(lambda x: x, [0.0, 1.0]), r"^x must be a floating-point torch.Tensor"),
        (lambda: count_parameters("x"), r"^model must be a torch.nn.Module"),
        (lambda: identity_scale_init(ICNN(2)), r"^net must be a cascaded gradient network"),
        (lambda: FastGradientField(torch.nn.Linear(2, 2)), r"^model must be a gradient network"),
    ],
)
def test_every_bad_argument_is_named(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(("kwargs", "match"), [({"tol": "a"}, "^tol"), ({"tol": float("inf")}, "^tol"),
                                               ({"tol": True}, "^tol"), ({"max_iter": 2**70}, "^max_iter")])
def test_inverse_checks_its_options(kwargs, match):
    net = MGradNetM(2, width=4, n_modules=2, strong_convexity=0.5)
    with pytest.raises(ValueError, match=match):
        net.inverse(torch.zeros(3, 2), **kwargs)


def test_valid_unusual_constructor_arguments_still_work():
    assert MLPPotential(2, widths=[4, 3]).widths == (4, 3)
    assert MGradNetC(2, width=4, strong_convexity=torch.tensor(0.5)).strong_convexity == 0.5
    assert make_elementwise_activation("weighted_tanh", [2, 3], True).weights.a.shape == (2, 3)
    net = MGradNetM(2, width=4, n_modules=2, strong_convexity=0.5).double()
    y = torch.randn(3, 2, dtype=torch.float64)
    assert torch.allclose(net(net.inverse(y, tol=1e-12)), y, atol=1e-10)


@pytest.mark.parametrize("name", ["gradnet_c", "mgradnet_m", "icnn"])
def test_potentials_work_under_torch_func_transforms_and_still_refuse_nan_when_called(name):
    from gradflow.potentials import create_potential

    torch.manual_seed(0)
    net = create_potential(name, 3, n_params=200).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    jac = torch.vmap(torch.func.jacrev(net))(x)  # the finiteness check would read a value of a wrapped tensor
    torch.testing.assert_close(jac, net.jacobian(x))
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        net(torch.full((2, 3), float("nan"), dtype=torch.float64))


@pytest.mark.parametrize(("dim", "n_params", "n_modules"), [(2, 100, 4), (2, 300, 8), (2, 500, 16), (8, 2000, 16)])
def test_gradnet_m_sized_by_budget_gets_the_most_modules_of_width_at_least_8(dim, n_params, n_modules):
    from gradflow.potentials import create_potential

    net = create_potential("gradnet_m", dim, n_params=n_params)
    assert net.n_modules == n_modules and (net.width >= 8 or n_modules == 4)
    assert abs(count_parameters(net) - n_params) <= 0.1 * n_params
    assert create_potential("gradnet_m", dim, n_params=n_params, n_modules=4).n_modules == 4  # explicit wins


@pytest.mark.parametrize("cls", [MLPPotential, MLPField, ICNN])
def test_baselines_take_the_gradient_networks_width_and_depth(cls):
    """One size vocabulary across the zoo: width (units per layer) and depth (layers) as for GradNetC."""
    assert cls(2, width=8, depth=3).widths == (8, 8, 8)
    assert cls(2, width=8).widths == (8, 8) and cls(2).widths == (64, 64)
    assert cls(2, (5, 7)).widths == (5, 7)  # widths stays for layers of different sizes


def test_create_potential_sizes_every_kind_by_width_and_depth():
    from gradflow.potentials import create_potential

    assert create_potential("mlp_potential", 2, width=16, depth=3).widths == (16, 16, 16)
    assert len(create_potential("icnn", 2, n_params=500, depth=3).widths) == 3  # depth as for gradnet_c
    assert create_potential("gradnet_c", 2, n_params=500, depth=3).depth == 3
