"""The exact denoiser of the Gaussian-mixture toys (``diffusion/oracle.py``, issue 24): eps* and the
Bayes classifier against forward-diffused samples, the denoising posterior against DDPM Eq. 7, DDIM
on the oracle converging to the data, classifier guidance on oracle parts reproducing p(x | y), and
the oracle as a model directory that the sample stage loads like a trained one."""
import math

import pytest
import torch

from trilemma.stages.sample import load_denoiser
from trilemma.data import toy2d
from trilemma.schema.models import Data
from trilemma.diffusion.continuous import CosineLogSNRSchedule, uniform_grid
from trilemma.diffusion.oracle import ExactClassifier, GaussianMixture, OracleDenoiser, save_oracle
from trilemma.diffusion.schedules import DiscreteSchedule, linear_betas
from trilemma.diffusion.timesteps import ddim_uniform, sampling_grid
from trilemma.evaluation.toy import class_consistency, mode_metrics
from trilemma.sampling.ddim import sample_ddim
from trilemma.sampling.guidance import CFGDenoiser, ClassifierGuidedDenoiser
from trilemma.stages.sample import balanced_labels

DDPM = DiscreteSchedule(linear_betas(1e-4, 0.02, 1000))
COSINE = CosineLogSNRSchedule()


def toy(name: str = "gauss25") -> GaussianMixture:
    data_cfg = {"name": name, "num_train": 10, "num_eval": 10, "gauss25": {"spacing": 1.0, "std": 0.05},
                "ring8": {"radius": 2.0, "std": 0.05}, "swissroll": {"noise": 0.05, "scale": 0.2}}
    return GaussianMixture.from_data(*toy2d.generate(Data.model_validate(data_cfg), 0))


def forward_diffused(mix: GaussianMixture, schedule, t: float, n: int, seed: int):
    """(x_t, eps, labels): labelled data pushed through q(x_t | x_0) (DDPM Eq. 4)."""
    g = torch.Generator().manual_seed(seed)
    x0, labels = toy2d.draw("gauss25", {"spacing": 1.0, "std": mix.std}, n, g)
    eps = torch.randn(x0.shape, generator=g)
    alpha, sigma = schedule.alpha_sigma_float(t)
    return (alpha * x0 + sigma * eps).double(), eps.double(), labels


def binned_z(x_t: torch.Tensor, residual: torch.Tensor, variance: torch.Tensor | None = None, bins: int = 8,
             min_count: int = 200) -> torch.Tensor:
    """z-scores of the mean of ``residual`` (N, m) within each cell of a bins x bins grid over x_t:
    E[target - prediction(x_t) | cell] = 0 for the exact conditional expectation (tower property).
    The standard error is the residuals' own spread, or the model's ``variance`` (N, m) where an
    empirical spread is degenerate (a label never seen in a cell)."""
    lo, hi = x_t.min(0).values, x_t.max(0).values
    cell = ((x_t - lo) / (hi - lo + 1e-9) * bins).long().clamp(max=bins - 1)
    key = cell[:, 0] * bins + cell[:, 1]
    zs = []
    for c in key.unique():
        r = residual[key == c]
        if r.shape[0] >= min_count:
            var = r.var(0) if variance is None else variance[key == c].mean(0)
            zs.append(r.mean(0) / (var / r.shape[0]).sqrt().clamp_min(1e-12))
    return torch.stack(zs)


@pytest.mark.parametrize("t", [50.0, 300.0, 700.0])   # sigma_t 0.18, 0.83, 1.0: three noise levels
def test_eps_is_the_conditional_mean_of_forward_diffused_noise(t):
    mix = toy()
    oracle = OracleDenoiser(mix, DDPM)
    x_t, eps, _ = forward_diffused(mix, DDPM, t, 200_000, seed=int(t))
    _, eps_star = oracle(x_t, t)
    z = binned_z(x_t, eps - eps_star)
    assert z.numel() >= 20 and z.abs().max() < 5.0, z.abs().max()
    # the check has power: the denoiser of a mixture twice as wide fails it where the noise is small
    wide = OracleDenoiser(GaussianMixture(mix.means, 0.3, mix.weights, mix.labels), DDPM)
    if t < 100:
        assert binned_z(x_t, eps - wide(x_t, t)[1]).abs().max() > 10


def test_class_posterior_sums_to_one_and_matches_label_frequencies():
    mix = toy()
    oracle = OracleDenoiser(mix, DDPM)
    t = 200.0
    x_t, _, labels = forward_diffused(mix, DDPM, t, 200_000, seed=7)
    p = oracle.class_log_posterior(x_t, t).exp()
    assert p.shape == (x_t.shape[0], 5) and torch.allclose(p.sum(1), torch.ones(x_t.shape[0], dtype=p.dtype))
    onehot = torch.nn.functional.one_hot(labels, 5).double()
    z = binned_z(x_t, onehot - p, variance=p * (1 - p))
    assert z.abs().max() < 5.0, z.abs().max()


def test_posterior_between_two_times_matches_ddpm_eq7_and_draws():
    """sum_k w_k m_k = c_x0 x0* + c_xt x_t (DDPM Eq. 7 averaged over x_0 | x_t); at s = clean data
    the mixture's mean is x0*; draws have that mean."""
    oracle = OracleDenoiser(toy(), DDPM)
    x_t = torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 1.5
    t, s = 400.0, 250.0
    x0_star, _ = oracle(x_t, t)
    c_x0, c_xt, _, _ = (float(c) for c in DDPM.posterior(t, s))
    w, m, c = oracle.posterior(x_t, t, s)
    assert torch.allclose((w[:, :, None] * m).sum(1), c_x0 * x0_star + c_xt * x_t, atol=1e-8)
    w0, m0, _ = oracle.posterior(x_t, t, DDPM.t_min)
    assert torch.allclose((w0[:, :, None] * m0).sum(1), x0_star, atol=1e-8)
    g = torch.Generator().manual_seed(4)
    draws = torch.stack([oracle.sample_posterior(x_t[:4], t, s, g) for _ in range(4000)])
    mean = (w[:4, :, None] * m[:4]).sum(1)
    spread = ((w[:4, :, None] * ((m[:4] - mean[:, None]) ** 2 + c)).sum(1)).sqrt()
    assert ((draws.mean(0) - mean).abs() < 5 * spread / math.sqrt(4000)).all()
    with pytest.raises(ValueError, match="s < t"):
        oracle.posterior(x_t, s, t)


def test_ddim_on_the_oracle_converges_to_the_data():
    """Solver error only: DDIM (eta = 0) on the exact denoiser approaches a fresh draw of the data as
    the steps grow: hq share, modes, the within-mode spread (rms distance to the nearest mean per
    coordinate, the data's std 0.05) and the mean log-likelihood under the mixture.  Measured (4000
    samples): spread 0.198, 0.090, 0.042, 0.044, 0.048 at 10, 20, 50, 100, 1000 steps, fresh 0.050
    (at 50-100 steps DDIM still under-disperses the modes; the last step's x0_hat shrinks by 2%)."""
    mix = toy()
    oracle = OracleDenoiser(mix, DDPM)
    g = torch.Generator().manual_seed(0)
    fresh = mix.sample(4000, g)
    x_T = torch.randn(4000, 2, generator=g, dtype=torch.float64)

    def score(x):
        m = mode_metrics(x, mix.means, mix.std)
        spread = float(torch.cdist(x, mix.means).min(1).values.pow(2).mean().div(2).sqrt())
        return {"hq": m["hq"], "modes": m["modes"], "spread": spread, "ll": float(oracle.log_density(x, -1.0).mean())}

    ref = score(fresh)
    got = {n: score(sample_ddim(oracle, x_T, sampling_grid(ddim_uniform(1000, n)))) for n in (10, 100, 1000)}
    assert ref["modes"] == 25 and all(r["modes"] == 25 for r in got.values())
    gap = {n: abs(r["spread"] - ref["spread"]) for n, r in got.items()}
    assert gap[10] > gap[100] > gap[1000] and gap[1000] < 0.004, gap
    assert abs(got[100]["hq"] - ref["hq"]) < 0.02 and abs(got[1000]["hq"] - ref["hq"]) < 0.01
    assert abs(got[1000]["ll"] - ref["ll"]) < 0.15 < abs(got[10]["ll"] - ref["ll"])


def test_classifier_guidance_on_oracle_parts_reproduces_the_conditional():
    """Dhariwal & Nichol 2021, Alg. 2 with the exact score and the exact classifier at s = 1 is the
    exact conditional p(x | y): class consistency within 0.02 of a fresh conditional draw's; CFG at
    w = 0 on the oracle is the conditional denoiser itself (Ho & Salimans 2022, Alg. 2)."""
    mix = toy()
    oracle = OracleDenoiser(mix, COSINE)
    n, g = 2000, torch.Generator().manual_seed(1)
    y = balanced_labels(n, mix.num_classes, "cpu")
    x_T = torch.randn(n, 2, generator=g, dtype=torch.float64)
    guided = ClassifierGuidedDenoiser(oracle, ExactClassifier(oracle), oracle.null_label)
    x_cg = sample_ddim(guided, x_T, uniform_grid(64), cond={"y": y, "w": 1.0})
    exact = mix.sample(n, g, y)
    cc = {k: class_consistency(x, y, mix.means, mix.labels, mix.std) for k, x in (("cg", x_cg), ("exact", exact))}
    assert abs(cc["cg"] - cc["exact"]) < 0.02, cc
    z = torch.randn(5, 2, dtype=torch.float64)
    cond = {"y": torch.arange(5), "w": 0.0}
    assert all(torch.allclose(a, b) for a, b in zip(CFGDenoiser(oracle, oracle.null_label)(z, 0.3, cond),
                                                    oracle(z, 0.3, {"y": cond["y"]})))


def test_null_label_is_unconditional_and_classes_restrict_the_modes():
    oracle = OracleDenoiser(toy(), COSINE)
    z = torch.randn(10, 2, dtype=torch.float64)
    uncond = oracle(z, 0.5)
    null = oracle(z, 0.5, {"y": torch.full((10,), oracle.null_label)})
    assert all(torch.allclose(a, b) for a, b in zip(uncond, null))
    x0, _ = oracle(z, 1.0, {"y": torch.full((10,), 4)})       # pure noise: the mean of row 4, (0, 2)
    assert torch.allclose(x0, torch.tensor([[0.0, 2.0]], dtype=x0.dtype).expand(10, 2), atol=0.01)


def test_ring_has_an_oracle_and_the_swiss_roll_says_it_has_none():
    ring = toy("ring8")
    assert ring.num_classes == 8 and torch.allclose(ring.means.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="no closed-form density"):
        toy("swissroll")


def test_oracle_model_directory_loads_like_a_trained_model(tmp_path):
    mix = toy()
    sched = {"name": "linear", "beta_start": 1e-4, "beta_end": 0.02, "num_steps": 1000}
    save_oracle(tmp_path / "oracle" / "model.safetensors", mix, sched, "gauss25")
    den, info = load_denoiser(tmp_path / "oracle")
    assert isinstance(den, OracleDenoiser) and info["method"] == "oracle" and info["name"] == "oracle"
    z = torch.randn(4, 2)
    assert all(torch.allclose(a, b) for a, b in zip(den(z, 10.0), OracleDenoiser(mix, DDPM)(z, 10.0)))


def test_error_split_table_and_figure(tmp_path):
    """Two panels (oracle = solver error, teacher = total), the learning error and the crossover step
    count, read from the one distance column; the other tables never see the oracle's rows."""
    import pandas as pd

    from trilemma.reporting import error_split
    rows = []
    for model, scale in (("oracle", 0.0), ("teacher_ddpm", 0.01)):
        for eta in (0.0, 1.0):
            for n in (10, 100, 1000):
                rows.append({"model": model, "method": "ddim", "spec": f"ddim-eta{eta:g}-uniform-s{n}", "eta": eta,
                             "sigma_hat": False, "solver": None, "steps": n, "nfe": n,
                             error_split.DISTANCE: 1.0 / n + (1 + eta) / 1000 + scale})
        rows.append({"model": model, "method": "pf_ode", "spec": "pf_ode-rk45", "eta": None, "sigma_hat": False,
                     "solver": "rk45", "steps": None, "nfe": 150, error_split.DISTANCE: 0.003 + scale})
    df = pd.DataFrame(rows)
    text = error_split.error_split_table(df)
    assert "**Solver error: the oracle" in text and "**Total: the learned teacher" in text
    assert "DDIM (η=1) = DDPM (σ²=β̃)" in text and "PF-ODE (rk45, adaptive)" in text
    assert "learning error 0.01 for DDIM (η=0)" in text
    assert error_split.crossover(error_split.paired(df)) == {"DDIM (η=0)": 100, "DDIM (η=1) = DDPM (σ²=β̃)": 100}
    error_split.error_split_figure(df, tmp_path / "error_split.png", dpi=40)
    assert (tmp_path / "error_split.png").stat().st_size > 0
    assert set(error_split.without_oracle(df)["model"]) == {"teacher_ddpm"}


def test_classifier_guidance_of_an_unconditional_model_through_the_sample_stage():
    """``cg-w<S>-s<N>`` on an unconditional model (``guidance.eval.classifier_guides: teacher_pd``): no
    null label, the classifier's classes; here the oracle's score and its Bayes classifier at s = 1."""
    from trilemma.stages.sample import make_sampler, parse_spec
    mix = toy()
    oracle = OracleDenoiser(mix, COSINE)
    info = {"name": "teacher_pd", "method": "pd_teacher", "model": {"kind": "mlp"}}
    run = make_sampler(parse_spec("cg-w1-s32"), oracle, None, info, classifier=ExactClassifier(oracle))
    y = balanced_labels(500, mix.num_classes, "cpu")
    x = run(torch.randn(500, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64), None, {"y": y, "w": 1.0})
    assert class_consistency(x, y, mix.means, mix.labels, mix.std) > 0.95
