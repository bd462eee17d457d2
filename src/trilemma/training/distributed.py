"""Data parallelism under ``torchrun`` (NCCL on GPUs, gloo on CPU): the one training loop, and the
sampling and feature extraction that shard their batches (issue 7).

Every rank draws the same *global* batch and randomness from the same seeded generator and keeps
its slice (``task.shard``); gradients are averaged across ranks after backward, which is what
DistributedDataParallel computes (without its bucketing).  Because the slices are equal, the
average of the ranks' mean losses is the global batch's mean loss, so a run on any number of ranks
follows the 1-rank run with the same global batch up to float reduction order.  Only rank 0 writes
checkpoints, logs and artifacts.  Without torchrun (no WORLD_SIZE) everything is a no-op.

Sampling and evaluation split work, not a batch: the ``ceil(n / batch_size)`` global batches of a
bank (or of the images whose features are extracted) are cut into contiguous runs, one per rank
(``batch_slice``); every batch keeps its index, size and seed, so it is computed exactly as in the
1-rank run, and rank 0 gathers the runs in rank order (``gather``), i.e. in batch order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, global_batch: int) -> slice:
        if global_batch % self.world:
            raise ValueError(f"the global batch ({global_batch}) must be divisible by the number of "
                             f"ranks ({self.world}); change the batch_size in the config")
        local = global_batch // self.world
        return slice(self.rank * local, (self.rank + 1) * local)

    def batch_slice(self, n: int, batch_size: int) -> slice:
        """This rank's items of ``range(n)`` cut into global batches of ``batch_size``: a contiguous
        run of whole batches (the first ``num_batches % world`` ranks take one batch more)."""
        per, extra = divmod(-(-n // batch_size), self.world)
        first = self.rank * per + min(self.rank, extra)
        last = first + per + (self.rank < extra)
        return slice(min(first * batch_size, n), min(last * batch_size, n))

    def gather(self, obj) -> list | None:
        """Every rank's ``obj`` (picklable; tensors on the CPU), in rank order, on rank 0; None elsewhere."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def average_gradients(self, params) -> None:
        if self.world == 1:
            return
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad.div_(self.world)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def context() -> Context:
    """The current rank and world size, initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Context()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return Context(dist.get_rank(), dist.get_world_size())


def shutdown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def launch(gpus: int, verb_argv: list[str]) -> None:
    """Re-run this verb under ``torchrun`` with one process per GPU when the config asks for more
    than one (``resources.<rule>.gpu``) and we are not already under torchrun; else return.  The DAG
    tools therefore run the same ``trilemma <verb>`` command whatever the GPU count."""
    import sys
    if gpus <= 1 or "WORLD_SIZE" in os.environ:
        return
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(gpus),
           "-m", "trilemma", *verb_argv]
    os.execv(sys.executable, cmd)
