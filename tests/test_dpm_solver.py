"""DPM-Solver++(2M) against diffusers' DPMSolverMultistepScheduler (algorithm_type="dpmsolver++",
solver_order=2) with its grid and final-step options set explicitly, step by step, in float64 on our
side (diffusers steps in float32 internally): on the exact denoiser of the toy's 25 Gaussians and on a
small random float64 network, both on the DDPM teacher's linear schedule (T = 1000)."""
from unittest import mock

import pytest
import torch

from trilemma.data import toy2d
from trilemma.schema.models import Data
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.oracle import GaussianMixture, OracleDenoiser
from trilemma.diffusion.schedules import DiscreteSchedule, linear_betas
from trilemma.sampling.common import CountNFE
from trilemma.sampling.dpm_solver import dpm_solver_grid, linspace_timesteps, sample_dpm_solver_2m

diffusers = pytest.importorskip("diffusers")

DDPM = DiscreteSchedule(linear_betas(1e-4, 0.02, 1000))


def oracle():
    data_cfg = {"name": "gauss25", "num_train": 10, "num_eval": 10, "gauss25": {"spacing": 1.0, "std": 0.05}}
    return OracleDenoiser(GaussianMixture.from_data(*toy2d.generate(Data.model_validate(data_cfg), 0)), DDPM)


class SmallNet(torch.nn.Module):
    """A deterministic float64 eps-network: tanh(x A + sin(t w + b)) B (the MLP's embedding is float32)."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.A, self.B = (torch.randn(2, hidden, generator=g, dtype=torch.float64) * 0.7,
                          torch.randn(hidden, 2, generator=g, dtype=torch.float64) * 0.3)
        self.w, self.b = (torch.rand(hidden, generator=g, dtype=torch.float64) * 0.01,
                          torch.rand(hidden, generator=g, dtype=torch.float64) * 3)

    def forward(self, x, t):
        return torch.tanh(x @ self.A + torch.sin(t[:, None] * self.w + self.b)) @ self.B


def mlp_teacher():
    return Denoiser(SmallNet(), DDPM, "eps")


def reference(steps: int, float64: bool):
    """diffusers' scheduler with every option that shapes the trajectory set explicitly.  ``float64``:
    its schedule tensors replaced by ours (float64) and its internal float32 cast of the sample lifted,
    so both sides compute in float64; stock diffusers keeps betas, sigmas and the sample in float32."""
    ref = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, trained_betas=DDPM.betas.numpy(), algorithm_type="dpmsolver++", solver_order=2,
        solver_type="midpoint", prediction_type="epsilon", timestep_spacing="linspace", lower_order_final=True,
        euler_at_final=False, final_sigmas_type="zero", use_karras_sigmas=False, thresholding=False)
    if float64:
        ref.betas = DDPM.betas.clone()
        ref.alphas = 1.0 - ref.betas
        ref.alphas_cumprod = DDPM.alphas_cumprod
    ref.set_timesteps(steps)
    if float64:
        abar = DDPM.alphas_cumprod[ref.timesteps]
        ref.sigmas = torch.cat([((1 - abar) / abar).sqrt(), torch.zeros(1, dtype=torch.float64)])
    return ref


def step(ref, eps, t, x, float64: bool):
    if not float64:
        return ref.step(eps, t, x).prev_sample
    with mock.patch.object(torch, "float32", torch.float64):   # step() casts the sample to torch.float32
        return ref.step(eps, t, x).prev_sample


@pytest.mark.parametrize("float64,tol", [(True, 1e-4), (False, 1e-3)], ids=["float64", "stock"])
@pytest.mark.parametrize("make", [oracle, mlp_teacher], ids=["oracle", "mlp"])
@pytest.mark.parametrize("steps", [5, 10, 20])
def test_trajectory_matches_diffusers(make, steps, float64, tol):
    """float64: agreement to 1e-4 at every step (measured: at most 6e-13).  Stock diffusers (float32
    inside) differs by up to about 1.9e-4 on the MLP, float32 round-off amplified through x0 = (x - sigma
    eps) / alpha at alpha_999 = 0.006, hence its looser bound."""
    den = make()
    ref = reference(steps, float64)
    assert ref.timesteps.tolist() == linspace_timesteps(1000, steps)
    x_T = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = []
    counted = CountNFE(den)
    out = sample_dpm_solver_2m(counted, x_T, dpm_solver_grid(1000, steps), callback=lambda d: ours.append(d["x"]))
    assert counted.nfe == steps and len(ours) == steps
    x = x_T.clone()
    for i, t in enumerate(ref.timesteps):
        _, eps = den(x, float(t))
        x = step(ref, eps, t, x, float64)
        err = float((x.double() - ours[i]).abs().max())
        assert err < tol, f"step {i} (t = {int(t)}): max |ours - diffusers| = {err:.2e}"
    assert torch.equal(out, ours[-1])
