import pytest
import torch
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=20, derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=200)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _one_thread():
    """Test tensors are small: one intra-op thread is fastest and immune to oversubscription on the
    shared 2-core CI machines. Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)


def cuda_devices():
    return ["cuda"] if torch.cuda.is_available() else []
