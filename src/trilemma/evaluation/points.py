"""The metrics of one 2-D sample bank (:meth:`trilemma.modality.Points.metrics`; images:
``evaluation/images.bank_metrics``): the point panel (``evaluation/panel.py``) with the guided banks'
distances to the CFG teacher's reference bank and to the exact tilted target."""
from __future__ import annotations

from typing import TYPE_CHECKING

from trilemma.artifacts import ArtifactError, load_tensors
from trilemma.evaluation.features2d import toy_features
from trilemma.evaluation.fidelity import frechet_distance
from trilemma.evaluation.panel import point_panel

if TYPE_CHECKING:
    from trilemma.schema.models import Config


def point_metrics(cfg: Config, bank, bmeta, data, dmeta, *, reference_bank=None, **_) -> dict:
    """2-D banks: the point panel (``evaluation/panel.py``) in the profile's features; guided banks
    add ``fd_to_teacher`` and ``fd_to_target``."""
    ev, x, requested = cfg.evaluation, bank["samples"], bank.get("labels")
    features = toy_features(ev.features, dmeta["dataset"], dmeta["params"])
    row = point_panel(x, data["eval"], features=features, means=data["mode_means"], mode_labels=data["mode_labels"],
                      std=dmeta["std"], ev=ev, seed=cfg.seed, requested=requested)
    row.update({"feature_space": features.name, "dataset": dmeta["dataset"]})
    if requested is not None:
        row["fd_to_teacher"] = fd_to_teacher(cfg.guidance.eval.reference_steps, x, features, reference_bank, bmeta)
        row["fd_to_target"] = fd_to_target(cfg.seed, x, requested, features, data, dmeta, bmeta)
    return row


def fd_to_target(seed: int, x, requested, features, data, dmeta, bmeta) -> float | None:
    """Guided banks on a mixture: the Fréchet distance (same features) to a draw of the exact tilted
    target p(x | y)^a p(x)^(1-a) that the guidance formula aims at (``evaluation/guided_target.py``)."""
    if bmeta.get("w") is None or not dmeta.get("std") or data["mode_means"].shape[0] == 0:
        return None
    import torch

    from trilemma.evaluation.guided_target import guidance_exponent, guided_target_draw
    a = guidance_exponent(bmeta["method"], bmeta["w"])
    target = guided_target_draw(data["mode_means"], data["mode_labels"], dmeta["std"], requested, a,
                                torch.Generator().manual_seed(seed * 1000 + 4))
    return frechet_distance(features(x), features(target))


def fd_to_teacher(reference_steps: int, x, features, reference_bank, bmeta) -> float | None:
    """The Fréchet distance (same features as the headline) to the CFG teacher's reference bank (0 for
    that bank itself: the CFG teacher at ``guidance.eval.reference_steps``)."""
    if reference_bank:
        ref, _ = load_tensors(reference_bank)
        return frechet_distance(features(x), features(ref["samples"]))
    is_reference = bmeta["method"] == "cfg" and bmeta["steps"] == reference_steps
    return 0.0 if is_reference else None
