"""Data-parallel training over torch.distributed without DistributedDataParallel (private).

Losses in gradflow often differentiate through the model's inputs (``torch.autograd.grad(...,
create_graph=True)``, double backward) and call model methods other than ``forward`` (``energy``).
``DistributedDataParallel`` hooks only ``forward`` and does not support double backward, so instead
each rank runs a plain backward on its shard and the trainer sums the share-weighted gradients with
one ``all_reduce`` per dtype on flattened (coalesced) buffers, before clipping and the optimizer step.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from ._device import resolve_device

__all__ = ["Distributed", "setup_distributed"]


@dataclass
class Distributed:
    """The process group a run trains in; with ``world_size == 1`` every method is a no-op."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Overwrite every parameter and buffer with rank 0's values."""
        if self.world_size > 1:
            with torch.no_grad():
                for tensor in module.state_dict().values():
                    dist.broadcast(tensor, src=0)

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj) -> list:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum_floats(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over ranks (float64)."""
        if self.world_size == 1:
            return values
        buf = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(buf)
        return buf.tolist()

    def reduce_gradients(self, params: list[torch.Tensor], share: float, values: list[float]) -> list[float]:
        """Replace each gradient by ``sum over ranks of share_r * grad_r`` and return ``sum_floats(values)``.

        ``share`` is this rank's fraction of the global batch, so for a loss that is a mean over the
        batch the result is the gradient of the global-batch loss, exactly what one process would get.
        A parameter keeps ``grad = None`` only if it got no gradient on any rank.
        """
        if self.world_size == 1:
            return values
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        had_grad = [float(p.grad is not None) for p in params]
        scalars = torch.tensor(values + had_grad, dtype=torch.float64, device=self.device)
        buckets: dict[torch.dtype, list[int]] = {}
        for i, g in enumerate(grads):
            buckets.setdefault(g.dtype, []).append(i)
        flats = {dtype: torch.cat([grads[i].reshape(-1) for i in idx]).mul_(share) for dtype, idx in buckets.items()}
        works = [dist.all_reduce(buf, async_op=True) for buf in (scalars, *flats.values())]
        for work in works:
            work.wait()
        any_grad = scalars[len(values) :].tolist()
        for dtype, idx in buckets.items():
            chunks = flats[dtype].split([params[i].numel() for i in idx])
            for i, chunk in zip(idx, chunks, strict=True):
                if any_grad[i] > 0:
                    params[i].grad = chunk.view_as(params[i])
        return scalars[: len(values)].tolist()


def setup_distributed(device) -> Distributed:
    """Join (or, under ``torchrun`` with ``WORLD_SIZE > 1``, create) the default process group.

    The backend is NCCL on CUDA and Gloo otherwise. A CUDA device without an index becomes
    ``cuda:LOCAL_RANK``. Without a process group and with ``WORLD_SIZE`` unset or 1, this is a
    single-process run. A group created here stays up for later calls and is destroyed at exit:
    re-creating the default group in the same process reuses the rendezvous keys of the old one,
    which makes the new one connect to dead peers.
    """
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    initialized = dist.is_available() and dist.is_initialized()
    if not initialized and world <= 1:
        return Distributed(device=dev)
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world} but this torch build has no torch.distributed")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not initialized:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        atexit.register(_destroy_process_group)
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), device=dev)


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
