"""DDGAN's true denoising distribution, exact on the toy (Xiao, Kreis & Vahdat 2022, Sec. 3 and Fig. 2).

DDGAN's argument: the Gaussian reverse step of DDPM is only right for small steps; with T = 1, 2, 4, 8
large steps the true q(x_{t-1} | x_t) is multimodal, which a conditional GAN can represent.  On a
Gaussian mixture the true conditional is closed-form (``diffusion/oracle.py``: :meth:`OracleDenoiser.posterior`,
a mixture with the component means c_k and the shared variance c of Kingma et al. 2021, Eq. 2-3), so
the claim is measured rather than drawn.  For each T, on DDGAN's discretisation of its VP SDE
(``diffusion/schedules.py``: :func:`vp_sde_betas`, the same alphas as the DDGAN generators' chains) and
for x_t ~ q(x_t) at each denoising step (steps spread evenly over the chain), these conditionals are
drawn:

- the truth, x_{t-1} ~ q(x_{t-1} | x_t);
- (a) the best single Gaussian: the true conditional's mean and covariance (moment matching minimises
  KL(q || N) over Gaussians), c I + sum_k w_k (c_k - m)(c_k - m)^T around m = sum_k w_k c_k;
- (b) DDGAN's implicit conditional p(x_{t-1} | x_t) = int p(z) q(x_{t-1} | x_t, x_0 = G(x_t, z, t)) dz
  (DDGAN Eq. 8-9; ``sampling/ddgan.py``: :func:`posterior_sample`), for each training seed of the T;
- (c) the trained DDPM teacher's Gaussian step respaced to the T-step chain: q(x_{t-1} | x_t, x_0 = x̂_0(x_t)),
  x̂_0 the teacher's prediction at the same noise level (DDPM Eq. 6-7 with σ² = β̃ on the respaced
  chain, the step improved DDPM's respacing takes); a Gaussian with the teacher's mean, so at best (a);

and each is compared with the truth by the toy's headline distance (the Fréchet distance in random
Fourier features, ``evaluation/features2d.py``), beside the floor: a second draw of the truth.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from trilemma.diffusion.oracle import GaussianMixture, OracleDenoiser
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.evaluation.fidelity import frechet_distance
from trilemma.sampling.ddgan import ChainTable, posterior_sample

VARIANTS = ("gaussian", "ddgan", "ddpm", "floor")


def ddgan_schedule_config(ddgan_schedule: dict, steps: int) -> dict:
    """The model.json schedule of a DDGAN with T = ``steps`` (``stages/train_gan.py``)."""
    return {"name": "vp_sde", "beta_min": ddgan_schedule["beta_min"], "beta_max": ddgan_schedule["beta_max"],
            "num_steps": steps}


def exact_chain(mixture: GaussianMixture, schedule_cfg: dict) -> OracleDenoiser:
    return OracleDenoiser(mixture, DiscreteSchedule.from_config(schedule_cfg))


def diffused(oracle: OracleDenoiser, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x_t ~ q(x_t) at step index idx[j] for every j (DDPM Eq. 4 on a draw of the data)."""
    x0 = oracle.mixture.sample(idx.shape[0], generator)
    alpha, sigma = (c[:, None] for c in oracle.schedule.alpha_sigma(idx.double()))
    return alpha * x0 + sigma * torch.randn(x0.shape, generator=generator, dtype=torch.float64)


def step_points(oracle: OracleDenoiser, num: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(step index i (num,), x_t (num, d)): i spread evenly over 0..T-1 (every step equally often when T
    divides ``num``), x_t ~ q(x_t) at index i."""
    T = oracle.schedule.num_steps
    idx = torch.div(torch.arange(num) * T, num, rounding_mode="floor")
    return idx, diffused(oracle, idx, generator)


def true_conditional(oracle: OracleDenoiser, x_t: torch.Tensor, i: int, num: int, generator) -> torch.Tensor:
    """``num`` draws of q(x_{i-1} | x_i = x_t) (index -1: clean data)."""
    return oracle.sample_posterior(x_t.reshape(1, -1).expand(num, -1), float(i), float(i - 1), generator)


def best_gaussian(oracle: OracleDenoiser, x_t: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, covariance) of q(x_{i-1} | x_i = x_t): the moment-matched Gaussian."""
    w, m, c = oracle.posterior(x_t.reshape(1, -1), float(i), float(i - 1))
    w, m = w[0], m[0]
    mean = w @ m
    centred = m - mean
    return mean, c * torch.eye(m.shape[1], dtype=m.dtype) + (w[:, None] * centred).T @ centred


def gaussian_draws(mean: torch.Tensor, cov: torch.Tensor, num: int, generator) -> torch.Tensor:
    chol = torch.linalg.cholesky(cov)
    return mean + torch.randn(num, mean.shape[0], generator=generator, dtype=torch.float64) @ chol.T


@torch.no_grad()
def ddgan_conditional(generator_denoiser, table: ChainTable, x_t: torch.Tensor, i: int, num: int, nz: int,
                      generator) -> torch.Tensor:
    """``num`` draws of DDGAN's p(x_{i-1} | x_i = x_t): a fresh z per draw, x_0' = G(x_t, z, i), then the
    posterior q(x_{i-1} | x_t, x_0') (its mean at the last step, as the sampler)."""
    x = x_t.reshape(1, -1).expand(num, -1).float()
    t = torch.full((num,), i, dtype=torch.long)
    z = torch.randn((num, nz), generator=generator)
    x0, _ = generator_denoiser(x, t, z)
    noise = torch.randn(x.shape, generator=generator) if i > 0 else torch.zeros_like(x)
    return posterior_sample(table, x0, x, t, noise).double()


def teacher_time(teacher_schedule: DiscreteSchedule, chain_schedule: DiscreteSchedule, i: int) -> float:
    """The teacher's continuous time with the chain's noise level at index i: log ᾱ matched by linear
    interpolation over the teacher's steps (log ᾱ falls monotonically)."""
    target = float(chain_schedule.log_alpha_bar(float(i)))
    own = teacher_schedule.log_alpha_bar(torch.arange(teacher_schedule.num_steps, dtype=torch.float64))
    return float(np.interp(-target, (-own).numpy(), np.arange(teacher_schedule.num_steps, dtype=np.float64)))


@torch.no_grad()
def ddpm_conditional(teacher, table: ChainTable, t_teacher: float, x_t: torch.Tensor, i: int, num: int,
                     generator) -> torch.Tensor:
    """``num`` draws of the teacher's Gaussian step from x_i = x_t on the T-step chain: x̂_0 from the
    teacher at its time ``t_teacher`` (same noise level), then q(x_{i-1} | x_t, x̂_0) (its mean at the last step)."""
    x = x_t.reshape(1, -1).expand(num, -1).float()
    x0, _ = teacher(x, t_teacher)
    noise = torch.randn(x.shape, generator=generator) if i > 0 else torch.zeros_like(x)
    return posterior_sample(table, x0, x, torch.full((num,), i, dtype=torch.long), noise).double()


def draws(oracle, gens: list, x_t: torch.Tensor, i: int, num: int, generator, teacher=None) -> dict[str, torch.Tensor]:
    """The truth and every compared conditional at one (i, x_t); ``gens``: (denoiser, table, nz) per DDGAN
    training seed (``ddgan`` holds the first seed's draws, ``ddgan<k>`` the k-th's); ``teacher``:
    (denoiser, table) of the DDPM teacher or None."""
    out = {"truth": true_conditional(oracle, x_t, i, num, generator),
           "gaussian": gaussian_draws(*best_gaussian(oracle, x_t, i), num, generator),
           "floor": true_conditional(oracle, x_t, i, num, generator)}
    for k, gen in enumerate(gens):
        out["ddgan" if k == 0 else f"ddgan{k}"] = ddgan_conditional(gen[0], gen[1], x_t, i, num, gen[2], generator)
    if teacher is not None:
        t = teacher_time(teacher[0].schedule, oracle.schedule, i)
        out["ddpm"] = ddpm_conditional(teacher[0], teacher[1], t, x_t, i, num, generator)
    return out


def distances(oracle, gens: list, phi, num_points: int, num_samples: int, seed: int, teacher=None) -> pd.DataFrame:
    """One row per (x_t, DDGAN seed): T, step i, the seed's index, and the distance of each conditional to
    the truth (the seed-independent ones repeated on every seed's row; one row, seed 0, without DDGANs)."""
    g = torch.Generator().manual_seed(seed)
    idx, x_t = step_points(oracle, num_points, g)
    rows = []
    for i, x in zip(idx.tolist(), x_t):
        d = draws(oracle, gens, x, i, num_samples, g, teacher)
        truth = phi(d["truth"])
        common = {"T": oracle.schedule.num_steps, "step": i,
                  **{v: frechet_distance(phi(d[v]), truth) if v in d else math.nan for v in VARIANTS if v != "ddgan"},
                  "modes_truth": effective_modes(d["truth"], oracle.mixture.means)}
        for k in range(max(len(gens), 1)):
            key = "ddgan" if k == 0 else f"ddgan{k}"
            rows.append({**common, "seed_index": k,
                         "ddgan": frechet_distance(phi(d[key]), truth) if key in d else math.nan,
                         "modes_ddgan": effective_modes(d[key], oracle.mixture.means) if key in d else math.nan})
    return pd.DataFrame(rows)


def effective_modes(x: torch.Tensor, means: torch.Tensor) -> float:
    """exp(entropy) of the draws' nearest-mode histogram: 1 for a conditional on one mode."""
    p = torch.bincount(torch.cdist(x, means.to(x.dtype)).argmin(1), minlength=means.shape[0]).double() / x.shape[0]
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def summary(rows: pd.DataFrame, by: tuple[str, ...] = ("T",)) -> pd.DataFrame:
    """Per T (or per ``by``): mean and 1.96 standard errors over the x_t points of each distance; DDGAN's
    over every (x_t, seed) row, with ``ddgan_seeds`` the per-seed means (the seeds' spread)."""
    out = []
    for key, part in rows.groupby(list(by)):
        first = part[part["seed_index"] == 0]
        row = {**dict(zip(by, (int(k) for k in key))), "points": len(first)}
        for v in VARIANTS:
            x = (part if v == "ddgan" else first)[v].dropna()
            row[v] = float(x.mean()) if len(x) else math.nan
            row[f"{v}_ci"] = float(1.96 * x.std() / math.sqrt(len(x))) if len(x) > 1 else math.nan
        row["ddgan_seeds"] = [float(m) for m in part.groupby("seed_index")["ddgan"].mean().dropna()]
        row.update({"modes_truth": float(first["modes_truth"].mean()), "modes_ddgan": float(part["modes_ddgan"].mean())})
        out.append(row)
    return pd.DataFrame(out)


def step_points_at(oracle: OracleDenoiser, i: int, num: int, generator: torch.Generator) -> torch.Tensor:
    """``num`` draws of q(x_t) at step index i (the figure's fixed x_t: the same seed at every T)."""
    return diffused(oracle, torch.full((num,), i), generator)
