"""Closed-form checks of the DDPM schedule, the posterior (DDPM Eq. 7) and the timestep grids."""
import math

import torch

from trilemma.diffusion.schedules import DiscreteSchedule, linear_betas
from trilemma.diffusion.timesteps import ddim_quadratic, ddim_uniform, respaced, sampling_grid


def sched():
    return DiscreteSchedule(linear_betas(1e-4, 0.02, 1000))


def test_linear_schedule_reference_values():
    ab = sched().alphas_cumprod
    assert math.isclose(float(ab[0]), 0.9999, rel_tol=1e-12)
    assert math.isclose(float(ab[-1]), 4.036e-5, rel_tol=1e-3)   # methods.md §1.1
    betas = linear_betas(1e-4, 0.02, 1000).numpy()
    manual = 1.0
    for b in betas[:500]:
        manual *= 1 - b
    assert math.isclose(float(ab[499]), manual, rel_tol=1e-10)


def test_alpha_sigma_exact_at_integers_and_continuous_between():
    s = sched()
    a, sg = s.alpha_sigma(torch.tensor([-1.0, 0.0, 499.0, 999.0]))
    assert torch.allclose(a ** 2 + sg ** 2, torch.ones(4, dtype=torch.float64))
    assert float(a[0]) == 1.0 and float(sg[0]) == 0.0
    assert torch.isclose(a[2] ** 2, s.alphas_cumprod[499])
    mid = s.log_alpha_bar(torch.tensor(10.5))
    assert torch.isclose(mid, 0.5 * (s.log_alpha_bar(10.0) + s.log_alpha_bar(11.0)))
    assert torch.isclose(s.d_log_alpha_bar(10.5), torch.log1p(-s.betas[11]))


def test_posterior_matches_ddpm_eq7_for_consecutive_steps():
    s = sched()
    ab = s.alphas_cumprod
    for t in (1, 10, 500, 999):
        c_x0, c_xt, beta_tilde, beta = s.posterior(t, t - 1)
        b, a_t, a_prev = s.betas[t], ab[t], ab[t - 1]
        assert torch.isclose(beta, b)
        assert torch.isclose(c_x0, a_prev.sqrt() * b / (1 - a_t))
        assert torch.isclose(c_xt, (1 - b).sqrt() * (1 - a_prev) / (1 - a_t))
        assert torch.isclose(beta_tilde, (1 - a_prev) / (1 - a_t) * b)


def test_posterior_is_the_gaussian_conditional():
    """q(x_s | x_t, x_0) from the joint Gaussian of (x_s, x_t) given x_0, computed independently."""
    s = sched()
    t, k = 700, 300
    a_t, a_s = s.alphas_cumprod[t], s.alphas_cumprod[k]
    r = a_t / a_s  # x_t = sqrt(r) x_s + sqrt(1 - r) noise
    var_s = 1 - a_s
    cov = r.sqrt() * var_s
    var_t = 1 - a_t
    c_xt = cov / var_t
    c_x0 = a_s.sqrt() - c_xt * a_t.sqrt()
    cond_var = var_s - cov ** 2 / var_t
    got = s.posterior(t, k)
    assert torch.allclose(torch.stack(got[:3]), torch.stack([c_x0, c_xt, cond_var]))


def test_q_sample_moments():
    s = sched()
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200000, 1), 1.5)
    t = torch.full((200000,), 300)
    xt = s.q_sample(x0, t, torch.randn(x0.shape, generator=g))
    ab = float(s.alphas_cumprod[300])
    assert abs(xt.mean().item() - 1.5 * math.sqrt(ab)) < 0.01
    assert abs(xt.var().item() - (1 - ab)) < 0.01


def test_timestep_subsequences_reference_values():
    assert ddim_uniform(1000, 10) == list(range(0, 1000, 100))
    q10 = ddim_quadratic(1000, 10)
    assert q10[:4] == [0, 9, 39, 88] and q10[-2:] == [632, 800]
    assert len(set(ddim_quadratic(1000, 100))) == 96
    assert respaced(1000, 10) == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    r25 = respaced(1000, 25)
    assert r25[:3] == [0, 42, 83] and r25[-2:] == [957, 999]
    assert respaced(1000, 1000) == list(range(1000))
    grid = sampling_grid([0, 500, 999])
    assert grid.tolist() == [999.0, 500.0, 0.0, -1.0]
