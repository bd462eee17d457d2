"""Progressive distillation (Salimans & Ho 2022): closed forms of the cosine logSNR schedule, the
parameterization conversions, every (parameterization, weighting) pair training, and one round of
Algorithm 2 on a tiny teacher making one student step reproduce two teacher steps."""
import copy
import math

import pytest
import torch

from trilemma.diffusion.continuous import CosineLogSNRSchedule, uniform_grid
from trilemma.diffusion.denoiser import OUTPUTS, PARAMETERIZATIONS, Denoiser, convert
from trilemma.models.registry import build_model
from trilemma.sampling.ddim import ddim_step, sample_ddim
from trilemma.schema.models import Rounds, Train
from trilemma.training.loop import LoopConfig, train
from trilemma.training.tasks.distill import DistillTask, distillation_target
from trilemma.training.tasks.pd_teacher import WEIGHTINGS, PDTeacherTask, weighted_loss

TINY = {"kind": "mlp", "hidden": 32, "depth": 2, "emb_dim": 16}


def test_cosine_logsnr_reference_values():
    s = CosineLogSNRSchedule()
    lam = s.logsnr(torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(lam, torch.tensor([20.0, 0.0, -20.0], dtype=torch.float64), atol=1e-9)
    t = torch.linspace(0.01, 0.99, 7, dtype=torch.float64)
    a, sg = s.alpha_sigma(t)
    assert torch.allclose(a ** 2 + sg ** 2, torch.ones_like(t))
    assert torch.allclose(a ** 2, torch.sigmoid(s.logsnr(t)))
    # the paper's alpha_t = cos(pi t / 2), up to the +-20 clipping of the logSNR
    assert torch.allclose(a, torch.cos(0.5 * math.pi * t), atol=1e-4)
    # d log abar / dt against a central finite difference
    h = 1e-6
    fd = (s.log_alpha_bar(t + h) - s.log_alpha_bar(t - h)) / (2 * h)
    assert torch.allclose(s.d_log_alpha_bar(t), fd, rtol=1e-5)
    # the network input inv_cos: arctan(exp(-lambda/2)) / (pi/2), scaled by 1000
    assert torch.allclose(s.net_time(torch.tensor([0.5])), torch.tensor([500.0], dtype=torch.float64))
    assert uniform_grid(4).tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]


@pytest.mark.parametrize("param", PARAMETERIZATIONS)
def test_conversions_recover_x_and_eps(param):
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g)
    alpha = torch.rand(16, 1, generator=g).double().clamp(0.05, 0.99).float()
    sigma = (1 - alpha ** 2).sqrt()
    z = alpha * x + sigma * eps
    out = {"x": x, "eps": eps, "v": alpha * eps - sigma * x,
           # both: any (x~, eps~) with x~ = x and eps~ = eps gives x_hat = sigma^2 x + alpha^2 x = x
           "both": torch.cat([x, eps], 1)}[param]
    x_hat, eps_hat = convert(out, z, alpha, sigma, param)
    assert torch.allclose(x_hat, x, atol=1e-5) and torch.allclose(eps_hat, eps, atol=1e-4)


def test_weightings_closed_forms():
    x, x_hat = torch.zeros(3, 2), torch.tensor([[1.0, 0.0]] * 3)
    alpha = torch.tensor([[0.6], [0.8], [0.1]])
    sigma = (1 - alpha ** 2).sqrt()
    eps_hat = (alpha * x - alpha * x_hat) / sigma  # keep z fixed: eps = (z - alpha x) / sigma with z = 0
    mse_x = 0.5
    snr = (alpha ** 2 / sigma ** 2).squeeze(1)
    eps = torch.zeros(3, 2)
    got = {w: weighted_loss(x, x_hat, eps, eps_hat, alpha, sigma, w).item() for w in WEIGHTINGS}
    assert math.isclose(got["snr"], (snr * mse_x).mean().item(), rel_tol=1e-5)
    assert math.isclose(got["snr_trunc"], (snr.clamp_min(1) * mse_x).mean().item(), rel_tol=1e-5)
    assert math.isclose(got["snr_plus_one"], ((snr + 1) * mse_x).mean().item(), rel_tol=1e-5)


def _teacher(param="x", weighting="snr_trunc", steps=20, seed=0):
    torch.manual_seed(seed)
    x0 = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1)) * 0.3 + torch.tensor([1.0, -0.5])
    den = Denoiser(build_model(TINY, 2, 2 * OUTPUTS[param]), CosineLogSNRSchedule(), param)
    tr = Train.model_construct(batch_size=64, lr=3e-3, weight_decay=0.0)
    return den, x0, PDTeacherTask(den, x0, tr, weighting), LoopConfig(samples=64 * steps, batch_size=64, grad_clip=1.0)


@pytest.mark.parametrize("param", PARAMETERIZATIONS)
@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_every_parameterization_and_weighting_trains(param, weighting, tmp_path):
    den, x0, task, cfg = _teacher(param, weighting, steps=30)
    before = [p.clone() for p in den.net.parameters()]
    final = train(task, cfg, seed=0, resume_dir=tmp_path, fingerprint="t", progress=False)
    log = (tmp_path / "log.jsonl").read_text()
    assert "NaN" not in log and "Infinity" not in log
    assert any(not torch.equal(a, b) for a, b in zip(before, den.net.parameters()))
    assert all(torch.isfinite(v).all() for v in final["net"].values())


def _pair_gap(student, teacher, steps, z, i):
    """|one student DDIM step t -> t - 1/N  -  two teacher DDIM steps| on the same z_t."""
    t = i.double() / steps
    two, _ = ddim_step(teacher, ddim_step(teacher, z, t, t - 0.5 / steps)[0], t - 0.5 / steps, t - 1.0 / steps)
    one, _ = ddim_step(student, z, t, t - 1.0 / steps)
    return (one - two).pow(2).sum(1).sqrt().mean().item()


def test_one_round_makes_one_student_step_match_two_teacher_steps(tmp_path):
    den, x0, task, cfg = _teacher("x", "snr_trunc", steps=300)
    final = train(task, cfg, seed=0, resume_dir=tmp_path / "t", fingerprint="t", progress=False)
    den.net.load_state_dict(final["net"])
    teacher = den.eval().requires_grad_(False)
    steps = 2
    student = Denoiser(copy.deepcopy(teacher.net).requires_grad_(True), teacher.schedule, "x")
    g = torch.Generator().manual_seed(5)
    i = torch.randint(1, steps + 1, (2000,), generator=g)
    a, s = (c.float()[:, None] for c in teacher.schedule.alpha_sigma(i.double() / steps))
    z = a * x0 + s * torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        gap_before = _pair_gap(student, teacher, steps, z, i)
    rcfg = LoopConfig(samples=64 * 400, batch_size=64, lr_schedule="linear", grad_clip=1.0, log_every=10)
    rtask = DistillTask(student, teacher, x0, Rounds.model_construct(batch_size=64, lr={"default": 2e-3}), steps,
                        "snr_trunc")
    assert rtask.ema_modules == []
    out = train(rtask, rcfg, seed=0, resume_dir=tmp_path / "r", fingerprint="r", progress=False)
    student.net.load_state_dict(out["net"])
    with torch.no_grad():
        gap_after = _pair_gap(student, teacher, steps, z, i)
    losses = [float(line.split('"distill_loss": ')[1].split(",")[0].rstrip("}"))
              for line in (tmp_path / "r/log.jsonl").read_text().splitlines()]
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])          # the loss falls
    assert gap_after < 0.5 * gap_before                        # matched trajectories: at least 2x closer
    assert gap_after < 0.05                                    # and close in absolute terms (data scale 0.3)
    # the target inverts one student DDIM step exactly: a student predicting x~ lands on z_t''
    with torch.no_grad():
        x_tilde = distillation_target(teacher, z, i.double() / steps, steps)
        t, t2 = i.double() / steps, (i.double() - 1) / steps
        (a_t, s_t), (a_2, s_2) = (tuple(c.float()[:, None] for c in teacher.schedule.alpha_sigma(u)) for u in (t, t2))
        landed = a_2 * x_tilde + s_2 * (z - a_t * x_tilde) / s_t
        two, _ = ddim_step(teacher, ddim_step(teacher, z, t, t - 0.5 / steps)[0], t - 0.5 / steps, t2)
    keep = i > 1
    assert torch.allclose(landed[keep], two[keep], atol=1e-4)


def test_student_sampler_is_ddim_on_the_uniform_grid():
    den, *_ = _teacher(steps=0)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = sample_ddim(den, x, uniform_grid(2))
        z, _ = ddim_step(den, x, torch.tensor(1.0), torch.tensor(0.5))
        _, ref = ddim_step(den, z, torch.tensor(0.5), torch.tensor(0.0))
    assert torch.allclose(out, ref)
