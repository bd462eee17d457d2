"""A small CNN classifier: the feature space of the image profiles that have no Inception weights
(Fashion-MNIST).  Its penultimate layer plays the role of Inception's pool3 for FID, KID and
precision/recall, its logits the role of Inception's logits for the Inception Score (Salimans et al.
2016: IS = exp E_x KL(p(y|x) || p(y))), as "FID in a domain classifier's feature space" is commonly
reported for MNIST-like data.  Any input size works (global average pooling)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, in_ch: int = 1, num_classes: int = 10, channels=(32, 64, 128), features: int = 128,
                 dropout: float = 0.3):
        super().__init__()
        layers, c = [], in_ch
        for i, width in enumerate(channels):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            if i != len(channels) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c = width
        self.body = nn.Sequential(*layers)
        self.penultimate = nn.Linear(c, features)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, num_classes)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate features after ReLU, logits) of float images in [-1, 1]."""
        h = F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)
        f = F.relu(self.penultimate(h))
        return f, self.head(self.dropout(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]


def build_classifier(model_cfg: dict, in_ch: int, num_classes: int) -> SmallCNN:
    return SmallCNN(in_ch, num_classes, tuple(model_cfg["channels"]), model_cfg["features"], model_cfg["dropout"])


def load_classifier(model_dir):
    """The trained feature_net classifier (eval mode, frozen) and its model.json."""
    from pathlib import Path

    from trilemma.artifacts import ArtifactError, load_json, load_tensors

    model_dir = Path(model_dir)
    info = load_json(model_dir / "model.json")
    state, meta = load_tensors(model_dir / "model.safetensors")
    if meta.get("kind") != "model" or info.get("method") != "classifier":
        raise ArtifactError(f"{model_dir}: not a feature_net classifier")
    net = build_classifier(info["model"], info["data_dim"][0], info["num_classes"])
    net.load_state_dict(state)
    return net.eval().requires_grad_(False), info
