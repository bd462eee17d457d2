"""The exact target of guidance on the toy (evaluation/guided_target.py): p_a(x | y) ∝ p(x | y)^a p(x)^(1-a)."""
import torch

from trilemma.data import toy2d
from trilemma.evaluation.guided_target import guided_target_draw, guidance_exponent

GRID = {"spacing": 1.0, "std": 0.05}
MEANS = toy2d.mode_means("gauss25", GRID)
LABELS = toy2d.mode_labels("gauss25", 25)


def draw(a, labels, seed=0):
    return guided_target_draw(MEANS, LABELS, GRID["std"], labels, a, torch.Generator().manual_seed(seed))


def nearest(x):
    d, k = torch.cdist(x.double(), MEANS.double()).min(1)
    return d, k


def test_a_one_is_the_class_conditional_and_a_zero_the_data():
    labels = torch.arange(5000) % 5
    x = draw(1.0, labels)
    d, k = nearest(x)
    assert (LABELS[k] == labels).float().mean() > 0.995          # every point in a mode of its row
    # within a mode the draw is N(mu, std^2 I): E|x - mu|^2 = 2 std^2 (grid error: cell/sqrt(12) per axis)
    assert abs(float(d.square().mean()) / (2 * GRID["std"] ** 2) - 1) < 0.06
    counts = torch.bincount(k, minlength=25).float()
    assert counts.min() > 0.8 * 200                               # the row's 5 modes equally: 1000 / 5 each
    x0 = draw(0.0, labels)
    _, k0 = nearest(x0)
    assert 0.15 < (LABELS[k0] == labels).float().mean() < 0.25    # a = 0 ignores the label: 1 in 5 rows


def test_separated_modes_make_guidance_a_no_op_on_the_target():
    """With well-separated modes p(x) ≈ p(x | y) p(y) near class y's modes, so p_a(x | y) ≈ p(x | y)
    for every a: the exact target does not sharpen the modes (what a sampler's loss of recall at w > 0
    departs from)."""
    labels = torch.arange(5000) % 5
    d1, _ = nearest(draw(1.0, labels, seed=1))
    d5, k5 = nearest(draw(5.0, labels, seed=2))
    assert (LABELS[k5] == labels).float().mean() > 0.995
    assert abs(float(d5.square().mean()) / float(d1.square().mean()) - 1) < 0.08


def test_exponents():
    assert guidance_exponent("cfg", 2.0) == 3.0 and guidance_exponent("guided_pd", 0.0) == 1.0
    assert guidance_exponent("classifier_guidance", 2.0) == 2.0
