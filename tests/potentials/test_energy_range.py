"""The strong-convexity term of a monotone potential's energy stays finite wherever its value fits the dtype."""

import pytest
import torch

from gradflow.potentials import ICNN, MGradNetC, MGradNetM


@pytest.mark.parametrize("net", [MGradNetM(2, width=4, n_modules=2, strong_convexity=0.5),
                                 MGradNetC(2, width=4, depth=2, strong_convexity=0.5),
                                 ICNN(2, widths=(4,), strong_convexity=0.5)], ids=lambda n: type(n).__name__)
def test_energy_of_large_finite_float32_inputs_is_finite(net):
    x = torch.full((1, 2), 1.5e19)  # |x|^2 = 4.5e38 overflows float32; mu/2 |x|^2 = 1.1e38 does not
    assert torch.isinf(x.square().sum(-1)).all()
    energy = net.energy(x)
    assert torch.isfinite(energy).all()
    assert torch.allclose(energy.double(), net.double().energy(x.double()), rtol=1e-5)
