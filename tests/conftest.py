import pytest
import torch
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=20, derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=200)
settings.load_profile("default")


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)


def cuda_devices():
    return ["cuda"] if torch.cuda.is_available() else []
