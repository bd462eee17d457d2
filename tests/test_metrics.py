"""Metrics through torch-fidelity checked against closed forms; the PacGAN toy metrics by construction."""
import math

import numpy as np
import torch
from scipy import linalg

from trilemma.data.toy2d import generate, mode_means
from trilemma.evaluation.fidelity import frechet_distance, precision_recall
from trilemma.evaluation.toy import mode_metrics
from trilemma.schema.models import Data


def gauss(n, mean, cov, seed):
    g = np.random.default_rng(seed)
    return torch.from_numpy(g.multivariate_normal(mean, cov, size=n))


def test_frechet_distance_matches_closed_form():
    a = gauss(20000, [0, 0], [[1, 0.3], [0.3, 0.5]], 0)
    b = gauss(20000, [1, -1], [[2, 0], [0, 1]], 1)
    mu1, mu2 = a.mean(0).numpy(), b.mean(0).numpy()
    s1, s2 = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert math.isclose(frechet_distance(a, b), expected, rel_tol=1e-6)


def test_frechet_distance_self_zero_and_shift():
    a = gauss(5000, [0, 0], np.eye(2), 2)
    assert abs(frechet_distance(a, a)) < 1e-8
    assert math.isclose(frechet_distance(a + torch.tensor([0.3, 0.4]), a), 0.25, rel_tol=1e-6)


def test_precision_recall_extremes():
    a = gauss(2000, [0, 0], np.eye(2), 3)
    p, r = precision_recall(a, a.clone())
    assert p == 1.0 and r == 1.0
    p, r = precision_recall(a + 100.0, a)
    assert p == 0.0 and r == 0.0
    # a collapsed generator: precise but without recall
    p, r = precision_recall(a[:1000] * 0.05, a)
    assert p > 0.95 and r < 0.3


def test_precision_recall_equals_torch_fidelity():
    """Our topk k-NN radius (issue 21) gives torch-fidelity's prc_features_to_metric to the digit: on the
    toy's 25-mode grid (repeated points make ties at the radius), on a generator that misses modes,
    with more rows than one distance block (PRC_BATCH), and in 64 dimensions."""
    import torch_fidelity.metric_prc as prc

    from trilemma.evaluation import fidelity
    data = Data.model_validate({"name": "gauss25", "num_train": 3000, "num_eval": 3000,
                                "gauss25": {"spacing": 1.0, "std": 0.05}})
    real = generate(data, 0)[0]["eval"].float()
    fake = real[:2500] + 0.03 * torch.randn(2500, 2, generator=torch.Generator().manual_seed(1))
    fake[:500] = real[:500].round()   # 500 points on the mode means, many of them repeated
    missing = real[real[:, 0] < 0.5]   # a generator without the two right-hand columns of modes
    wide = gauss(3000, np.zeros(64), np.eye(64), 4).float(), gauss(2000, np.full(64, 0.1), np.eye(64), 5).float()
    old_batch = fidelity.PRC_BATCH
    try:
        for batch in (old_batch, 700):   # 700: several blocks of rows and columns
            fidelity.PRC_BATCH = batch
            for gen, ref, k in [(fake, real, 3), (missing, real, 3), (real, fake, 5), (*wide, 3)]:
                ours = precision_recall(gen, ref, neighborhood=k)
                out = prc.prc_features_to_metric(gen, ref, prc_neighborhood=k, prc_batch_size=batch,
                                                 save_cpu_ram=True, verbose=False)
                assert ours == (out[prc.KEY_METRIC_PRECISION], out[prc.KEY_METRIC_RECALL]), (batch, k)
    finally:
        fidelity.PRC_BATCH = old_batch


def test_mode_metrics():
    params = {"spacing": 1.0, "std": 0.05}
    means = mode_means("gauss25", params)
    assert means.shape == (25, 2)
    exact = means.repeat(10, 1)
    assert mode_metrics(exact, means, 0.05) == {"modes": 25, "hq": 1.0, "num_modes": 25}
    half = means[:12].repeat(10, 1)
    assert mode_metrics(half, means, 0.05)["modes"] == 12
    off = means.repeat(4, 1) + torch.tensor([0.5, 0.0])   # halfway between modes: 10 std away
    assert mode_metrics(off, means, 0.05)["hq"] == 0.0
    # a mode with 10% of its fair share of high-quality samples is not covered (PacGAN: 20%)
    thin = torch.cat([means[:24].repeat(100, 1), means[24:].repeat(10, 1)])
    assert mode_metrics(thin, means, 0.05)["modes"] == 24


def test_generated_data_is_deterministic_and_labelled_by_row():
    cfg = {"name": "gauss25", "num_train": 1000, "num_eval": 500, "gauss25": {"spacing": 1.0, "std": 0.05}}
    a, meta = generate(Data.model_validate(cfg), seed=3)
    b, _ = generate(Data.model_validate(cfg), seed=3)
    assert torch.equal(a["train"], b["train"]) and not torch.equal(a["train"][:500], a["eval"])
    rows = torch.round(a["train"][:, 1] + 2).long()
    assert torch.equal(rows, a["train_labels"])
    assert mode_metrics(a["eval"], a["mode_means"], 0.05)["modes"] == 25
    ring, _ = generate(Data.model_validate({**cfg, "name": "ring8", "ring8": {"radius": 2.0, "std": 0.05}}), seed=0)
    assert mode_metrics(ring["eval"], ring["mode_means"], 0.05)["modes"] == 8
    roll, _ = generate(Data.model_validate({**cfg, "name": "swissroll", "swissroll": {"noise": 0.05, "scale": 0.2}}), seed=0)
    assert roll["mode_means"].shape == (0, 2) and roll["train"].shape == (1000, 2)
