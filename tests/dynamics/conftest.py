import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one intra-op thread is fastest and immune to oversubscription on shared CI machines."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
