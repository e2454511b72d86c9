"""Data-parallel training under torchrun: 2 processes must reproduce the 1-process run."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

SCRIPT = Path(__file__).with_name("_ddp_script.py")


def _load_script():
    spec = importlib.util.spec_from_file_location("_ddp_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed + gloo")
def test_two_processes_match_one_process(tmp_path, monkeypatch):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        str(SCRIPT),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2

    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    single = _load_script().run(None, 12)  # the same training in this (single) process

    for run in ("full", "resumed"):  # every rank returns the same result
        for name, value in rank0[run]["params"].items():
            assert torch.equal(value, rank1[run]["params"][name]), (run, name)
        assert rank0[run]["losses"] == rank1[run]["losses"] and rank0[run]["best_step"] == rank1[run]["best_step"]
    for name, value in rank0["full"]["params"].items():  # resuming under DDP is exact
        assert torch.equal(value, rank0["resumed"]["params"][name]), name
    for name, value in single["params"].items():  # same global batches and averaged gradients
        torch.testing.assert_close(rank0["full"]["params"][name], value, rtol=0, atol=1e-10)
    torch.testing.assert_close(rank0["full"]["losses"], single["losses"], rtol=1e-12, atol=0)
    evaluated = [v is not None for v in single["val_losses"]]
    assert [v is not None for v in rank0["full"]["val_losses"]] == evaluated and sum(evaluated) == 4
    assert [v for v in rank0["full"]["val_losses"] if v is not None] == pytest.approx(
        [v for v in single["val_losses"] if v is not None], rel=1e-12
    )
    assert rank0["full"]["best_step"] == single["best_step"]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["best.pt", "last.pt"]  # rank 0 only
