import pytest
import torch


@pytest.fixture(scope="module")
def one_thread_module():
    """One torch thread for module-scoped fixtures that train (they are set up before the suite's per-test
    single-thread fixture; two threads on the loaded 2-core machine made one such fit ~50x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
