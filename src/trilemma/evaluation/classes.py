"""What the profile's classifier says about a bank of images: which classes the samples fall in, and,
for class-conditional banks, how often and how surely they are the class that was asked for.

- ``class_min_share`` / ``class_max_share``: the smallest and largest share of the samples that the
  classifier assigns to one class (argmax of its logits).  A sampler that covers every class of a
  balanced dataset has shares near 1 / K; mode dropping shows as a share near 0 (the image analogue
  of the toy's mode count: DDGAN Sec. 5.2 and Table 3 count covered modes the same way, with a
  classifier on StackedMNIST).
- ``class_consistency``: the share of samples whose predicted class is the requested label (the
  toy's column of the same name, there measured with the true mixture);
- ``class_confidence``: the classifier's mean softmax probability of the requested label.  Classifier-
  free guidance raises it with w (Ho & Salimans 2022, Sec. 4: guidance trades diversity for samples the
  implicit classifier is surer of), so it is the number that shows the trade-off's "quality" side.
"""
from __future__ import annotations

import torch


def class_statistics(logits: torch.Tensor, num_classes: int, requested: torch.Tensor | None = None) -> dict:
    """The class shares of ``logits`` (N, K) and, given the requested labels (N,), consistency and
    confidence; every value a Python float."""
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"expected (N, {num_classes}) logits, got {tuple(logits.shape)}")
    logits = logits.double()
    predicted = logits.argmax(1)
    shares = torch.bincount(predicted, minlength=num_classes).double() / logits.shape[0]
    out = {"class_min_share": float(shares.min()), "class_max_share": float(shares.max())}
    if requested is not None:
        requested = requested.long()
        out["class_consistency"] = float((predicted == requested).double().mean())
        probs = logits.softmax(1).gather(1, requested[:, None]).squeeze(1)
        out["class_confidence"] = float(probs.mean())
    return out
