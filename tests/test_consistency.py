"""Consistency distillation (Song et al. 2023) and the distillation bill (issue 18): the boundary
condition holds exactly for any weights; one CD update moves the student toward the teacher-step target,
which matches its closed form when the teacher is exact (a point mass); the bill counts teacher calls
exactly (against an independent count) for CD, PD and guided stage one; a killed CD run resumes to the
uninterrupted run's weights and bill; Algorithm 1 with one step is f(x_T, 1)."""
import copy
import os
import signal

import pytest
import torch
from torch import nn

from trilemma.diffusion.consistency import ConsistencyFunction, discretisation, sigma_tilde
from trilemma.diffusion.continuous import CosineLogSNRSchedule
from trilemma.diffusion.denoiser import Denoiser
from trilemma.models.registry import build_model
from trilemma.sampling.consistency import sample_consistency
from trilemma.sampling.guidance import CFGDenoiser
from trilemma.schema.models import Consistency, Rounds, Stage1, Train
from trilemma.training.bill import with_cumulative
from trilemma.training.loop import LoopConfig, train
from trilemma.training.tasks.consistency import ConsistencyDistillTask
from trilemma.training.tasks.distill import DistillTask
from trilemma.training.tasks.guided import GuidedStudentTask

TINY = {"kind": "mlp", "hidden": 32, "depth": 2, "emb_dim": 16}
CD = Consistency.model_validate({
    "t_min": 0.002, "points": 6, "target_ema": 0.9, "distance": "l2", "huber_c": 0.00054,
    "train": {"updates": 10, "batch_size": 32, "lr": 1e-3, "ema_decay": 0.0, "grad_clip": None, "checkpoint_every": 10,
              "log_every": 10}})


def _denoiser(seed=0, **model):
    torch.manual_seed(seed)
    return Denoiser(build_model({**TINY, **model}, 2), CosineLogSNRSchedule(), "v")


class PointMass(nn.Module):
    """The exact denoiser of data at one point c: x0_hat = c, eps_hat = (z - alpha c) / sigma."""

    def __init__(self, c):
        super().__init__()
        self.c, self.schedule, self.calls = c, CosineLogSNRSchedule(), 0

    def forward(self, z, t, cond=None):
        self.calls += z.shape[0]   # an independent count of the examples evaluated
        t = torch.as_tensor(t, dtype=torch.float64).expand(z.shape[0])
        a, s = (c.float()[:, None] for c in self.schedule.alpha_sigma(t))
        return self.c.expand_as(z), (z - a * self.c) / s


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boundary_condition_is_exact_for_any_weights(seed):
    den = _denoiser(seed)
    with torch.no_grad():   # any weights: scale them far from the initialisation
        for p in den.net.parameters():
            p.mul_(1 + 10 * seed)
    f = ConsistencyFunction(den, CD.t_min)
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(seed)) * 3
    alpha, _ = den.schedule.alpha_sigma_float(CD.t_min)
    expected = z / torch.tensor(alpha, dtype=torch.float64).float()
    assert torch.equal(f(z, CD.t_min), expected)
    assert torch.equal(f(z, torch.full((64,), CD.t_min, dtype=torch.float64)), expected)


def test_consistency_function_starts_as_the_denoiser():
    """With sigma_data = 1 the shifted c_skip, c_out tend to the v-parameterization's: f -> x0_hat as eps -> 0."""
    den = _denoiser(3)
    f = ConsistencyFunction(den, 1e-9)
    z, t = torch.randn(16, 2), torch.rand(16, dtype=torch.float64) * 0.9 + 0.05
    assert torch.allclose(f(z, t), den(z, t)[0], atol=1e-3)   # float32 rounding of z / alpha at large t


def test_one_update_moves_the_student_toward_the_teacher_step_target():
    c = torch.tensor([[0.7, -0.4]])
    teacher = PointMass(c)
    task = ConsistencyDistillTask(_denoiser(4), teacher, c.expand(256, 2).clone(),
                                  CD.model_copy(update={"target_ema": 0.0}))
    gen = torch.Generator().manual_seed(0)
    z, t_hi, t_lo = task.pairs(task.sample_batch(gen)[0], gen)
    target = task.target(z, t_hi, t_lo)
    # closed form: the exact teacher's DDIM step lands on the point mass's ODE path
    (a_hi, s_hi), (a_lo, s_lo) = (tuple(v.float()[:, None] for v in teacher.schedule.alpha_sigma(t)) for t in (t_hi, t_lo))
    z_lo = a_lo * c + s_lo * (z - a_hi * c) / s_hi
    assert torch.allclose(target, task.f_target(z_lo, t_lo), atol=1e-5)
    before = (task.f(z, t_hi) - target).pow(2).sum(1).mean()
    opt = torch.optim.SGD(task.modules["net"].parameters(), lr=1e-3)
    loss = (task.f(z, t_hi) - target).pow(2).sum(1).mean()
    assert torch.allclose(loss, before)
    loss.backward()
    opt.step()
    after = (task.f(z, t_hi) - target).pow(2).sum(1).mean()
    assert after < before


def test_discretisation_and_target_at_the_boundary():
    grid = discretisation(0.002, 5)
    assert grid[0] == 0.002 and grid[-1] == 1.0 and torch.all(grid[1:] > grid[:-1])
    # at t_n = eps the target is the teacher's DDIM step itself, in the VE variable z / alpha
    c = torch.tensor([[0.3, 0.1]])
    teacher = PointMass(c)
    task = ConsistencyDistillTask(_denoiser(5), teacher, c.expand(8, 2).clone(), CD)
    z = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    t_hi, t_lo = torch.full((8,), float(grid[1]), dtype=torch.float64), torch.full((8,), 0.002, dtype=torch.float64)
    (a_hi, s_hi), (a_lo, s_lo) = (teacher.schedule.alpha_sigma_float(float(t[0])) for t in (t_hi, t_lo))
    z_lo = a_lo * c + s_lo * (z - a_hi * c) / s_hi
    assert torch.allclose(task.target(z, t_hi, t_lo), z_lo / a_lo, atol=1e-6)


def _loop(updates, batch=32):
    return LoopConfig(samples=updates * batch, batch_size=batch, checkpoint_every=2, log_every=1, grad_clip=1.0)


def test_bill_counts_teacher_calls_exactly(tmp_path):
    """CD: one teacher evaluation per example per update; PD: two; guided stage one: two (CFG's passes)."""
    x0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    cases = []
    teacher = PointMass(torch.zeros(1, 2))
    cases.append((ConsistencyDistillTask(_denoiser(), teacher, x0, CD), teacher, 1))
    teacher = PointMass(torch.zeros(1, 2))
    cases.append((DistillTask(_denoiser(), teacher, x0, Rounds.model_construct(batch_size=32, lr={"default": 1e-3}), 2,
                                "snr_trunc"), teacher, 2))
    labelled = _denoiser(num_classes=3)
    guided = CFGDenoiser(copy.deepcopy(labelled), 3)
    counted = guided.denoiser
    calls = {"n": 0}
    counted.register_forward_pre_hook(lambda m, args: calls.__setitem__("n", calls["n"] + args[0].shape[0]))
    task = GuidedStudentTask(_denoiser(num_classes=3, w_emb_dim=4), guided, x0, torch.arange(500) % 3,
                             Stage1.model_construct(w_min=0.0, w_max=2.0, w_ends=0.0,
                                                    train=Train.model_construct(batch_size=32, lr=1e-3)), "snr_trunc")
    for i, (task_i, teacher_i, per_example) in enumerate(cases):
        train(task_i, _loop(7), seed=0, resume_dir=tmp_path / str(i), fingerprint="b", progress=False)
        assert task_i.bill["teacher_evals"] == teacher_i.calls == per_example * 32 * 7
        assert task_i.bill["updates"] == 7 and task_i.bill["wall_s"] > 0 and task_i.bill["device"].startswith("cpu")
    train(task, _loop(5), seed=0, resume_dir=tmp_path / "g", fingerprint="g", progress=False)
    assert task.bill["teacher_evals"] == calls["n"] == 2 * 32 * 5
    chained = with_cumulative({"teacher_evals": 10, "updates": 2, "wall_s": 1.5},
                              {"bill": {"cumulative_teacher_evals": 30, "cumulative_updates": 4, "cumulative_wall_s": 2.0}})
    assert (chained["cumulative_teacher_evals"], chained["cumulative_updates"], chained["cumulative_wall_s"]) == (40, 6, 3.5)


def test_killed_cd_run_resumes_to_the_same_weights_and_bill(tmp_path):
    x0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(0)) * 0.5
    teacher = _denoiser(7)

    def run(resume_dir, kill_at=None):
        task = ConsistencyDistillTask(Denoiser(copy.deepcopy(teacher.net).requires_grad_(True), teacher.schedule, "v"),
                                      teacher, x0, CD)
        loss = task.phases[0].loss_fn
        step = {"n": 0}

        def killing_loss(batch, gen):
            step["n"] += 1
            if step["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGTERM)   # the loop saves its state after this step and exits
            return loss(batch, gen)
        task.phases[0].loss_fn = killing_loss
        return task, train(task, _loop(9), seed=0, resume_dir=resume_dir, fingerprint="k", progress=False)

    ref_task, ref = run(tmp_path / "ref")
    with pytest.raises(SystemExit):
        run(tmp_path / "killed", kill_at=4)
    task, out = run(tmp_path / "killed")
    for name in ("net", "target"):
        for k in ref[name]:
            assert torch.equal(ref[name][k], out[name][k]), (name, k)
    assert task.bill["teacher_evals"] == ref_task.bill["teacher_evals"] == 9 * 32
    assert task.bill["updates"] == 9


def test_one_step_sampling_is_f_at_t_equals_one_and_steps_renoise():
    den = _denoiser(8)
    f = ConsistencyFunction(den, CD.t_min)
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample_consistency(f, x_T, []), f(x_T, 1.0))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x = f(x_T, 1.0)
    z = torch.randn(x.shape, generator=g2)
    alpha, _ = den.schedule.alpha_sigma_float(0.5)
    scale = float(torch.sqrt(sigma_tilde(den.schedule, 0.5) ** 2 - f.sigma_min ** 2))
    assert torch.allclose(sample_consistency(f, x_T, [0.5], generator=g1), f(alpha * (x + scale * z), 0.5))
