"""Batches that can be resumed at any step and split across DDP ranks.

The order of epoch ``e`` is a permutation drawn from ``seed + e`` alone, so the position
``(epoch, batch)`` fully determines what comes next: resuming skips indexes, never re-draws.
Every index carries its own augmentation seed for the same reason.
"""
from __future__ import annotations


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2 ** 63 - 1)


class ResumableBatchSampler:
    """Yields lists of ``(index, sample_seed)``; drops the ragged tail (as the reference does)."""

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, epoch: int = 0, start_batch: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.start_batch = epoch, start_batch
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle

    def batches_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world_size)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start_batch)

    def __iter__(self):
        import torch

        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        step = self.batch_size * self.world_size
        for b in range(self.start_batch, self.batches_per_epoch()):
            chunk = order[b * step:(b + 1) * step][self.rank::self.world_size]
            yield [(i, sample_seed(self.seed, self.epoch, i)) for i in chunk]
