"""The exact denoiser of a Gaussian-mixture toy (issue 24): a perfect teacher, so that a sampler's
error on it is the solver's alone.

The data is q(x_0) = sum_k pi_k N(x_0; mu_k, s^2 I) (``gauss25``, ``ring8``; the swiss roll has no
closed form and is refused).  Under the VP process x_t = alpha_t x_0 + sigma_t eps (DDPM Eq. 4) the
diffused density stays a mixture with the same weights:

    q(x_t) = sum_k pi_k N(x_t; alpha_t mu_k, v_t I),   v_t = alpha_t^2 s^2 + sigma_t^2,

and everything a sampler or guidance asks for is closed-form:

- responsibilities r_k(x_t) = pi_k N(x_t; alpha_t mu_k, v_t I) / q(x_t);
- x0*(x_t) = E[x_0 | x_t] = sum_k r_k (mu_k + (alpha_t s^2 / v_t) (x_t - alpha_t mu_k)) (Tweedie: the
  per-component posterior mean of a Gaussian prior), and eps* = (x_t - alpha_t x0*) / sigma_t
  (DDPM Eq. 4 solved for eps) = (sigma_t / v_t) (x_t - alpha_t mu_bar), mu_bar = sum_k r_k mu_k,
  stable down to sigma_t = 0; the score is -eps* / sigma_t (Song et al. 2021, Eq. 13's VP form);
- the Bayes classifier p(y | x_t) = sum_{k: label(k) = y} r_k(x_t), the exact p(y | x_t) that
  classifier guidance needs (Dhariwal & Nichol 2021, Sec. 4, Alg. 2: eps^ = eps - s sigma_t grad log p);
- the class-conditional denoiser: ``cond = {"y": y}`` restricts the mixture to class y's modes
  (pi_k renormalised within the class); the null label (``num_classes``) is the unconditional
  mixture, as a CFG teacher's null token (Ho & Salimans 2022, Alg. 1);
- the denoising posterior q(x_s | x_t), s < t, a mixture with the same responsibilities:
  component k is N(c_k, c I) with c = 1 / (1 / v_s + alpha_{t|s}^2 / sigma_{t|s}^2) and
  c_k = c (alpha_s mu_k / v_s + alpha_{t|s} x_t / sigma_{t|s}^2), where alpha_{t|s} = alpha_t / alpha_s
  and sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2 (Kingma et al. 2021, Eq. 2-3); s at clean data
  (alpha_s = 1, sigma_s = 0) gives the x_0 posterior.

:class:`OracleDenoiser` follows the denoiser contract ``denoiser(x_t, t, cond) -> (x0_hat, eps_hat)``
(``diffusion/denoiser.py``) on any VP schedule (the DDPM teacher's discrete chain, the cosine logSNR
of the PD and CFG teachers), so every sampler runs on it unchanged.  It has no parameters; its
"weights" file holds the mixture (:func:`save_oracle`, :func:`load_oracle`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from trilemma.data.catalog import CLOSED_FORM
from trilemma.diffusion.schedules import _bcast


@dataclass
class GaussianMixture:
    """q(x_0) = sum_k weights_k N(means_k, std^2 I); ``labels[k]``: the class of mode k."""

    means: torch.Tensor     # (K, d)
    std: float
    weights: torch.Tensor   # (K,), sums to 1
    labels: torch.Tensor    # (K,) long

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    @classmethod
    def from_data(cls, tensors: dict, meta: dict) -> "GaussianMixture":
        """The mixture a toy data artifact was drawn from (``data/toy2d.py``: modes drawn uniformly)."""
        if meta.get("dataset") not in CLOSED_FORM:
            raise ValueError(f"dataset {meta.get('dataset')!r} has no closed-form density, so no oracle "
                             f"denoiser (only {', '.join(CLOSED_FORM)} are Gaussian mixtures)")
        means = tensors["mode_means"].double()
        k = means.shape[0]
        return cls(means, float(meta["std"]), torch.full((k,), 1.0 / k, dtype=torch.float64),
                   tensors["mode_labels"].long())

    def sample(self, n: int, generator: torch.Generator, y: torch.Tensor | None = None) -> torch.Tensor:
        """n draws of q(x_0), or of q(x_0 | y) for per-sample labels ``y``."""
        logits = torch.log(self.weights).expand(n, -1) + (0 if y is None else class_mask(self.labels, y))
        k = torch.multinomial(logits.softmax(1), 1, generator=generator)[:, 0]
        return self.means[k] + self.std * torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)


def class_mask(labels: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, K) log-mask: 0 where mode k belongs to class y_b, -inf elsewhere; a label outside the
    classes (the null label) keeps every mode."""
    y = y.to(labels.device).long()[:, None]
    keep = (labels[None, :] == y) | (y >= int(labels.max()) + 1) | (y < 0)
    return torch.zeros(keep.shape, dtype=torch.float64, device=labels.device).masked_fill(~keep, -math.inf)


class OracleDenoiser(nn.Module):
    """x0* = E[x_0 | x_t] and eps* of a :class:`GaussianMixture` under ``schedule``."""

    def __init__(self, mixture: GaussianMixture, schedule):
        super().__init__()
        self.mixture, self.schedule = mixture, schedule
        self.null_label = mixture.num_classes

    def coefficients(self, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_t, sigma_t) as (B, 1) columns in x_t's dtype, from one time or one per sample.
        Everything below computes in x_t's dtype: float32 in the sample banks, float64 in the tests."""
        t = torch.as_tensor(t, dtype=torch.float64).expand(x_t.shape[0])
        return tuple(c.reshape(-1, 1).to(x_t.device, x_t.dtype) for c in self.schedule.alpha_sigma(t.cpu()))

    def _logits(self, x_t: torch.Tensor, alpha, sigma, y=None):
        """(log pi_k + log N(x_t; alpha mu_k, v I) less the k-free terms -|x_t|^2 / 2v and the
        normaliser, (B, K); v (B, 1)): (alpha x_t . mu_k - alpha^2 |mu_k|^2 / 2) / v, one matrix product."""
        m, like = self.mixture, {"device": x_t.device, "dtype": x_t.dtype}
        means = m.means.to(**like)
        v = alpha ** 2 * m.std ** 2 + sigma ** 2
        logits = torch.log(m.weights).to(**like)[None] + (alpha * (x_t @ means.T) - 0.5 * alpha ** 2 * (means ** 2).sum(1)) / v
        return logits if y is None else logits + class_mask(m.labels, y).to(**like), v

    def log_responsibilities(self, x_t: torch.Tensor, alpha, sigma, y=None) -> torch.Tensor:
        """log r_k(x_t), (B, K); restricted to class y's modes when ``y`` is given."""
        return torch.log_softmax(self._logits(x_t, alpha, sigma, y)[0], dim=1)

    def forward(self, x_t: torch.Tensor, t, cond=None):
        alpha, sigma = self.coefficients(x_t, t)
        y = None if cond is None else cond.get("y")
        logits, v = self._logits(x_t, alpha, sigma, y)
        r = logits.softmax(1)
        m = self.mixture
        mu_bar = r @ m.means.to(x_t.device, x_t.dtype)
        resid = x_t - alpha * mu_bar                            # x_t - alpha mu_bar
        return mu_bar + (alpha * m.std ** 2 / v) * resid, (sigma / v) * resid

    def log_density(self, x_t: torch.Tensor, t, y=None) -> torch.Tensor:
        """log q(x_t), or log q(x_t | y) for per-sample labels ``y``, (B,)."""
        alpha, sigma = self.coefficients(x_t, t)
        logits, v = self._logits(x_t, alpha, sigma, y)
        m = self.mixture
        prior = (torch.log(m.weights)[None] + (0 if y is None else class_mask(m.labels, y))).to(x_t.device, x_t.dtype)
        return (torch.logsumexp(logits, 1) - torch.logsumexp(prior, 1) - (x_t ** 2).sum(1) / (2 * v[:, 0])
                - 0.5 * m.means.shape[1] * torch.log(2 * math.pi * v[:, 0]))

    def class_log_posterior(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """log p(y | x_t) for every class, (B, C): the Bayes classifier, differentiable in x_t."""
        alpha, sigma = self.coefficients(x_t, t)
        log_r = self.log_responsibilities(x_t, alpha, sigma)
        labels = self.mixture.labels
        groups = torch.stack([labels == c for c in range(self.mixture.num_classes)])        # (C, K)
        masked = log_r[:, None, :].masked_fill(~groups[None].to(log_r.device), -math.inf)
        return torch.logsumexp(masked, dim=2)

    def posterior(self, x_t: torch.Tensor, t: float, s: float, y=None):
        """q(x_s | x_t) for s < t: (weights (B, K), means (B, K, d), variance c) of the mixture in the
        module docstring, float64; ``s = schedule.t_min`` is the x_0 posterior."""
        a_t, sg_t = (float(c) for c in self.schedule.alpha_sigma(torch.tensor(float(t), dtype=torch.float64)))
        a_s, sg_s = (float(c) for c in self.schedule.alpha_sigma(torch.tensor(float(s), dtype=torch.float64)))
        a_ts = a_t / a_s
        var_ts = sg_t ** 2 - a_ts ** 2 * sg_s ** 2
        if var_ts <= 0:
            raise ValueError(f"posterior q(x_s | x_t) needs s < t, got t={t}, s={s}")
        m = self.mixture
        v_s = a_s ** 2 * m.std ** 2 + sg_s ** 2
        c = 1.0 / (1.0 / v_s + a_ts ** 2 / var_ts)
        x = x_t.double()
        ones = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
        weights = self.log_responsibilities(x, a_t * ones, sg_t * ones, y).exp()
        means = c * (a_s * m.means[None].to(x.device) / v_s + a_ts * x[:, None, :] / var_ts)
        return weights, means, c

    def sample_posterior(self, x_t: torch.Tensor, t: float, s: float, generator: torch.Generator, y=None):
        """One draw of q(x_s | x_t) per row of x_t."""
        weights, means, c = self.posterior(x_t, t, s, y)
        k = torch.multinomial(weights, 1, generator=generator)[:, 0]
        mean = means[torch.arange(x_t.shape[0]), k]
        noise = torch.randn(mean.shape, generator=generator, dtype=torch.float64, device=mean.device)
        return (mean + math.sqrt(c) * noise).to(x_t.dtype)


class ExactClassifier(nn.Module):
    """p(y | x_t) of an oracle behind the learned classifier's interface ``classifier(alpha_t z_t,
    net_time(t)) -> logits`` (``sampling/guidance.py``: :func:`classifier_input`), so that
    :class:`~trilemma.sampling.guidance.ClassifierGuidedDenoiser` runs on it unchanged.  The time is
    recovered from the network time input (:func:`time_from_net_time`)."""

    def __init__(self, oracle: OracleDenoiser):
        super().__init__()
        self.oracle = oracle

    def forward(self, alpha_z: torch.Tensor, t_in: torch.Tensor) -> torch.Tensor:
        t = time_from_net_time(self.oracle.schedule, t_in.double())
        alpha = _bcast(self.oracle.schedule.alpha_sigma(t)[0], alpha_z)
        return self.oracle.class_log_posterior(alpha_z / alpha, t).to(alpha_z.dtype)


def time_from_net_time(schedule, t_in: torch.Tensor) -> torch.Tensor:
    """The schedule time of a network time input: the identity on discrete chains; on the cosine
    logSNR schedule the inverse of 1000 arctan(exp(-lambda / 2)) / (pi / 2) and of lambda(t)."""
    if not schedule.continuous:
        return t_in
    u = t_in / 1000.0 * (0.5 * math.pi)            # arctan(exp(-lambda / 2)) = a t + b
    return ((u - schedule.b) / schedule.a).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------- the model artifact
def save_oracle(weights_path, mixture: GaussianMixture, schedule_cfg: dict, dataset: str) -> None:
    """``model.safetensors`` (the mixture) and ``model.json`` (kind ``oracle``), as a trained model."""
    from trilemma.artifacts import save_model
    tensors = {"means": mixture.means, "weights": mixture.weights, "labels": mixture.labels}
    save_model(weights_path, tensors, {
        "name": Path(weights_path).parent.name, "kind": "oracle", "method": "oracle", "dataset": dataset,
        "std": mixture.std, "schedule": schedule_cfg, "parameterization": None, "data_dim": int(mixture.means.shape[1]),
        "model": {"kind": "oracle", "num_classes": mixture.num_classes}})


def load_oracle(model_dir):
    """(:class:`OracleDenoiser`, model.json) of an oracle model directory."""
    from trilemma.artifacts import load_json, load_tensors
    info = load_json(Path(model_dir) / "model.json")
    from trilemma.diffusion.schedules import schedule_from_config
    t, _ = load_tensors(Path(model_dir) / "model.safetensors")
    mixture = GaussianMixture(t["means"].double(), float(info["std"]), t["weights"].double(), t["labels"].long())
    return OracleDenoiser(mixture, schedule_from_config(info["schedule"])), info
