"""The DDPM teacher task (Ho et al. 2020, Alg. 1): L_simple = E ||eps - eps_theta(x_t, t)||^2 with
t ~ U{0..T-1} (0-indexed), x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; per-element mean as the
official ``meanflat``.

Image data stays uint8 in memory and each batch is scaled to [-1, 1] when drawn, with DDPM's random
horizontal flip (App. B) when ``train.hflip`` is set; the network may sit on a GPU (the batch follows it)."""
from __future__ import annotations

import torch

from trilemma.data.images import training_batch
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.training.loop import Phase


class DDPMTask:
    shard = slice(None)  # set by the loop: this rank's slice of the global batch

    def __init__(self, net: torch.nn.Module, schedule: DiscreteSchedule, x0: torch.Tensor, train: dict):
        self.modules = {"net": net}
        self.ema_modules = ["net"]
        self.schedule, self.x0, self.batch_size = schedule, x0, train["batch_size"]
        self.phases = [Phase("denoise", ["net"], self.loss, lr=train["lr"],
                             weight_decay=train.get("weight_decay", 0.0))]
        self.hflip = bool(train.get("hflip", False))

    def sample_batch(self, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, self.x0.shape[0], (self.batch_size,), generator=gen)
        x0 = self.x0[idx]
        return training_batch(x0, gen, self.hflip) if x0.dtype == torch.uint8 else x0

    def loss(self, x0: torch.Tensor, gen: torch.Generator):
        t = torch.randint(0, self.schedule.num_steps, (x0.shape[0],), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        x0, t, eps = x0[self.shard], t[self.shard], eps[self.shard]  # this rank's slice
        x_t = self.schedule.q_sample(x0, t, eps)
        device = next(self.modules["net"].parameters()).device
        pred = self.modules["net"](x_t.to(device), t.float().to(device))
        return ((pred - eps.to(device)) ** 2).mean(), {}
