import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Small convolutions are dominated by thread start-up on shared CPUs: run each test on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
