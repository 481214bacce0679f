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


class Reducer:
    """Sums and row gathers over the ranks of a data-parallel exact fit; the identity in one process.

    Every rank holds its share of the structures (their overlaps, features and targets); what
    the solver needs from all of them, Phi^T S Phi z, Phi^T S d, the one-centre blocks, feature
    Gram matrices and held-out errors, is summed with all_reduce (gloo on CPU), so every rank
    obtains the same numbers and runs the same iterations.
    """

    def __init__(self, ctx: Context | None = None):
        self.ctx = ctx if ctx is not None else Context()

    @property
    def active(self) -> bool:
        return self.ctx.active

    def shard(self, items: list) -> list:
        return shard(items, self.ctx)

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """The elementwise sum of ``t`` over the ranks (a new tensor when data-parallel)."""
        if not self.active:
            return t
        out = t.contiguous().clone()
        dist.all_reduce(out)
        return out

    def sum_float(self, value: float) -> float:
        return all_sum(value, self.ctx)

    def gather_rows(self, t: torch.Tensor) -> tuple[torch.Tensor, slice]:
        """The rows of every rank, in rank order, and where this rank's rows are among them."""
        if not self.active:
            return t, slice(0, t.shape[0])
        count = torch.tensor([t.shape[0]], dtype=torch.int64, device=t.device)
        counts = [torch.zeros_like(count) for _ in range(self.ctx.world)]
        dist.all_gather(counts, count)
        sizes = [int(c) for c in counts]
        padded = t.new_zeros((max(sizes), *t.shape[1:]))
        padded[: t.shape[0]] = t
        parts = [torch.zeros_like(padded) for _ in range(self.ctx.world)]
        dist.all_gather(parts, padded.contiguous())
        start = sum(sizes[: self.ctx.rank])
        return torch.cat([p[:s] for p, s in zip(parts, sizes)]), slice(start, start + sizes[self.ctx.rank])
