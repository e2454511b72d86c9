"""NumPy arrays are accepted wherever transport takes data, converted once at the boundary."""

import copy

import numpy as np
import pytest
import torch

from gradflow.transport import fit_ot_map


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 2)), 2.0 * rng.normal(size=(300, 2)) + 1.0
    return x, y, fit_ot_map(x, y, method="plan", steps=30, progress=False, device="cpu")


def test_fit_takes_numpy_samples_and_keeps_their_dtype(fitted):
    x, _, T = fitted
    assert next(T.model.parameters()).dtype == torch.float64  # NumPy's float64 kept, as for a float64 tensor
    out = T(x[:5])
    assert isinstance(out, torch.Tensor) and torch.equal(out, T(torch.from_numpy(x[:5])))


def test_map_methods_take_numpy_points_in_the_models_dtype(fitted):
    x, y, T = fitted
    T32 = type(T)(copy.deepcopy(T.model).float())
    assert T32(x[:3]).dtype == torch.float32  # a float64 array meets a float32 model: converted to it
    assert T32.potential(x[:3]).shape == (3,) and T32.interpolate(x[:3], 0.5).shape == (3, 2)
    assert T32.inverse(y[:2].astype(np.float32)).shape == (2, 2)
    assert np.isfinite(T32.transport_cost(x))


def test_integer_arrays_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match="source must be a float32 or float64"):
        fit_ot_map(np.zeros((10, 2), dtype=np.int64), np.zeros((10, 2)))
