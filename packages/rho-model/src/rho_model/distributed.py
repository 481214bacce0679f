"""Data-parallel context from torchrun's environment (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init(device: str) -> Context:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else a 1-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    ctx = Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device.startswith("cuda"):
        torch.cuda.set_device(ctx.local_rank)
    return ctx


def shard(items: list, ctx: Context) -> list:
    """This rank's share of a batch (contiguous, sizes differ by at most one)."""
    if not ctx.active:
        return items
    n = len(items)
    start = ctx.rank * n // ctx.world
    stop = (ctx.rank + 1) * n // ctx.world
    return items[start:stop]


def all_sum(value: float, ctx: Context, device: str = "cpu") -> float:
    if not ctx.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


def finish(ctx: Context) -> None:
    if ctx.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
