"""What the image profiles add to the toy's tasks (progressive distillation, DDGAN), without a second
copy of any loss:

- :class:`ImageBatches` wraps a task whose batches are drawn from uint8 images and hands the loop
  float batches in [-1, 1] (DDPM's scaling, Ho et al. 2020 Sec. 3.3), each image flipped left-right
  with probability 1/2 when ``hflip`` is set (DDPM App. B; the DDGAN code's RandomHorizontalFlip).
  The flips draw from the loop's generator, so exact resume holds.
- :func:`on_device` runs a network on the accelerator while the task's arithmetic (noise drawn from
  the loop's CPU generator, schedules in float64) stays on the CPU: its inputs move to the device
  and its output comes back, through forward hooks, so the network's weights and state dict are
  untouched.  A batch of CIFAR-10 images is 1.5 MB, so the copies cost little beside the U-Net.
"""
from __future__ import annotations

import torch
from torch import nn

from trilemma.data.images import training_batch


class ImageBatches:
    """The loop's view of ``task``: the same modules and phases, image batches scaled (and flipped)."""

    def __init__(self, task, hflip: bool = False):
        self.task, self.hflip = task, hflip
        self.modules, self.ema_modules = task.modules, task.ema_modules
        self.phases, self.batch_size = task.phases, task.batch_size
        self.bill = getattr(task, "bill", None)   # the same dict: the distillation bill's counters

    @property
    def shard(self):
        return self.task.shard

    @shard.setter
    def shard(self, value):          # the loop sets this rank's slice; the wrapped task uses it
        self.task.shard = value

    def sample_batch(self, gen: torch.Generator):
        batch = self.task.sample_batch(gen)
        if isinstance(batch, tuple):  # (images, labels) of the distillation tasks
            return (training_batch(batch[0], gen, self.hflip), *batch[1:])
        return training_batch(batch, gen, self.hflip)


def _move(value, device):
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    return value


def on_device(net: nn.Module, device: torch.device) -> nn.Module:
    """Put ``net`` on ``device``; off the CPU, its calls take CPU tensors and return CPU tensors."""
    net.to(device)
    if device.type == "cpu":
        return net

    def inputs(module, args, kwargs):
        return tuple(_move(a, device) for a in args), _move(kwargs, device)

    net.register_forward_pre_hook(inputs, with_kwargs=True)
    net.register_forward_hook(lambda m, a, k, out: out.to("cpu"), with_kwargs=True)
    return net


def training_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def without_dropout(net: nn.Module) -> nn.Module:
    """Dropout off (progressive distillation's rounds train with dropout 0, reference
    ``cifar_distill.py``, whatever the teacher used)."""
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return net
