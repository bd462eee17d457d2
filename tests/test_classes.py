"""evaluation/classes.py: class shares, consistency and confidence against hand-computed values."""
import math

import pytest
import torch

from trilemma.evaluation.classes import class_statistics


def test_shares_count_the_argmax():
    # 6 samples over 3 classes: predicted 0, 0, 0, 1, 1, 2 -> shares 1/2, 1/3, 1/6
    logits = torch.tensor([[5., 0, 0], [3, 1, 0], [2, 0, 1], [0, 4, 0], [0, 2, 1], [0, 0, 9]])
    s = class_statistics(logits, 3)
    assert s == {"class_min_share": pytest.approx(1 / 6), "class_max_share": pytest.approx(1 / 2)}


def test_a_dropped_class_has_share_zero():
    logits = torch.tensor([[1., 0, 0], [0, 1, 0]])
    assert class_statistics(logits, 3)["class_min_share"] == 0.0


def test_consistency_and_confidence_against_softmax_by_hand():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0], [0.0, math.log(4.0)]])
    requested = torch.tensor([0, 1, 0])
    s = class_statistics(logits, 2, requested)
    # predicted 0, 0 (tie -> first), 1: consistent for rows 0 only -> 1/3
    assert s["class_consistency"] == pytest.approx(1 / 3)
    # p(requested): 3/4, 1/2, 1/5
    assert s["class_confidence"] == pytest.approx((0.75 + 0.5 + 0.2) / 3)


def test_wrong_width_is_refused():
    with pytest.raises(ValueError, match="logits"):
        class_statistics(torch.zeros(4, 5), 10)
