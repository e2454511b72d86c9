import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Small convolutions run fastest on one thread, and the machine is shared: restore afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
