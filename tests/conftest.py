import os

import pytest
import torch
from hypothesis import settings

# Hypothesis profiles: "ci" (short and derandomised: the same examples on every CI run) is selected when
# CI=true; "local" (more examples, a fresh draw each run) otherwise; "thorough" on request.
# HYPOTHESIS_PROFILE=NAME selects one explicitly.
settings.register_profile("ci", deadline=None, max_examples=10, derandomize=True)
settings.register_profile("local", deadline=None, max_examples=30)
settings.register_profile("thorough", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "local"))


def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Test tensors are small: one intra-op thread is fastest and immune to oversubscription on the shared
# 2-core CI machines (two threads on a loaded machine made one module fixture's fit ~50x slower). The
# session fixture covers module- and class-scoped fixtures, which are set up before per-test ones; the
# per-test one restores a single thread after a test that changed it (e.g. the CLI's --threads).
@pytest.fixture(scope="session", autouse=True)
def _one_thread_session():
    yield from _single_thread()


@pytest.fixture(autouse=True)
def _one_thread():
    yield from _single_thread()


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)


def cuda_devices():
    return ["cuda"] if torch.cuda.is_available() else []
