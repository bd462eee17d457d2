"""The DDPM teacher task (Ho et al. 2020, Alg. 1): L_simple = E ||eps - eps_theta(x_t, t)||^2 with
t ~ U{0..T-1} (0-indexed), x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; per-element mean as the
official ``meanflat``.

On image profiles :mod:`trilemma.modality` scales the uint8 batches (with DDPM's random horizontal flip,
App. B, when ``train.hflip`` is set) and puts the network on the GPU; the task is the same for both."""
from __future__ import annotations

import torch

from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.schema.models import Train
from trilemma.training.loop import Phase


class DDPMTask:
    shard = slice(None)  # set by the loop: this rank's slice of the global batch

    def __init__(self, net: torch.nn.Module, schedule: DiscreteSchedule, x0: torch.Tensor, train: Train):
        self.modules = {"net": net}
        self.ema_modules = ["net"]
        self.schedule, self.x0, self.batch_size = schedule, x0, train.batch_size
        self.phases = [Phase("denoise", ["net"], self.loss, lr=train.lr, weight_decay=train.weight_decay)]

    def sample_batch(self, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, self.x0.shape[0], (self.batch_size,), generator=gen)
        return self.x0[idx]

    def loss(self, x0: torch.Tensor, gen: torch.Generator):
        t = torch.randint(0, self.schedule.num_steps, (x0.shape[0],), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        x0, t, eps = x0[self.shard], t[self.shard], eps[self.shard]  # this rank's slice
        x_t = self.schedule.q_sample(x0, t, eps)
        pred = self.modules["net"](x_t, t.float())
        return ((pred - eps) ** 2).mean(), {}
