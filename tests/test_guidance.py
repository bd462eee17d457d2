"""Guidance and its distillation: the CFG convention, NFE counting, classifier guidance against the
exact classifier of a Gaussian mixture, the stochastic sampler's step sequence, the w-conditioned
student at initialisation, stage one learning, and the DAG wiring of the guidance branch."""
import copy
import math

import pandas as pd
import pytest
import torch

from conftest import REPO
from trilemma import config, dag
from trilemma.diffusion.continuous import CosineLogSNRSchedule, uniform_grid
from trilemma.diffusion.denoiser import Denoiser
from trilemma.evaluation.toy import class_consistency
from trilemma.models.registry import build_model
from trilemma.sampling.common import CountNFE
from trilemma.sampling.ddim import sample_ddim
from trilemma.sampling.guidance import (CFGDenoiser, ClassifierGuidedDenoiser, CountCalls, classifier_grad,
                                        guided_combination)
from trilemma.sampling.guided_stochastic import renoise, sample_guided_stochastic, stochastic_schedule
from trilemma.schema.models import GuidedRounds, Stage1, Train
from trilemma.stages.guided_stage1 import w_student
from trilemma.stages.sample import balanced_labels, parse_spec
from trilemma.training.tasks.distill import DistillTask
from trilemma.training.tasks.guided import GuidedStudentTask
from trilemma.training.tasks.pd_teacher import PDTeacherTask

SCHED = CosineLogSNRSchedule()
MU = torch.tensor([[-1.0, 0.5], [1.0, -0.5], [0.0, 1.5]])   # one Gaussian per class
S = 0.3                                                        # its std


def logsnr_from_net_time(t_in: torch.Tensor) -> torch.Tensor:
    """Invert the cosine schedule's network time 1000 * arctan(exp(-lambda/2)) / (pi/2)."""
    return -2.0 * torch.log(torch.tan(t_in.double() * math.pi / 2000.0))


def mixture_logits(u: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """log p(k | z) + const of the mixture from u = alpha z: log N(z; alpha mu_k, v I) without the
    class-independent |z|^2 term, (u . mu_k - alpha^2 |mu_k|^2 / 2) / v, v = alpha^2 S^2 + sigma^2."""
    a2 = torch.sigmoid(lam)[:, None]
    var = a2 * S ** 2 + (1 - a2)
    mu = MU.double()
    return ((u.double() @ mu.T - 0.5 * a2 * (mu ** 2).sum(1)[None]) / var).to(u.dtype)


class ExactClassifier(torch.nn.Module):
    """The Bayes classifier p(y | z_t) of the mixture, fed (alpha z, network time) like the trained one."""

    def forward(self, u, t_in):
        return mixture_logits(u, logsnr_from_net_time(t_in))


class ExactMixtureDenoiser(torch.nn.Module):
    """The exact denoiser of the mixture: class-conditional for a label, unconditional for the null label."""

    schedule = SCHED
    null = MU.shape[0]

    def forward(self, z, t, cond=None):
        t = torch.as_tensor(t, dtype=torch.float64).expand(z.shape[0])
        lam = SCHED.logsnr(t)
        alpha, sigma = (c.float()[:, None] for c in SCHED.alpha_sigma(t))
        var = alpha ** 2 * S ** 2 + sigma ** 2
        y = cond["y"] if cond else torch.full((z.shape[0],), self.null)
        post = torch.softmax(mixture_logits(alpha * z, lam), dim=1)      # p(k | z)
        onehot = torch.nn.functional.one_hot(y.clamp(max=self.null - 1), self.null).float()
        weights = torch.where((y == self.null)[:, None], post, onehot)
        mean = weights @ MU                                               # E[mu_k | z, (y)]
        eps = sigma * (z - alpha * mean) / var                           # -sigma * score
        return (z - sigma * eps) / alpha, eps


def test_cfg_convention_w0_is_conditional_and_linear():
    den = ExactMixtureDenoiser()
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(6, 2, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])
    cfg = CFGDenoiser(den, null_label=3)
    x_c, e_c = den(z, 0.4, {"y": y})
    x_u, e_u = den(z, 0.4, None)
    x0, eps = cfg(z, 0.4, {"y": y, "w": 0.0})
    assert torch.allclose(eps, e_c) and torch.allclose(x0, x_c)
    w = torch.tensor([0.0, 0.3, 1.0, 2.0, 4.0, 1.5])
    x0, eps = cfg(z, 0.4, {"y": y, "w": w})                                # one w per sample
    assert torch.allclose(eps, (1 + w[:, None]) * e_c - w[:, None] * e_u, atol=1e-6)
    # the combination in x-space is the x0 of the combined eps (weights sum to one)
    alpha, sigma = SCHED.alpha_sigma_float(0.4)
    assert torch.allclose(x0, (z - sigma * eps) / alpha, atol=1e-5)
    assert torch.allclose(guided_combination(torch.ones(2, 2), torch.zeros(2, 2), 2.0), torch.full((2, 2), 3.0))


def test_nfe_cfg_two_per_step_classifier_pass_counted():
    den, clf = CountNFE(ExactMixtureDenoiser()), CountCalls(ExactClassifier())
    x, cond = torch.randn(5, 2), {"y": torch.arange(5) % 3, "w": 1.0}
    sample_ddim(CFGDenoiser(den, 3), x, uniform_grid(7), cond=cond)
    assert den.nfe == 14
    den.nfe = 0
    sample_ddim(ClassifierGuidedDenoiser(den, clf, 3), x, uniform_grid(7), cond=cond)
    assert den.nfe == 7 and clf.nfe == 7


def test_classifier_gradient_and_guidance_match_the_gaussian_mixture():
    """grad log p(y|z) of the exact classifier equals the closed form; guidance with the exact
    classifier at scale s turns the exact unconditional denoiser into the exact conditional one at
    s = 1, and equals classifier-free guidance with w = s - 1 (Ho & Salimans 2022, Sec. 3.2)."""
    g = torch.Generator().manual_seed(1)
    z, y, t = torch.randn(8, 2, generator=g), torch.arange(8) % 3, 0.45
    lam = SCHED.logsnr(torch.tensor(t))
    a2 = torch.sigmoid(lam).item()
    alpha, var = math.sqrt(a2), a2 * S ** 2 + 1 - a2
    post = torch.softmax(mixture_logits(alpha * z, lam.expand(8)), 1)
    closed = -(z - alpha * MU[y]) / var + (post[:, :, None] * (z[:, None] - alpha * MU[None])).sum(1) / var
    assert torch.allclose(classifier_grad(ExactClassifier(), SCHED, z, t, y), closed, atol=1e-4)
    den = ExactMixtureDenoiser()
    guided = ClassifierGuidedDenoiser(den, ExactClassifier(), null_label=3)
    x_cg, e_cg = guided(z, t, {"y": y, "w": 1.0})
    x_c, e_c = den(z, t, {"y": y})
    assert torch.allclose(e_cg, e_c, atol=1e-4) and torch.allclose(x_cg, x_c, atol=1e-3)
    _, e_cg3 = guided(z, t, {"y": y, "w": 3.0})
    _, e_cfg2 = CFGDenoiser(den, 3)(z, t, {"y": y, "w": 2.0})
    assert torch.allclose(e_cg3, e_cfg2, atol=1e-4)


def test_stochastic_sampler_step_sequence_and_renoising():
    assert stochastic_schedule(4) == [(4, 2, 3), (3, 1, 2), (2, 0, 1), (1, 0, None)]
    assert stochastic_schedule(1) == [(1, 0, None)]
    seen = []

    class Point(torch.nn.Module):   # data = the point c: x0_hat = c exactly
        schedule = SCHED

        def forward(self, z, t, cond=None):
            seen.append(float(t))
            alpha, sigma = SCHED.alpha_sigma_float(float(t))
            x0 = torch.full_like(z, 0.7)
            return x0, (z - alpha * x0) / sigma

    den = CountNFE(Point())
    out = sample_guided_stochastic(den, torch.randn(64, 2), 4, generator=torch.Generator().manual_seed(0))
    assert den.nfe == 4 and seen == [1.0, 0.75, 0.5, 0.25]     # N NFE, net progress 1/N each
    assert torch.allclose(out, torch.full_like(out, 0.7))      # last step deterministic, returns x0_hat
    # forward re-noising k -> s: mean (alpha_s/alpha_k) z_k, variance sigma_s^2 - (alpha_s/alpha_k)^2 sigma_k^2
    zk = torch.full((200000, 1), 0.3)
    zs = renoise(SCHED, zk, 0.25, 0.5, torch.randn(zk.shape, generator=torch.Generator().manual_seed(1)))
    (a_k, s_k), (a_s, s_s) = SCHED.alpha_sigma_float(0.25), SCHED.alpha_sigma_float(0.5)
    assert abs(zs.mean().item() - a_s / a_k * 0.3) < 5e-3
    assert abs(zs.var().item() - (s_s ** 2 - (a_s / a_k) ** 2 * s_k ** 2)) < 5e-3


def cfg_teacher(seed=0):
    torch.manual_seed(seed)
    net = build_model({"kind": "mlp", "hidden": 32, "depth": 2, "emb_dim": 16, "num_classes": 3}, 2)
    torch.nn.init.normal_(net.out[1].weight, std=0.3)      # a non-trivial teacher
    info = {"model": {"kind": "mlp", "hidden": 32, "depth": 2, "emb_dim": 16, "num_classes": 3},
            "data_dim": 2, "parameterization": "v"}
    return Denoiser(net.eval(), SCHED, "v"), info


def test_w_student_equals_the_conditional_teacher_at_initialisation():
    teacher, info = cfg_teacher()
    student, model = w_student(teacher, info, w_emb_dim=8)
    assert model["w_emb_dim"] == 8 and student.net.w_emb_dim == 8
    z, y, t = torch.randn(10, 2), torch.arange(10) % 3, torch.rand(10, dtype=torch.float64)
    x_t, _ = teacher(z, t, {"y": y})
    for w in (0.0, 1.0, 4.0):
        x_s, _ = student(z, t, {"y": y, "w": w})
        assert torch.equal(x_s, x_t)
    # the guided teacher differs from the student at init once w > 0: stage one has something to learn
    x_g, _ = CFGDenoiser(teacher, 3)(z, t, {"y": y, "w": 2.0})
    assert not torch.allclose(x_g, x_t)


def test_stage_one_training_reduces_the_loss():
    teacher, info = cfg_teacher()
    student, _ = w_student(teacher, info, w_emb_dim=8)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (512,), generator=g)
    x0 = MU[y] + S * torch.randn(512, 2, generator=g)
    stage1 = Stage1.model_construct(w_min=0.0, w_max=4.0, w_ends=0.0,
                                    train=Train.model_construct(batch_size=256, lr=3e-3))
    task = GuidedStudentTask(student, CFGDenoiser(teacher, 3), x0, y, stage1, "snr_trunc")

    def loss_at(seed):
        gen = torch.Generator().manual_seed(seed)
        return task.loss(task.sample_batch(gen), gen)[0]

    before = loss_at(123).item()
    opt = torch.optim.Adam(student.net.parameters(), lr=3e-3)
    for i in range(60):
        loss = loss_at(i)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_at(123).item() < 0.5 * before


def test_label_dropout_and_w_reach_the_network():
    seen = []

    class Spy(torch.nn.Module):
        num_classes = 3

        def forward(self, x, t, cond=None):
            seen.append(cond)
            return torch.zeros_like(x, requires_grad=True)

    den = Denoiser(Spy(), SCHED, "v")
    y = torch.zeros(20000, dtype=torch.long)
    task = PDTeacherTask(den, torch.zeros(20000, 2), Train.model_construct(batch_size=20000, lr=1e-3, weight_decay=0.0),
                         "snr", labels=y, p_uncond=0.2)
    gen = torch.Generator().manual_seed(0)
    task.loss(task.sample_batch(gen), gen)
    share_null = (seen[-1]["y"] == 3).float().mean().item()
    assert abs(share_null - 0.2) < 0.01 and set(seen[-1]["y"].tolist()) == {0, 3}
    # stage two: the same DistillTask, teacher and student both see the example's label and its w
    teacher, student = Denoiser(Spy(), SCHED, "v"), Denoiser(Spy(), SCHED, "v")
    seen.clear()
    rtask = DistillTask(student, teacher, torch.zeros(64, 2), GuidedRounds.model_construct(batch_size=64, lr=1e-3), 4,
                        "snr", labels=torch.arange(64) % 3, w_range=(1.0, 2.0))
    rtask.loss(rtask.sample_batch(gen), gen)
    assert len(seen) == 3 and all(c is seen[0] for c in seen)            # 2 teacher steps + the student
    assert ((seen[0]["w"] >= 1.0) & (seen[0]["w"] <= 2.0)).all() and seen[0]["w"].std() > 0


def test_class_consistency_and_balanced_labels():
    means = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rows = torch.tensor([0, 0, 1, 1])
    x = torch.tensor([[0.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.5, 0.5]])   # the last one: not high quality
    assert class_consistency(x, torch.tensor([0, 0, 1, 1]), means, rows, 0.05) == 0.75
    assert class_consistency(x, torch.tensor([1, 1, 0, 0]), means, rows, 0.05) == 0.0
    assert balanced_labels(7, 3, "cpu").tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_spec_ids_parse():
    s = parse_spec("cfg-w0.3-s256")
    assert (s.method, s.w, s.steps, s.stochastic) == ("cfg", 0.3, 256, False)
    s = parse_spec("gstoch-w4-s4")
    assert (s.method, s.w, s.steps, s.stochastic) == ("guided_pd", 4.0, 4, True)
    assert parse_spec("cg-w2-s64").method == "classifier_guidance"


def test_guidance_jobs_and_code_at_the_right_grain():
    cfg = config.load(root=REPO)
    jobs = {j.name: j for j in dag.jobs(cfg)}
    ids = dag.guidance.guided_bank_ids(cfg)
    assert "teacher_cfg/cfg-w0.3-s256" in ids and "guided_s4/gpd-w4-s4" in ids and "guided_s2/gstoch-w1-s4" in ids
    assert dag.student_steps(cfg, "guidance") == [16, 8, 4, 2, 1]
    stage1 = jobs["guided_stage1-guided_w"]
    assert "results/toy/models/teacher_cfg/model.safetensors" in stage1.deps
    assert jobs["distill-guided_s16"].argv[jobs["distill-guided_s16"].argv.index("--teacher-dir") + 1].endswith("guided_w")
    assert "guidance.rounds.updates.s1" in jobs["distill-guided_s1"].params
    ev = jobs["evaluate-guided_s4-gpd-w1-s4"]
    assert "results/toy/samples/teacher_cfg/cfg-w1-s256.safetensors" in ev.deps and "--reference-bank" in ev.argv
    assert "--reference-bank" not in jobs["evaluate-teacher_cfg-cfg-w1-s256"].argv
    cg = jobs["sample-teacher_pd-cg-w2-s64"]   # the unconditional teacher (guidance.eval.classifier_guides)
    assert "results/toy/models/classifier_cg/model.safetensors" in cg.deps
    assert "src/trilemma/sampling/guidance.py" in cg.deps
    assert "src/trilemma/sampling/guided_stochastic.py" in jobs["sample-guided_s2-gstoch-w1-s4"].deps
    assert "src/trilemma/sampling/guided_stochastic.py" not in jobs["sample-guided_s4-gpd-w1-s4"].deps
    assert "results/toy/tables/guidance.md" in jobs["report"].committed
    off = copy.deepcopy(cfg)
    off["guidance"]["enabled"] = False
    assert not dag.guidance.guided_bank_ids(off) and "guidance" not in dag.report_tables(off)


def test_guidance_config_checks():
    cfg = config.load(root=REPO)
    bad = config.deep_merge(cfg, {"guidance": {"eval": {"w": [0.0, 5.0], "stochastic_steps": [3]}}})
    with pytest.raises(config.ConfigError) as err:
        config.validate(bad)
    assert "outside [w_min, w_max]" in str(err.value) and "stochastic_steps: 3" in str(err.value)


def test_guidance_round_lr_per_round():
    """guidance.rounds.lr takes a plain value or {default, s<N>} like distill.rounds.lr: a round
    reads (and its job depends on) only its own entry."""
    cfg = config.load(root=REPO)
    per_round = copy.deepcopy(cfg)
    per_round["guidance"]["rounds"]["lr"] = {"default": 1e-3, "s4": 2e-3}
    config.validate(per_round)
    assert dag.round_key(per_round, "lr", 4, "guidance") == "guidance.rounds.lr.s4"
    assert dag.round_key(per_round, "lr", 8, "guidance") == "guidance.rounds.lr.default"
    jobs = {j.name: j for j in dag.jobs(per_round)}
    assert "guidance.rounds.lr.s4" in jobs["distill-guided_s4"].params
    assert "guidance.rounds.lr.s4" not in jobs["distill-guided_s8"].params
    per_round["guidance"]["rounds"]["lr"] = {"s4": 2e-3}   # no default
    with pytest.raises(config.ConfigError):
        config.validate(per_round)


def test_guidance_table_checks_the_targets():
    rows = []
    for w, cc, p, r in ((0.0, 0.6, 0.8, 0.9), (1.0, 0.8, 0.85, 0.7), (4.0, 0.95, 0.9, 0.4)):
        rows.append(dict(method="cfg", steps=256, w=w, class_consistency=cc, precision=p, recall=r, fd_to_teacher=0.0))
        rows.append(dict(method="cfg", steps=4, w=w, class_consistency=cc - 0.2, precision=p, recall=r, fd_to_teacher=0.3))
        rows.append(dict(method="guided_pd", steps=4, w=w, class_consistency=cc - 0.01, precision=p, recall=r,
                         fd_to_teacher=0.05, stochastic=False))
    df = pd.DataFrame(rows).assign(nfe=1, fd=0.1, hq=0.9, stochastic=lambda d: d["stochastic"].fillna(False))
    g = config.load_typed(root=REPO).guidance
    text = "\n".join(__import__("trilemma.reporting.guidance", fromlist=["x"]).claims(df, g))
    assert "consistency yes, precision yes, recall falling yes" in text
    assert text.count("(×6.0 closer)") == 3 and "NOT met" not in text


def test_half_grid_targets_for_the_stochastic_sampler():
    """Stage two with ``half_grid``: the N-step student also learns from t = j/2N; at t = 1/2N the
    target is the teacher's x^ at z_t, at t = 1/N the teacher's x^ after its half step (PD's last
    step), elsewhere the x~ that makes one student step land on two teacher steps."""
    from trilemma.sampling.ddim import ddim_step
    from trilemma.training.tasks.distill import distillation_target

    teacher, _ = cfg_teacher()
    cond = {"y": torch.arange(6) % 3}
    z, N = torch.randn(6, 2), 4
    t = torch.tensor([1, 2, 3, 5, 7, 8], dtype=torch.float64) / (2 * N)
    target = distillation_target(teacher, z, t, N, cond)
    x_first, _ = teacher(z, t, cond)
    assert torch.allclose(target[0], x_first[0], atol=1e-6)                        # t = 1/2N
    z1, _ = ddim_step(teacher, z, t, t - 0.5 / N, cond=cond)
    _, x_last = ddim_step(teacher, z1, t - 0.5 / N, (t - 1 / N).clamp(min=0), cond=cond)
    assert torch.allclose(target[1], x_last[1], atol=1e-6)                          # t = 1/N
    two, _ = ddim_step(teacher, z1, t - 0.5 / N, t - 1 / N, cond=cond)
    (a_t, s_t), (a_2, s_2) = (tuple(c.float()[:, None] for c in SCHED.alpha_sigma(u)) for u in (t, t - 1 / N))
    landed = a_2 * target + s_2 * (z - a_t * target) / s_t
    assert torch.allclose(landed[2:], two[2:], atol=1e-4)                           # off-grid starts too
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, cond=None):
            seen.append(t.clone())
            return torch.zeros_like(x, requires_grad=True)

    task = DistillTask(Denoiser(Spy(), SCHED, "v"), Denoiser(Spy(), SCHED, "v"), torch.zeros(4000, 2),
                       GuidedRounds.model_construct(batch_size=4000, lr=1e-3), N, "snr", half_grid=True)
    gen = torch.Generator().manual_seed(0)
    task.loss(task.sample_batch(gen), gen)
    times = {round(float(v), 2) for v in seen[-1]}                                # the student's inputs
    grid = torch.arange(1, 2 * N + 1, dtype=torch.float64) / (2 * N)
    assert times == {round(float(v), 2) for v in SCHED.net_time(grid).float()}
