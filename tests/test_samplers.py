"""Samplers against independent references: diffusers' schedulers (DDPM, DDIM), closed-form
solutions for Gaussian data (probability-flow ODE), and the DDPM == DDIM(eta=1) identity."""
import math

import pytest
import torch

from conftest import FnNet, gaussian_eps
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule, linear_betas
from trilemma.diffusion.timesteps import ddim_quadratic, ddim_uniform, respaced, sampling_grid
from trilemma.sampling.common import CountNFE
from trilemma.sampling.ddim import sample_ddim
from trilemma.sampling.ddpm import sample_ddpm
from trilemma.sampling.pf_ode import sample_pf_ode_adaptive, sample_pf_ode_fixed

diffusers = pytest.importorskip("diffusers")

MU, S = 0.3, 0.5


def setup():
    sched = DiscreteSchedule(linear_betas(1e-4, 0.02, 1000))
    fn = gaussian_eps(sched, MU, S)
    return sched, fn, Denoiser(FnNet(fn), sched, "eps")


def x_T(n=64, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_matches_diffusers(eta):
    sched, fn, den = setup()
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                  beta_schedule="linear", clip_sample=False, set_alpha_to_one=True,
                                  timestep_spacing="leading", steps_offset=0)
    ref.set_timesteps(10)
    assert ref.timesteps.tolist() == sorted(ddim_uniform(1000, 10), reverse=True)
    x = x_T()
    g = torch.Generator().manual_seed(1)
    for i, t in enumerate(ref.timesteps):
        eps = fn(x, torch.full((x.shape[0],), float(t)))
        last = i == len(ref.timesteps) - 1
        noise = torch.randn(x.shape, generator=g) if eta > 0 and not last else None
        x = ref.step(eps, t, x, eta=eta, variance_noise=noise).prev_sample
    ours = sample_ddim(den, x_T(), sampling_grid(ddim_uniform(1000, 10)), eta=eta,
                       generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ours, x, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("variance,ref_type", [("beta_tilde", "fixed_small"), ("beta", "fixed_large")])
@pytest.mark.parametrize("steps", [1000, 25])
def test_ddpm_respaced_matches_diffusers(variance, ref_type, steps):
    sched, fn, den = setup()
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                  beta_schedule="linear", clip_sample=False, variance_type=ref_type)
    kept = respaced(1000, steps)
    ref.set_timesteps(timesteps=sorted(kept, reverse=True))
    x = x_T()
    g = torch.Generator().manual_seed(2)
    for t in ref.timesteps:
        eps = fn(x, torch.full((x.shape[0],), float(t)))
        x = ref.step(eps, t, x, generator=g).prev_sample
    ours = sample_ddpm(den, x_T(), sampling_grid(kept), variance=variance,
                       generator=torch.Generator().manual_seed(2))
    assert torch.allclose(ours, x, atol=2e-4, rtol=1e-3)


def test_ddpm_clipping_matches_diffusers():
    sched, fn, den = setup()
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                  beta_schedule="linear", clip_sample=True, clip_sample_range=0.4,
                                  variance_type="fixed_small")
    kept = respaced(1000, 20)
    ref.set_timesteps(timesteps=sorted(kept, reverse=True))
    x, g = x_T(), torch.Generator().manual_seed(3)
    for t in ref.timesteps:
        x = ref.step(fn(x, torch.full((x.shape[0],), float(t))), t, x, generator=g).prev_sample
    ours = sample_ddpm(den, x_T(), sampling_grid(kept), variance="beta_tilde", clip_x0=(-0.4, 0.4),
                       generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ours, x, atol=2e-4, rtol=1e-3)
    assert ours.abs().max() <= 0.4 + 1e-6


@pytest.mark.parametrize("variance,sigma_hat", [("beta_tilde", False), ("beta", True)])
def test_ddpm_equals_ddim_eta_one_and_sigma_hat(variance, sigma_hat):
    """DDIM Eq. 16 with eta = 1 is the DDPM posterior on the same subsequence (same noise), and the
    DDIM paper's sigma-hat row is DDPM with sigma^2 = beta (of the respaced chain): the toy's DDIM grid
    covers DDPM below 100 steps, so the profile draws no separate DDPM banks there."""
    _, _, den = setup()
    grid = sampling_grid(ddim_uniform(1000, 50))
    a = sample_ddpm(den, x_T(), grid, variance=variance, generator=torch.Generator().manual_seed(4))
    b = sample_ddim(den, x_T(), grid, eta=1.0, sigma_hat=sigma_hat, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(a, b, atol=1e-5)


def exact_flow(sched, x_T_, t_from, t_to):
    """For Gaussian data the PF-ODE flow keeps (x - alpha mu) / std_t constant, std_t^2 = abar s^2 + 1 - abar."""
    def stats(t):
        a, sg = sched.alpha_sigma(torch.tensor(float(t)))
        return float(a), math.sqrt(float(a) ** 2 * S ** 2 + float(sg) ** 2)
    a0, s0 = stats(t_from)
    a1, s1 = stats(t_to)
    return a1 * MU + (x_T_ - a0 * MU) * s1 / s0


def tweedie(sched, x, t):
    a, sg = (float(c) for c in sched.alpha_sigma(torch.tensor(float(t))))
    return MU + a * S ** 2 * (x - a * MU) / (a ** 2 * S ** 2 + sg ** 2)


def test_pf_ode_adaptive_matches_closed_form():
    sched, _, den = setup()
    counted = CountNFE(den)
    ours = sample_pf_ode_adaptive(counted, x_T(), rtol=1e-6, atol=1e-6)
    expected = tweedie(sched, exact_flow(sched, x_T().double(), 999, 0), 0)
    assert torch.allclose(ours.double(), expected, atol=2e-3)
    assert counted.nfe > 10


@pytest.mark.parametrize("solver,steps,tol", [("heun", 200, 5e-3), ("euler", 1000, 5e-3)])
def test_pf_ode_fixed_step_converges(solver, steps, tol):
    sched, _, den = setup()
    expected = tweedie(sched, exact_flow(sched, x_T().double(), 999, 0), 0)
    errors = []
    for n in (steps // 4, steps):
        counted = CountNFE(den)
        ours = sample_pf_ode_fixed(counted, x_T(), steps=n, solver=solver)
        errors.append(float((ours.double() - expected).abs().max()))
        assert counted.nfe == (2 * n if solver == "heun" else n) + 1
    assert max(errors) < tol


def test_ddim_eta0_is_a_pf_ode_solver():
    """DDIM (eta = 0) with all 1000 steps lands on the exact flow of the same ODE (DDIM Prop. 1)."""
    sched, _, den = setup()
    ours = sample_ddim(den, x_T(), sampling_grid(list(range(1000))))
    expected = exact_flow(sched, x_T().double(), 999, -1)
    assert (ours.double() - expected).abs().max() < 1e-2


def test_nfe_counted_by_wrapping_the_network():
    _, _, den = setup()
    for grid, nfe in ((ddim_uniform(1000, 10), 10), (ddim_quadratic(1000, 100), 100)):
        counted = CountNFE(den)
        sample_ddim(counted, x_T(8), torch.tensor(sorted(grid, reverse=True) + [-1], dtype=torch.float64))
        assert counted.nfe == nfe


def test_ddim_step_with_per_sample_times_matches_scalar_steps():
    """Progressive distillation takes teacher DDIM steps at a different t per sample."""
    from trilemma.sampling.ddim import ddim_step
    _, _, den = setup()
    x = x_T(6)
    t = torch.tensor([999.0, 700.0, 500.0, 300.0, 100.0, 10.0], dtype=torch.float64)
    s = t - 37
    batched, x0_b = ddim_step(den, x, t, s)
    for i in range(6):
        one, x0_1 = ddim_step(den, x[i:i + 1], t[i], s[i])
        assert torch.allclose(batched[i:i + 1], one, atol=1e-5) and torch.allclose(x0_b[i:i + 1], x0_1, atol=1e-5)


def test_mlp_one_shared_time_equals_per_row_times():
    """The residual MLP embeds a time shared by the whole batch once and broadcasts it (the samplers'
    case); rows must come out as when every row carries its own time (the training case), with and
    without labels and w, with and without autograd (in-place ops only under no_grad)."""
    from trilemma.models.mlp import ResidualMLP
    torch.manual_seed(0)
    net = ResidualMLP(hidden=32, depth=2, emb_dim=16, num_classes=3, w_emb_dim=8)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x, y = torch.randn(64, 2), torch.randint(0, 4, (64,))
    shared = torch.full((64,), 123.0)
    distinct = shared.clone()
    distinct[-1] = 7.0                     # one other time: the per-row path
    for cond in ({"w": 2.5}, {"w": 1.0, "y": y}, {"w": torch.rand(64) * 4, "y": y}):
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                a, b = net(x, shared, cond), net(x, distinct, cond)
            torch.testing.assert_close(a[:-1], b[:-1], rtol=1e-5, atol=1e-5)
            assert not torch.allclose(a[-1], b[-1])


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "cosine"])
def test_per_grid_fast_paths_equal_per_step_values_bit_for_bit(continuous):
    """The sampler loop's fixed costs (issue 21): the coefficients of a whole grid in one call, and the
    network's time input from a cached Python float, give exactly the per-step values they replace
    (so the banks stay bit for bit what they were)."""
    from trilemma.diffusion.continuous import uniform_grid
    from trilemma.diffusion.schedules import CosineLogSNRSchedule
    from trilemma.sampling.ddim import ddim_coefficients, grid_coefficients
    schedule = CosineLogSNRSchedule() if continuous else DiscreteSchedule(linear_betas(1e-4, 0.02, 1000))
    grids = ([uniform_grid(n) for n in (1, 2, 8, 64, 1024)] if continuous else
             [sampling_grid(ddim_uniform(1000, n)) for n in (1, 10, 50, 1000)] + [sampling_grid(ddim_quadratic(1000, 20))])
    for ts in grids:
        for eta, sigma_hat in ((0.0, False), (0.5, False), (1.0, False), (0.0, True)):
            per_step = [ddim_coefficients(schedule, ts[i], ts[i + 1], eta=eta, sigma_hat=sigma_hat)
                        for i in range(len(ts) - 1)]
            assert grid_coefficients(schedule, ts, eta=eta, sigma_hat=sigma_hat) == per_step
        batch = torch.stack([torch.full((100,), t, dtype=torch.float64) for t in ts[:-1].tolist()])
        expected = schedule.net_time(batch).to(torch.float32)
        fast = torch.tensor([[schedule.net_time_float(t)] * 100 for t in ts[:-1].tolist()], dtype=torch.float32)
        assert torch.equal(fast, expected)


def test_a_bank_runs_the_network_in_slices_with_the_same_values(monkeypatch):
    """``Denoiser`` runs a large batch through the network ``ROWS_PER_CALL`` rows at a time (issue 21:
    cache-sized activations); a DDIM bank and a conditional call give the whole-batch values bit for
    bit, and a call with autograd (training) is never sliced."""
    from trilemma.diffusion import denoiser as dmod
    from trilemma.models.mlp import ResidualMLP
    torch.manual_seed(0)
    net = ResidualMLP(hidden=32, depth=2, emb_dim=16, num_classes=3, w_emb_dim=8)
    for p in net.parameters():   # the zero-initialised last layers too: a non-trivial output
        torch.nn.init.normal_(p, std=0.3)
    sched = DiscreteSchedule(linear_betas(1e-4, 0.02, 100))
    den = Denoiser(net, sched, "eps").eval()
    grid = torch.tensor(sorted(ddim_uniform(100, 10), reverse=True) + [-1], dtype=torch.float64)
    calls = []
    net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    x_T = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (1000,), generator=torch.Generator().manual_seed(2))
    t = torch.full((1000,), 37.0)

    def run():
        with torch.no_grad():
            bank = sample_ddim(den, x_T, grid, eta=1.0, cond={"y": y, "w": 1.0},
                               generator=torch.Generator().manual_seed(3))
            per_row_w = den(x_T, t, {"y": y, "w": torch.linspace(0, 4, 1000)})
            scalar_w = den(x_T, 37.0, {"y": y, "w": 2.0})
        return bank, per_row_w, scalar_w

    monkeypatch.setattr(dmod, "ROWS_PER_CALL", 10_000)
    whole, n_whole = run(), len(calls)
    monkeypatch.setattr(dmod, "ROWS_PER_CALL", 64)
    calls.clear()
    sliced = run()
    assert n_whole == 12 and len(calls) == 12 * 16 and max(calls) == 64   # 1000 rows = 15 x 64 + 40
    for a, b in zip(whole, sliced):
        for u, v in zip(*(x if isinstance(x, tuple) else (x,) for x in (a, b))):
            assert torch.equal(u, v)
    calls.clear()
    den(x_T, t, {"y": y, "w": 1.0})[0].sum().backward()   # training: one call, autograd through the whole batch
    assert calls == [1000]

    class Latent(torch.nn.Module):   # DDGAN's generator: cond is the latent z itself, a tensor
        def forward(self, x, t, z):
            return torch.tanh(x * t[:, None] / 50 + z[:, :2])
    gen = Denoiser(Latent(), sched, "x").eval()
    z = torch.randn(1000, 3, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        sliced = gen(x_T, 37.0, z)
        monkeypatch.setattr(dmod, "ROWS_PER_CALL", 10_000)
        whole = gen(x_T, 37.0, z)
    assert all(torch.equal(u, v) for u, v in zip(whole, sliced))
