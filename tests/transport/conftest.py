import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Small batched linear algebra: one thread is faster than two on the shared CI machines."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
