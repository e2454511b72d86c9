"""Known gradient-field targets and fitting a field through gradflow.train."""

import math

import pytest
import torch

from gradflow.potentials import MGradNetC, MLPField, autograd_gradient
from gradflow.potentials.fitting import fit_field, gradient_loss
from gradflow.potentials.targets import PolyMax, create_target, gradient_error_db, gradient_mse, list_targets

TARGETS = {"convex_2d": None, "nonconvex_2d": None, "polymax": 6}


@pytest.mark.parametrize("name", list_targets())
def test_target_gradient_is_the_gradient_of_its_energy(name):
    target = create_target(name, TARGETS[name])
    x = target.sample(64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(autograd_gradient(target.energy, x), target.gradient(x), rtol=1e-12, atol=1e-12)
    assert ((x >= target.low) & (x <= target.high)).all()


@pytest.mark.parametrize("name", [n for n in list_targets() if create_target(n, TARGETS[n]).is_convex])
def test_convex_targets_are_convex_along_segments(name):
    target = create_target(name, TARGETS[name])
    g = torch.Generator().manual_seed(1)
    a, b = (target.sample(500, generator=g, dtype=torch.float64) for _ in range(2))
    t = torch.rand(500, 1, generator=g, dtype=torch.float64)
    lhs = target.energy(t * a + (1 - t) * b)
    rhs = t.squeeze(-1) * target.energy(a) + (1 - t.squeeze(-1)) * target.energy(b)
    assert (lhs <= rhs + 1e-12).all()


def test_polymax_is_normalised_to_unit_mean_gradient_norm():
    target = PolyMax(16)
    x = target.sample(20_000, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert abs(float(target.gradient(x).norm(dim=-1).mean()) - 1.0) < 0.02
    assert float(torch.linalg.eigvalsh(target.matrices).min()) > 0  # each quadratic is convex


def test_grid_is_the_papers_100_by_100_test_grid():
    grid = create_target("convex_2d").grid(100)
    assert grid.shape == (10_000, 2) and grid.min() == 0 and grid.max() == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: create_target("nope"), "valid: convex_2d, nonconvex_2d, polymax"),
        (lambda: create_target("polymax"), "needs dim"),
        (lambda: PolyMax(1), "dim >= 2"),
        (lambda: create_target("convex_2d", 3), "2-dimensional"),
        (lambda: create_target("convex_2d").gradient(torch.zeros(3, 4)), "shape"),
        (lambda: create_target("convex_2d").sample(0), "n must be"),
    ],
)
def test_bad_target_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_error_db_is_minus_infinity_like_for_the_exact_field_and_zero_db_for_unit_error():
    target = create_target("convex_2d")
    x = target.grid(10)

    class Shifted(torch.nn.Module):
        def forward(self, x):
            return target.gradient(x) + torch.tensor([1.0, 0.0])

    assert gradient_mse(Shifted(), target, x) == pytest.approx(1.0)
    assert gradient_error_db(Shifted(), target, x) == pytest.approx(0.0, abs=1e-5)


def test_gradient_loss_is_the_mean_squared_norm():
    model = MLPField(2, widths=(3,))
    x, g = torch.randn(5, 2), torch.randn(5, 2)
    expected = (model(x) - g).square().sum(-1).mean()
    torch.testing.assert_close(gradient_loss(model, (x, g)), expected)


def test_fit_field_lowers_the_error_and_keeps_the_best_weights():
    target = create_target("convex_2d")
    torch.manual_seed(0)
    model = MGradNetC(2, width=7, depth=4)
    before = gradient_error_db(model, target, target.grid(50))
    result = fit_field(model, target, n_train=5000, n_val=1000, epochs=8, batch_size=250, progress=False)
    after = gradient_error_db(result.model, target, target.grid(50))
    assert after < before - 10
    assert result.best_val_loss == min(h["val_loss"] for h in result.history if "val_loss" in h)


def test_gradient_error_db_rejects_an_empty_set_of_points():
    target = create_target("convex_2d")
    with pytest.raises(ValueError, match=r"^x must hold at least one point of shape \(n, 2\)"):
        gradient_error_db(lambda x: x, target, torch.zeros(0, 2))
    with pytest.raises(ValueError, match=r"^x must hold at least one point"):
        gradient_mse(lambda x: x, target, torch.zeros(3, 0, 2))
    with pytest.raises(ValueError, match=r"^x must have shape \(\.\.\., 2\)"):
        gradient_error_db(lambda x: x, target, torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"^target must be a FieldTarget"):
        gradient_error_db(lambda x: x, "convex_2d", torch.zeros(4, 2))


def test_gradient_error_db_float64_and_non_contiguous_points():
    target = create_target("convex_2d")
    x = target.grid(5, dtype=torch.float64).T.contiguous().T  # non-contiguous (25, 2)
    assert not x.is_contiguous()
    shifted = gradient_error_db(lambda p: target.gradient(p) + 1.0, target, x)
    assert shifted == pytest.approx(10 * math.log10(2.0))
