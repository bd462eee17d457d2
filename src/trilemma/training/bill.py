"""The distillation bill (issue 18): what a distilled student cost to make, counted, not estimated.

- ``teacher_evals``: teacher network evaluations spent in training, one per example per teacher pass
  (:class:`CountTeacher` wraps the teacher and adds each call's batch size: a progressive-distillation
  update of batch B costs 2B, a consistency-distillation update B, a guided stage-one update 2B: the
  conditional and the unconditional pass of classifier-free guidance);
- ``updates``: the student's optimizer steps;
- ``wall_s`` and ``device``: training wall time, summed over the runs a resumed job took, on the device
  that trained it.

A task that keeps a ``bill`` dict has it saved in the loop's checkpoints and restored on resume
(``training/loop.py``), so a killed and resumed job bills what the uninterrupted job would.  Under
torchrun each rank counts its own slice of the global batch (equal slices): the bill scales rank 0's
count by the world size.  ``cumulative_*`` adds the bill of the model a chain's round started from
(progressive and guided distillation: every round before it).
"""
from __future__ import annotations

from torch import nn

BILL_KEYS = ("teacher_evals", "updates", "wall_s")


class CountTeacher(nn.Module):
    """Wraps a (frozen) teacher denoiser; adds the examples of every call to ``bill["teacher_evals"]``."""

    def __init__(self, denoiser, bill: dict):
        super().__init__()
        self.denoiser, self.bill = denoiser, bill
        bill.setdefault("teacher_evals", 0)

    @property
    def schedule(self):
        return self.denoiser.schedule

    def forward(self, x_t, t, cond=None):
        self.bill["teacher_evals"] += int(x_t.shape[0])
        return self.denoiser(x_t, t, cond)


def bank_columns(info: dict) -> dict:
    """The model's bill as metrics.csv columns ``train_<key>`` (empty for a model without one: a
    teacher, a GAN); the sample stage copies them into every bank of the model."""
    bill = info.get("bill") or {}
    keys = [*BILL_KEYS, *(f"cumulative_{k}" for k in BILL_KEYS), "device"]
    return {f"train_{k}": bill.get(k) for k in keys} if bill else {}


def with_cumulative(bill: dict, previous: dict | None) -> dict:
    """``bill`` with ``cumulative_<key>`` = its own value + the previous round's cumulative one."""
    prev = (previous or {}).get("bill") or {}
    return {**bill, **{f"cumulative_{k}": round(bill[k] + prev.get(f"cumulative_{k}", 0), 3) for k in BILL_KEYS}}
