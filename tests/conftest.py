import os
import subprocess
from pathlib import Path

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


# ---------------------------------------------------------------------------------------- repository hygiene
# No test may leave files in the working tree (outputs belong in tmp_path): the session compares the untracked
# and ignored entries of `git status` before and after, caches aside, and fails if any appeared.
_ROOT = Path(__file__).resolve().parent.parent
_CACHES = ("__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", ".egg-info", ".venv")


def _stray_entries():
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"], cwd=_ROOT,
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None  # not a git checkout (e.g. an sdist): nothing to compare
    return {line[3:] for line in out.stdout.splitlines()
            if line[:2] in ("??", "!!") and not any(cache in line for cache in _CACHES)}


def pytest_sessionstart(session):
    session.config._gradflow_entries = _stray_entries()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_gradflow_entries", None)
    after = _stray_entries() if before is not None else None
    if after is None:
        return
    new = sorted(after - before)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"ERROR: tests left files in the working tree: {', '.join(new)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
