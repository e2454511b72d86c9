"""Batch sources: tensors, map-style Datasets and sampler callables, sharded over ranks (private).

Finite data (tensors, Datasets) is visited in epochs. Epoch ``e`` uses the permutation
``randperm(n, generator seeded from (seed, e))``, cut into global batches of ``batch_size`` (the
last one may be smaller); evaluation uses the data in order. Rank ``r`` of ``w`` takes
``tensor_split(global_batch, w)[r]``. The position in the data is therefore just
``(epoch, batch index)``, identical on every rank and independent of the number of ranks, which
makes resuming exact. A sampler ``sample(generator)`` is called once per step with a CPU
``torch.Generator`` re-seeded from ``(seed, rank, call index)``, so its state is the call count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

from ._device import derive_seed
from ._fingerprint import qualified_name, tensor_fingerprint

__all__ = ["make_source", "to_device"]


def to_device(batch, device: torch.device):
    """Move every tensor in a (nested tuple/list/dict) batch to ``device``; other leaves pass through."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class _IndexedSource:
    """Global batches of indices into ``n`` items (shuffled per epoch for training), sharded over ranks."""

    def __init__(self, n: int, batch_size: int | None, seed: int, rank: int, world_size: int):
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.batch_size = n if batch_size is None else min(batch_size, n)
        self.batches_per_epoch = math.ceil(n / self.batch_size)
        self.eval_count = self.batches_per_epoch  # global batches per evaluation
        self.epoch, self.position = 0, 0
        self._local: list[tuple[torch.Tensor, int]] | None = None
        self._iter: Iterator | None = None

    def signature(self) -> dict:
        return {"kind": type(self).__name__, "n": self.n, "batch_size": self.batch_size}

    def _local_batches(self, order: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        """``(this rank's indices, global batch size)`` for each global batch of ``order``."""
        return [(torch.tensor_split(b, self.world_size)[self.rank], len(b)) for b in order.split(self.batch_size)]

    def _load(self, batches: list[torch.Tensor]) -> Iterator:
        """Iterator over the device-ready batches for the non-empty index tensors ``batches``."""
        raise NotImplementedError

    def next(self):
        """``(batch, share)``: this rank's part of the next global batch (None if empty) and its fraction."""
        if self._local is None:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, "perm", self.epoch))
            self._local = self._local_batches(torch.randperm(self.n, generator=gen))
            self._iter = self._load([idx for idx, _ in self._local[self.position :] if len(idx)])
        idx, size = self._local[self.position]
        batch = next(self._iter) if len(idx) else None
        self.position += 1
        if self.position == self.batches_per_epoch:
            self.epoch, self.position, self._local, self._iter = self.epoch + 1, 0, None, None
        return batch, len(idx) / size

    def eval_batches(self):
        """Yield ``(batch, share)`` for this rank's non-empty parts of the batches of the data in order."""
        parts = [(idx, len(idx) / size) for idx, size in self._local_batches(torch.arange(self.n)) if len(idx)]
        yield from zip(self._load([idx for idx, _ in parts]), [share for _, share in parts], strict=True)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position, self._local, self._iter = (
            int(state["epoch"]),
            int(state["position"]),
            None,
            None,
        )


class _TensorSource(_IndexedSource):
    def __init__(self, tensors: tuple[torch.Tensor, ...], single: bool, device: torch.device, **kwargs):
        super().__init__(len(tensors[0]), **kwargs)
        self.tensors, self.single, self.device = tensors, single, device

    def fingerprint(self) -> list[str]:
        """One :func:`tensor_fingerprint` per tensor."""
        return [tensor_fingerprint(t) for t in self.tensors]

    def _load(self, batches):
        for idx in batches:
            parts = tuple(to_device(t[idx.to(t.device)], self.device) for t in self.tensors)
            yield parts[0] if self.single else parts


class _DatasetSource(_IndexedSource):
    def __init__(self, dataset: Dataset, device: torch.device, num_workers: int, **kwargs):
        super().__init__(len(dataset), **kwargs)
        self.dataset, self.device, self.num_workers = dataset, device, num_workers

    def fingerprint(self) -> list[str]:
        """The Dataset's type and length (its items are not read)."""
        return [f"{qualified_name(type(self.dataset))} of length {self.n}"]

    def _load(self, batches):
        # An explicit generator keeps the DataLoader from drawing its worker seed from the global RNG.
        loader = DataLoader(
            self.dataset,
            batch_sampler=[b.tolist() for b in batches],
            collate_fn=default_collate,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(derive_seed(self.seed, "loader", self.epoch, self.position)),
        )
        return (to_device(batch, self.device) for batch in loader)


class _SamplerSource:
    """An infinite stream ``sample(generator)``; every rank draws its own batch (share ``1 / world_size``)."""

    epoch = None
    eval_count = 1

    def __init__(self, sample: Callable, seed: int, rank: int, world_size: int, device: torch.device):
        self.sample, self.seed, self.rank, self.world_size, self.device = (
            sample,
            seed,
            rank,
            world_size,
            device,
        )
        self.calls = 0

    def signature(self) -> dict:
        return {"kind": type(self).__name__}

    def fingerprint(self) -> list[str]:
        """The sampler's type (a sampler's output is not drawn for this)."""
        return [qualified_name(type(self.sample))]

    def _draw(self, stream: str, index: int):
        gen = torch.Generator().manual_seed(derive_seed(self.seed, stream, self.rank, index))
        return to_device(self.sample(gen), self.device)

    def next(self):
        batch = self._draw("train", self.calls)
        self.calls += 1
        return batch, 1.0 / self.world_size

    def eval_batches(self):
        """One batch, drawn from the same seed at every evaluation so validation losses are comparable."""
        yield self._draw("eval", 0), 1.0 / self.world_size

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state["calls"])


def make_source(data, *, batch_size, seed, rank, world_size, device, num_workers=0, name="data"):
    """Wrap ``data`` (tensor, tuple/list of tensors, map-style Dataset or sampler callable) as a batch source.

    Raises ValueError for empty data, mismatched first dimensions, ``batch_size`` with a sampler, or
    any other kind of object.
    """
    common = {"seed": seed, "rank": rank, "world_size": world_size}
    if isinstance(data, torch.Tensor) or (
        isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data)
    ):
        single = isinstance(data, torch.Tensor)
        tensors = (data,) if single else tuple(data)
        if any(t.ndim == 0 for t in tensors):
            raise ValueError(f"{name}: tensors must have a first (sample) dimension; got a 0-dim tensor")
        sizes = [len(t) for t in tensors]
        if len(set(sizes)) > 1:
            raise ValueError(f"{name}: tensors must share their first dimension, got sizes {sizes}")
        if sizes[0] == 0:
            raise ValueError(f"{name} is empty (first dimension 0)")
        return _TensorSource(tensors, single, device, batch_size=batch_size, **common)
    if isinstance(data, IterableDataset):
        raise ValueError(f"{name}: IterableDataset is not supported; pass a map-style Dataset or a sampler callable")
    if isinstance(data, Dataset):
        if len(data) == 0:
            raise ValueError(f"{name} is an empty Dataset")
        return _DatasetSource(data, device, num_workers, batch_size=batch_size, **common)
    if callable(data) and not isinstance(data, torch.nn.Module):
        if batch_size is not None:
            raise ValueError(f"batch_size does not apply to a sampler {name}: the sampler decides the batch")
        return _SamplerSource(data, device=device, **common)
    raise ValueError(
        f"{name} must be a tensor, a tuple/list of tensors with equal first dimension, a map-style "
        f"torch.utils.data.Dataset or a callable sample(generator) -> batch; got {type(data).__name__}"
    )
