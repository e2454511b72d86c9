"""state_dict round trips with weights_only=True, and CUDA agreement (skipped without CUDA)."""

import pytest
import torch

from gradflow.potentials import create_potential, list_potentials


@pytest.mark.parametrize("name", list_potentials())
def test_state_dict_round_trip_with_weights_only(name, tmp_path):
    torch.manual_seed(0)
    net = create_potential(name, 3)
    path = tmp_path / "model.pt"
    torch.save(net.state_dict(), path)
    torch.manual_seed(1)
    clone = create_potential(name, 3)
    clone.load_state_dict(torch.load(path, weights_only=True))
    x = torch.randn(5, 3)
    torch.testing.assert_close(clone(x), net(x), rtol=0, atol=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list_potentials())
def test_cuda_matches_cpu(name):
    torch.manual_seed(0)
    net = create_potential(name, 4).double()
    x = torch.randn(16, 4, dtype=torch.float64)
    gpu = create_potential(name, 4).double().cuda()
    gpu.load_state_dict(net.state_dict())
    torch.testing.assert_close(gpu(x.cuda()).cpu(), net(x), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gpu.jacobian(x.cuda()).cpu(), net.jacobian(x), rtol=1e-10, atol=1e-10)
    if net.is_conservative:
        torch.testing.assert_close(gpu.energy(x.cuda()).cpu(), net.energy(x), rtol=1e-9, atol=1e-9)
