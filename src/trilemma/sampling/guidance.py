"""Guidance as wrappers around the denoiser contract ``denoiser(x_t, t, cond) -> (x0_hat, eps_hat)``:
samplers see an ordinary denoiser and need no guidance flag.  ``cond`` is a dict: ``y`` the class
label (LongTensor), ``w`` the guidance strength (a float or one per sample).

- :class:`CFGDenoiser`, classifier-free guidance (Ho & Salimans 2022, Alg. 2):
  eps~ = (1 + w) eps(z, c) - w eps(z, ∅); w = 0 is plain conditional sampling, "CFG scale" s = 1 + w.
  The combination is applied to x0_hat too: x0 = (z - sigma eps) / alpha is affine in eps with
  weights (1 + w) - w = 1, so (1 + w) x0_c - w x0_∅ is exactly the x0 of eps~ (Meng et al. 2023,
  Sec. 3 write it in x-space; the same for v).  Two network passes per call, each counted by the
  NFE wrapper underneath (2 NFE per sampler step).
- :class:`ClassifierGuidedDenoiser`, classifier guidance (Dhariwal & Nichol 2021, Alg. 2):
  eps^ = eps(z) - s sigma_t grad_z log p_phi(y | z, t), x0^ from eps^.  Through DDIM this is Alg. 2
  exactly; through the ancestral sampler (posterior mean from x0^) it shifts the mean by
  s (beta_t / sqrt(1 - beta_t)) grad, Alg. 1's s Sigma grad with Sigma = beta_t up to the factor
  1 / sqrt(1 - beta_t) -> 1.  The classifier pass is counted as one more NFE per step.

The classifier sees alpha_t z_t, not z_t (our choice, :func:`classifier_input`): p(y | z_t) depends
on z_t only through alpha_t z_t / sigma_t^2 (the |z_t|^2 term of the Gaussian kernel cancels between
numerator and evidence), so nothing is lost, and the gradient w.r.t. z_t is then O(alpha_t) by
construction, as the Bayes classifier's is.  Without it a learned classifier's small spurious
gradient at pure noise is multiplied by sigma_t^2 / alpha_t (2e4 at logSNR -20, the top of the
clipped cosine schedule) in x0^ and the first DDIM steps diverge.
"""
from __future__ import annotations

import torch
from torch import nn


def _per_sample(w, like: torch.Tensor) -> torch.Tensor:
    """w (a float or (B,)) as a (B, 1, ...) tensor broadcasting against ``like``."""
    w = torch.as_tensor(w, dtype=like.dtype, device=like.device).expand(like.shape[0])
    return w.reshape(-1, *([1] * (like.ndim - 1)))


def guided_combination(cond_out: torch.Tensor, uncond_out: torch.Tensor, w) -> torch.Tensor:
    """(1 + w) * cond - w * uncond, the one place where the CFG convention is written."""
    w = _per_sample(w, cond_out)
    return (1 + w) * cond_out - w * uncond_out


class CFGDenoiser(nn.Module):
    """Classifier-free guidance around a class-conditional denoiser with a null label."""

    def __init__(self, denoiser, null_label: int):
        super().__init__()
        self.denoiser, self.null_label = denoiser, null_label

    @property
    def schedule(self):
        return self.denoiser.schedule

    def forward(self, x_t, t, cond):
        y = cond["y"]
        x0_c, eps_c = self.denoiser(x_t, t, {"y": y})
        x0_u, eps_u = self.denoiser(x_t, t, {"y": torch.full_like(y, self.null_label)})
        w = cond["w"]
        return guided_combination(x0_c, x0_u, w), guided_combination(eps_c, eps_u, w)


class CountCalls(nn.Module):
    """Counts the passes of a network that is not a denoiser (the guidance classifier)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.nfe = net, 0

    def forward(self, *args):
        self.nfe += 1
        return self.net(*args)


class ClassifierGuidedDenoiser(nn.Module):
    """Classifier guidance with scale ``cond["w"]`` around the *unconditional* denoiser (null label):
    the classifier ``classifier(z, net_time(t)) -> logits`` is noise-conditional, trained on z_t."""

    def __init__(self, denoiser, classifier: nn.Module, null_label: int | None = None):
        super().__init__()
        self.denoiser, self.classifier, self.null_label = denoiser, classifier, null_label

    @property
    def schedule(self):
        return self.denoiser.schedule

    def forward(self, x_t, t, cond):
        y, s = cond["y"], cond["w"]
        uncond = None if self.null_label is None else {"y": torch.full_like(y, self.null_label)}
        _, eps = self.denoiser(x_t, t, uncond)
        grad = classifier_grad(self.classifier, self.schedule, x_t, t, y)
        t_vec = torch.as_tensor(t, dtype=torch.float64, device=x_t.device).expand(x_t.shape[0])
        alpha, sigma = (c.to(x_t.dtype).reshape(-1, *([1] * (x_t.ndim - 1))) for c in self.schedule.alpha_sigma(t_vec))
        eps = eps - _per_sample(s, x_t) * sigma * grad
        return (x_t - sigma * eps) / alpha, eps


def classifier_grad(classifier, schedule, x_t: torch.Tensor, t, y: torch.Tensor) -> torch.Tensor:
    """grad_z log softmax(classifier(z, t))[y] (guided-diffusion's ``cond_fn``), gradients on even
    inside the samplers' ``no_grad``."""
    t_vec = torch.as_tensor(t, dtype=torch.float64, device=x_t.device).expand(x_t.shape[0])
    with torch.enable_grad():
        z = x_t.detach().requires_grad_(True)
        logp = torch.log_softmax(classifier(*classifier_input(schedule, z, t_vec)), dim=1)
        grad, = torch.autograd.grad(logp.gather(1, y[:, None]).sum(), z)
    return grad


def classifier_input(schedule, z: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha_t z_t, network time): what the noise-conditional classifier sees, in training and
    guidance alike; ``t`` one time per example."""
    alpha = schedule.alpha_sigma(t)[0].to(z.dtype).reshape(-1, *([1] * (z.ndim - 1)))
    return alpha * z, schedule.net_time(t).to(z.dtype)
