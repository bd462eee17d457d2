"""The feature-net task: a classifier trained with cross-entropy on the profile's labelled training
images (uint8 in memory; :mod:`trilemma.modality` scales each batch to [-1, 1], with random horizontal
flips when ``train.hflip`` is set, and puts the network on the GPU).  It gives the
image profiles without Inception weights their feature space (see ``models/classifier.py``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from trilemma.data.images import to_float
from trilemma.schema.models import Train
from trilemma.training.loop import Phase


class ClassifierTask:
    def __init__(self, net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, train: Train):
        self.modules = {"net": net}
        self.ema_modules = ["net"]
        self.images, self.labels, self.batch_size = images, labels, train.batch_size
        self.phases = [Phase("classify", ["net"], self.loss, lr=train.lr, weight_decay=train.weight_decay)]

    def sample_batch(self, gen: torch.Generator):
        idx = torch.randint(0, self.images.shape[0], (self.batch_size,), generator=gen)
        return self.images[idx], self.labels[idx]

    def loss(self, batch, gen: torch.Generator):
        x, y = batch
        logits = self.modules["net"](x)
        return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}


@torch.no_grad()
def accuracy(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``net`` (in eval mode) on uint8 images."""
    net.eval()
    device = next(net.parameters()).device
    correct = 0
    for i in range(0, len(images), batch_size):
        x = to_float(images[i:i + batch_size]).to(device)
        correct += int((net(x).argmax(1).cpu() == labels[i:i + batch_size]).sum())
    return correct / max(1, len(images))
