"""Adversarial tasks for the shared loop, one update phase per network (D first, then G).

- :class:`DDGANTask`, Denoising Diffusion GAN (Xiao, Kreis & Vahdat 2022, Sec. 3, Eq. 4-9), following
  the official ``train_ddgan.py`` where it and the paper differ:
  D step: t ~ U{0..T-1} per sample (or, with ``train.t0_share``, index 0 with that probability and
  the others uniformly; not in the paper or the code, see below), real pair (x_{t-1}, x_t) from :func:`q_sample_pairs`, fake
  x'_{t-1} ~ q(x_{t-1} | x_t, x0' = G(x_t, z, t)); L_D = softplus(-D(real)) + softplus(D(fake))
  (non-saturating loss), plus the R1 penalty (gamma/2) E||grad_{x_{t-1}} D(x_{t-1}, x_t, t)||^2 on the
  real x_{t-1} at every ``lazy_reg``-th step, *not* rescaled by the interval (the code; StyleGAN2
  rescales) and added to that step's D loss before its single update (the code).
  G step: fresh t and pairs from the same data batch, L_G = softplus(-D(fake)).  EMA on G.
  ``t0_share``: index 0 is the last denoising step, G(x_1, z, 0) -> x0 with no posterior noise after it,
  the only step whose output must be sharp (std-0.05 modes, about 9 of them per x_1 at T = 4); the
  other steps output noisy x_{t-1} and are easier.  A uniform t gives it a quarter of a short run's
  updates; a larger share spends the same budget where the run fails (a non-uniform t distribution,
  as in importance-sampled diffusion training, Nichol & Dhariwal 2021, Sec. 3.3).
- :class:`GANTask`, the vanilla non-saturating GAN (Goodfellow et al. 2014, Sec. 3): the same losses
  on G(z) and D(x), no penalty.
- :class:`WGANGPTask`, WGAN-GP (Gulrajani et al. 2017, Alg. 1): critic loss D(fake) - D(real) +
  lambda (||grad D(x_hat)|| - 1)^2 on random interpolates, n_critic critic steps per generator step.

Data parallelism (``training/distributed.py``): :class:`DDGANTask` draws t, the pairs, z and the
posterior noise for the loop's global batch and keeps this rank's slice (``shard``, set by the loop),
so both of its phases (D and G, each with its own optimizer, both averaged across ranks by the loop)
follow the 1-rank run; with one rank the draws are those of the unsharded task.  The GAN baselines
draw for their whole batch on every rank (the toy trains them in one process).

While one network is updated the other is frozen (``requires_grad`` off while the loss graph is
built, as the code does for D in the G step; in the D step the fake is built without gradient, where
the code lets gradients reach G and zeroes them before G's step: the same updates).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from trilemma.schema.models import GanTrain, WganGp
from trilemma.training.loop import Phase


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class _Adversarial:
    """Shared data batching: each loop step draws one batch of real points."""
    shard = slice(None)  # set by the loop: this rank's slice of the global batch (DDGANTask uses it)

    def __init__(self, G, D, x0: torch.Tensor, batch_size: int):
        self.modules = {"G": G, "D": D}
        self.ema_modules = ["G"]
        self.x0, self.batch_size = x0, batch_size

    def sample_batch(self, gen: torch.Generator) -> torch.Tensor:
        return self.x0[torch.randint(0, self.x0.shape[0], (self.batch_size,), generator=gen)]

    def z(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn((n, self.modules["G"].nz), generator=gen)


class DDGANTask(_Adversarial):
    def __init__(self, G, D, schedule, x0: torch.Tensor, train: GanTrain):
        super().__init__(G, D, x0, train.batch_size)
        from trilemma.sampling.ddgan import ChainTable   # the DDGAN's branch (codedeps.BRANCHING)
        self.chain, self.r1_gamma, self.t0_share = ChainTable(schedule), train.r1_gamma, train.t0_share
        betas = tuple(train.betas)
        self.phases = [Phase("D", ["D"], self.loss_d, lr=train.lr_d, betas=betas, lazy_every=train.lazy_reg),
                       Phase("G", ["G"], self.loss_g, lr=train.lr_g, betas=betas)]

    def _pairs(self, x0, gen):
        """t and the pairs (x_{t-1}, x_t) drawn for the global batch ``x0``: this rank's slice of them."""
        T = self.chain.num_steps
        if self.t0_share is None or T == 1:
            t = torch.randint(0, T, (x0.shape[0],), generator=gen)
        else:   # index 0 (the last denoising step) with probability t0_share, the others uniformly
            probs = torch.full((T,), (1 - self.t0_share) / (T - 1))
            probs[0] = self.t0_share
            t = torch.multinomial(probs, x0.shape[0], replacement=True, generator=gen)
        from trilemma.sampling.ddgan import q_sample_pairs
        x_prev, x_t = q_sample_pairs(self.chain, x0, t, gen)
        return t[self.shard], x_prev[self.shard], x_t[self.shard]

    def _fake(self, x_t, t, gen, n: int):
        """x'_{t-1} for this rank's (x_t, t): z and the posterior noise drawn for the global batch of
        ``n`` (in the unsharded task's order), this rank's slice kept."""
        z = self.z(n, gen)[self.shard]
        x0_pred = self.modules["G"](x_t, t.float(), z)
        noise = torch.randn((n, *x_t.shape[1:]), generator=gen, device=x_t.device, dtype=x_t.dtype)[self.shard]
        from trilemma.sampling.ddgan import posterior_sample
        return posterior_sample(self.chain, x0_pred, x_t, t, noise)

    def loss_d(self, x0, gen, lazy: bool = False):
        D = self.modules["D"]
        t, x_prev, x_t = self._pairs(x0, gen)
        x_prev.requires_grad_(lazy)
        d_real = D(x_prev, x_t, t.float())
        loss_real = F.softplus(-d_real).mean()
        logs = {}
        r1 = torch.zeros(())
        if lazy:
            grad, = torch.autograd.grad(d_real.sum(), x_prev, create_graph=True)
            r1 = self.r1_gamma / 2 * grad.pow(2).sum(dim=1).mean()
            logs["r1"] = r1.item()
        with torch.no_grad():
            fake = self._fake(x_t, t, gen, x0.shape[0])
        loss_fake = F.softplus(D(fake, x_t, t.float())).mean()
        return loss_real + loss_fake + r1, {"real": loss_real.item(), "fake": loss_fake.item(), **logs}

    def loss_g(self, x0, gen):
        t, _, x_t = self._pairs(x0, gen)
        with frozen(self.modules["D"]):
            d_fake = self.modules["D"](self._fake(x_t, t, gen, x0.shape[0]), x_t, t.float())
        return F.softplus(-d_fake).mean(), {}


class GANTask(_Adversarial):
    def __init__(self, G, D, x0: torch.Tensor, train: GanTrain):
        super().__init__(G, D, x0, train.batch_size)
        betas = tuple(train.betas)
        self.phases = [Phase("D", ["D"], self.loss_d, lr=train.lr_d, betas=betas),
                       Phase("G", ["G"], self.loss_g, lr=train.lr_g, betas=betas)]

    def loss_d(self, x, gen):
        G, D = self.modules["G"], self.modules["D"]
        with torch.no_grad():
            fake = G(self.z(x.shape[0], gen))
        loss_real, loss_fake = F.softplus(-D(x)).mean(), F.softplus(D(fake)).mean()
        return loss_real + loss_fake, {"real": loss_real.item(), "fake": loss_fake.item()}

    def loss_g(self, x, gen):
        with frozen(self.modules["D"]):
            d_fake = self.modules["D"](self.modules["G"](self.z(x.shape[0], gen)))
        return F.softplus(-d_fake).mean(), {}


class WGANGPTask(_Adversarial):
    def __init__(self, G, D, x0: torch.Tensor, train: GanTrain, wgan: WganGp):
        super().__init__(G, D, x0, train.batch_size)
        self.gp_weight = wgan.gp_weight
        betas = tuple(wgan.betas)
        self.phases = [Phase("D", ["D"], self.loss_d, lr=wgan.lr, betas=betas),
                       Phase("G", ["G"], self.loss_g, lr=wgan.lr, betas=betas, every=wgan.n_critic)]

    def loss_d(self, x, gen):
        G, D = self.modules["G"], self.modules["D"]
        with torch.no_grad():
            fake = G(self.z(x.shape[0], gen))
        eps = torch.rand((x.shape[0], 1), generator=gen)
        x_hat = (eps * x + (1 - eps) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        gp = self.gp_weight * (grad.norm(dim=1) - 1).pow(2).mean()
        wdist = D(x).mean() - D(fake).mean()
        return -wdist + gp, {"wdist": wdist.item(), "gp": gp.item()}

    def loss_g(self, x, gen):
        with frozen(self.modules["D"]):
            return -self.modules["D"](self.modules["G"](self.z(x.shape[0], gen))).mean(), {}
