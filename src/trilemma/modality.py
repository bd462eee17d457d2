"""Points or images (issue 16): what differs between a 2-D profile and an image profile, chosen once
from the dataset's catalogue entry (:mod:`trilemma.data.catalog`), so that every method has one verb
and one stage for both.

- training: where the networks run (:meth:`place`: the toy stays on the CPU; images go to the GPU
  when there is one, with the student's dropout off as in the reference ``cifar_distill.py``) and
  what a batch is (:meth:`batches`: uint8 images scaled to [-1, 1] and flipped, DDPM Sec. 3.3 and
  App. B, by :class:`~trilemma.training.tasks.images.ImageBatches`);
- evaluation: the metric panel (:meth:`metrics`: the 2-D panel of ``evaluation/panel.py``, or FID,
  IS, KID and precision/recall in the profile's feature space, ``evaluation/images.py``) and its
  one-line summary;
- the report: its tables' columns, figures and sample panels (:meth:`report`: scatter plots of points,
  mosaics of images).

Torch is imported by the methods, not here: the DAG (torch-free) asks :func:`of` which modality a
profile has.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from trilemma.data.catalog import is_image_dataset

if TYPE_CHECKING:
    from trilemma.schema.models import Config


def _attr(dotted: str):
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


class _Modality:
    """What every modality names: the function computing a bank's metrics and the report's layout
    (imported when used: the DAG stays torch-free, and a job imports only its own modality's code)."""
    METRICS: str
    REPORT: str

    def metrics(self, cfg, bank: dict, bmeta: dict, data: dict, dmeta: dict, **paths) -> dict | None:
        return _attr(self.METRICS)(cfg, bank, bmeta, data, dmeta, **paths)

    def report(self, cfg, df, device: str):
        return _attr(self.REPORT)(cfg, df, device)


class Points(_Modality):
    """2-D points: float tensors on the CPU, the point panel of metrics."""
    image = False
    METRICS, REPORT = "trilemma.evaluation.points.point_metrics", "trilemma.reporting.report.PointsReport"

    def place(self, net, *, student: bool = False):
        return net

    def batches(self, task, hflip: bool = False):
        return task

    @staticmethod
    def summary(row: dict) -> str:
        return f"FD {row['fd']:.4g} ± {row['fd_ci']:.2g} [{row['feature_space']}], FD(xy) {row['fd_xy']:.4g}, " \
               f"P {row['precision']:.3f}, R {row['recall']:.3f}, modes {row['modes']}, hq {row['hq']:.3f}"


class Images(_Modality):
    """Images: uint8 in memory, networks on the accelerator, metrics in a feature space."""
    image = True
    METRICS, REPORT = "trilemma.evaluation.images.bank_metrics", "trilemma.reporting.images.ImagesReport"

    def __init__(self):
        from trilemma.training.tasks.images import training_device
        self.device = training_device()

    def place(self, net, *, student: bool = False):
        from trilemma.training.tasks.images import on_device, without_dropout
        return on_device(without_dropout(net) if student else net, self.device)

    def batches(self, task, hflip: bool = False):
        from trilemma.training.tasks.images import ImageBatches
        return ImageBatches(task, hflip)

    @staticmethod
    def summary(row: dict) -> str:
        return f"FID {row['fd']:.4g}, IS {row['isc']:.3f}, KID {row['kid']:.4g}, " \
               f"P {row['precision']:.3f}, R {row['recall']:.3f} [{row['feature_space']}]"


def of(cfg: Config) -> Points | Images:
    """The modality of a profile (its typed config), from its dataset's catalogue entry."""
    return Images() if is_image_dataset(cfg.data.name) else Points()
