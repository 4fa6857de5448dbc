"""Several GPUs through ``torchrun``: one process per device, rank 0 validates and writes.

Every rank draws its own P x K batches (its sampler is seeded by rank), which is what a
DistributedSampler would give for a class-balanced sampler. Only world size 1 can be tested
on a machine without GPUs; the multi-process path follows PyTorch's DDP recipe as is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from indexer.embedder import resolve_device


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def share(self, value: int) -> int:
        """Rank 0's number (such as the LR schedule's length), the same on every rank."""
        if self.world == 1:
            return value
        tensor = torch.tensor([value], device=self.device)
        dist.broadcast(tensor, src=0)
        return int(tensor.item())

    def agree(self, flag: bool) -> bool:
        """Rank 0's decision (stop or go on), shared with every rank."""
        return bool(self.share(int(flag)))

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: str) -> Dist:
    """Single process unless started by ``torchrun`` (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(0, 1, resolve_device(device))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        torch.cuda.set_device(local)
        chosen = torch.device("cuda", local)
    dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Dist(rank, world, chosen)
