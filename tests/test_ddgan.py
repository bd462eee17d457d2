"""Denoising Diffusion GAN and the GAN baselines: the discretised VP schedule against methods.md's
reference values, the training pairs and the posterior step against closed forms, the sampler's NFE
and latent draws, the loop's phase options, exact resume of a two-phase task, divergence handling, and the
GAN path's units (issue 23: the data's spread in the artifact, equivariance, round trip, cache key)."""
import math

import pytest
import torch

from conftest import REPO
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule, vp_sde_betas
from trilemma.models.gan import (DDGANDiscriminator, DDGANGenerator, FCNet, GANDiscriminator, GANGenerator, OneShot,
                                 fourier_features)
from trilemma.sampling.common import CountNFE
from trilemma.sampling.ddgan import ChainTable, posterior_sample, q_sample_pairs, sample_ddgan
from trilemma.sampling.gan import sample_gan
from trilemma.schema.models import Baselines, Ddgan, GanModel, GanTrain, VpSchedule, WganGp
from trilemma.training.loop import LoopConfig, Phase, train
from trilemma.training.tasks.gan import DDGANTask, GANTask, WGANGPTask

REFERENCE_BETAS = {  # methods.md §4.1, computed from the official get_sigma_schedule
    2: [0.92132, 0.99945],
    4: [0.47826, 0.84921, 0.95642, 0.98740],
    8: [0.15645, 0.38149, 0.54650, 0.66749, 0.75620, 0.82124, 0.86893, 0.90390],
}


@pytest.mark.parametrize("T", [2, 4, 8])
def test_vp_sde_schedule_reference_values(T):
    betas = vp_sde_betas(0.1, 20.0, T)
    assert torch.allclose(betas, torch.tensor(REFERENCE_BETAS[T], dtype=torch.float64), atol=1e-5)
    sched = DiscreteSchedule.from_config({"name": "vp_sde", "beta_min": 0.1, "beta_max": 20.0, "num_steps": T})
    # abar_T = abar(1) / abar(1e-3): the closed form of the VP SDE's marginal
    closed = math.exp(-0.5 * 19.9 * (1 - 1e-6) - 0.1 * (1 - 1e-3))
    assert math.isclose(float(sched.alphas_cumprod[-1]), closed, rel_tol=1e-9)
    if T == 4:
        assert math.isclose(float(sched.alphas_cumprod[-1]), 4.3e-5, rel_tol=0.01)


def ddgan_schedule(T=4):
    return DiscreteSchedule(vp_sde_betas(0.1, 20.0, T))


def test_training_pairs_have_the_forward_marginals():
    sched, n = ddgan_schedule(), 200_000
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((n, 1), 1.5)
    for t in range(4):
        x_prev, x_t = q_sample_pairs(ChainTable(sched), x0, torch.full((n,), t), g)
        ab_t = float(sched.alphas_cumprod[t])
        ab_prev = float(sched.alphas_cumprod[t - 1]) if t else 1.0
        assert abs(x_t.mean().item() - 1.5 * math.sqrt(ab_t)) < 0.01
        assert abs(x_t.var().item() - (1 - ab_t)) < 0.01
        assert abs(x_prev.mean().item() - 1.5 * math.sqrt(ab_prev)) < 0.01
        if t == 0:
            assert torch.equal(x_prev, x0)  # index -1 is clean data
        # x_t | x_prev is one forward step with beta_t
        resid = x_t - (1 - sched.betas[t]).sqrt().float() * x_prev
        assert abs(resid.var().item() - float(sched.betas[t])) < 0.01


def test_posterior_step_is_ddpm_eq7_on_the_ddgan_chain():
    sched = ddgan_schedule()
    betas = vp_sde_betas(0.1, 20.0, 4)
    abar = torch.cumprod(1 - betas, 0)
    g = torch.Generator().manual_seed(1)
    x0, x_t, noise = (torch.randn(4, 2, generator=g) for _ in range(3))
    t = torch.arange(4)
    got = posterior_sample(ChainTable(sched), x0, x_t, t, noise)
    for i in range(4):
        ab_prev = abar[i - 1] if i else torch.tensor(1.0, dtype=torch.float64)
        mean = (ab_prev.sqrt() * betas[i] / (1 - abar[i]) * x0[i]
                + (1 - betas[i]).sqrt() * (1 - ab_prev) / (1 - abar[i]) * x_t[i])
        var = (1 - ab_prev) / (1 - abar[i]) * betas[i]
        assert torch.allclose(got[i], (mean + var.sqrt() * noise[i]).float(), atol=1e-6)
    assert torch.equal(got[0], x0[0])  # last step: no noise, G's x0 prediction


class RecordingGenerator(torch.nn.Module):
    """x0' = c + 0 * z, recording the times and latents it is called with."""

    def __init__(self, c):
        super().__init__()
        self.c, self.calls = c, []

    def forward(self, x_t, t, z):
        self.calls.append((t.clone(), z.clone()))
        return self.c.expand_as(x_t) + 0 * z[:, :1]


@pytest.mark.parametrize("T", [1, 2, 4])
def test_sampler_nfe_times_and_fresh_latents(T):
    sched = ddgan_schedule(T)
    net = RecordingGenerator(torch.tensor([[0.5, -1.0]]))
    counted = CountNFE(Denoiser(net, sched, "x"))
    out = sample_ddgan(counted, torch.randn(16, 2), latent_dim=3, generator=torch.Generator().manual_seed(0))
    assert counted.nfe == T
    assert [int(t[0]) for t, _ in net.calls] == list(reversed(range(T)))
    assert all(z.shape == (16, 3) for _, z in net.calls)
    if T > 1:
        assert not torch.equal(net.calls[0][1], net.calls[1][1])
    assert torch.allclose(out, torch.tensor([[0.5, -1.0]]).expand(16, 2))  # the final step returns x0'


def tiny_data(n=512):
    g = torch.Generator().manual_seed(0)
    return torch.randint(-1, 2, (n, 2), generator=g).float() + 0.05 * torch.randn(n, 2, generator=g)


TRAIN = GanTrain.model_construct(batch_size=32, lr_g=1e-3, lr_d=1e-3, betas=[0.5, 0.9], r1_gamma=0.05, lazy_reg=4)
WGAN = WganGp.model_validate({"gp_weight": 0.1, "n_critic": 3, "lr": 1e-3, "betas": [0.5, 0.9]})


def make_task(kind):
    torch.manual_seed(0)
    if kind == "ddgan":
        return DDGANTask(DDGANGenerator(2, 2, 16, 2, 8), DDGANDiscriminator(2, 16, 2, 8, fourier=2), ddgan_schedule(),
                         tiny_data(), TRAIN)
    G, D = GANGenerator(2, 2, 16, 2), GANDiscriminator(2, 16, 2)
    if kind == "gan":
        return GANTask(G, D, tiny_data(), TRAIN)
    return WGANGPTask(G, D, tiny_data(), TRAIN, WGAN)


def test_fourier_features_are_nerf_octaves():
    x = torch.tensor([[0.5, -1.0]])
    f = fourier_features(x, 2)
    a = torch.tensor([[0.5, 1.0, -1.0, -2.0]])            # x_0 * (1, 2), x_1 * (1, 2)
    assert torch.allclose(f, torch.cat([x, a.sin(), a.cos()], 1))
    assert fourier_features(x, 0) is x
    assert DDGANDiscriminator(2, 16, 2, 8, fourier=3).net.hidden[0].in_features == 4 * 7


def test_fourier_input_lets_a_small_discriminator_see_the_mode_width():
    """The reason for ``d_fourier`` (spectral bias, Tancik et al. 2020): on the 25-Gaussians grid, telling
    the data (std 0.05) from the same modes blurred to std 0.15 takes the plain MLP discriminator far
    longer than a short toy run; with the input's Fourier features it is learnt within 200 steps."""
    g = torch.Generator().manual_seed(0)
    means = torch.stack(torch.meshgrid(torch.arange(-2, 3.), torch.arange(-2, 3.), indexing="ij"), -1).reshape(-1, 2)

    def draw(n, std):
        return means[torch.randint(0, 25, (n,), generator=g)] + std * torch.randn(n, 2, generator=g)

    def final_loss(fourier):
        torch.manual_seed(0)
        D = FCNet(2, 1, 32, 3, fourier=fourier)
        opt = torch.optim.Adam(D.parameters(), lr=3e-3, betas=(0.5, 0.9))
        losses = []
        for _ in range(200):
            loss = (torch.nn.functional.softplus(-D(draw(128, 0.05))).mean()
                    + torch.nn.functional.softplus(D(draw(128, 0.15))).mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return sum(losses[-50:]) / 50

    plain, fourier = final_loss(0), final_loss(3)
    assert plain > 1.35 and fourier < 1.1      # chance is 2 ln 2 = 1.386


def loop_cfg(steps=20, every=10):
    return LoopConfig(samples=32 * steps, batch_size=32, ema_decay=0.9, checkpoint_every=every, log_every=1)


@pytest.mark.parametrize("kind", ["ddgan", "gan", "wgan_gp"])
def test_one_phase_per_network_trains_both(kind, tmp_path):
    import json
    task = make_task(kind)
    before = {n: [p.clone() for p in m.parameters()] for n, m in task.modules.items()}
    final = train(task, loop_cfg(), seed=0, resume_dir=tmp_path, fingerprint="f", progress=False)
    logs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["D_loss"]) for r in logs)
    g_steps = [r["step"] for r in logs if "G_loss" in r]
    assert g_steps == ([s for s in range(1, 21) if (s - 1) % 3 == 0] if kind == "wgan_gp" else list(range(1, 21)))
    for name, mod in task.modules.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], mod.parameters())), name
    assert set(final) == {"G", "D"}
    if kind == "ddgan":  # R1 joins the D loss at every lazy_reg-th step only (steps 0, 4, 8, ...)
        assert [r["step"] - 1 for r in logs if "D_r1" in r] == list(range(0, 20, 4))


@pytest.mark.parametrize("share", [None, 0.5])
def test_t0_share_draws_the_last_step_with_its_probability(share):
    """``train.t0_share``: index 0 (the last denoising step) with probability t0_share, the other T - 1
    indices uniformly; None keeps the official uniform draw. G's ``fourier`` widens its [x_t, z] input
    as the discriminators' does."""
    task = DDGANTask(DDGANGenerator(2, 2, 16, 2, 8, fourier=3), DDGANDiscriminator(2, 16, 2, 8, fourier=2),
                     ddgan_schedule(), tiny_data(), TRAIN.model_copy(update={"t0_share": share}))
    assert task.modules["G"].net.hidden[0].in_features == 4 * 7       # [x_t, z]: 4 coordinates, 3 octaves
    x0 = tiny_data()[:1].expand(40000, -1)
    t, _, _ = task._pairs(x0, torch.Generator().manual_seed(0))
    T = task.chain.num_steps
    want = torch.full((T,), 1 / T) if share is None else torch.tensor([share] + [(1 - share) / (T - 1)] * (T - 1))
    got = torch.bincount(t, minlength=T).double() / t.numel()
    assert torch.allclose(got, want.double(), atol=0.01), (got, want)


class Killed(Exception):
    pass


def test_two_phase_task_resumes_exactly(tmp_path):
    ref = train(make_task("ddgan"), loop_cfg(30), seed=3, resume_dir=tmp_path / "a", fingerprint="f",
                progress=False)
    task = make_task("ddgan")
    calls = {"n": 0}
    loss_g = task.phases[1].loss_fn

    def dying(batch, gen):
        calls["n"] += 1
        if calls["n"] == 26:
            raise Killed
        return loss_g(batch, gen)
    task.phases[1].loss_fn = dying
    with pytest.raises(Killed):
        train(task, loop_cfg(30), seed=3, resume_dir=tmp_path / "b", fingerprint="f", progress=False)
    assert (tmp_path / "b/state.pt").exists()
    resumed = train(make_task("ddgan"), loop_cfg(30), seed=3, resume_dir=tmp_path / "b", fingerprint="f",
                    progress=False)
    for name in ref:
        for k in ref[name]:
            assert torch.equal(ref[name][k], resumed[name][k]), (name, k)


class ToyTask:
    """One parameter, two phases; records which phase ran at which step with which ``lazy`` flag."""

    def __init__(self, nan_at=None, bad_grad_at=None):
        self.w = torch.nn.Linear(1, 1)
        self.modules, self.ema_modules, self.batch_size = {"w": self.w}, [], 1
        self.calls, self.nan_at, self.bad_grad_at, self.step = [], nan_at, bad_grad_at, 0
        self.phases = [Phase("a", ["w"], self.loss_a, lr=1e-2, lazy_every=2),
                       Phase("b", ["w"], self.loss_b, lr=1e-2, every=3)]

    def sample_batch(self, gen):
        self.step += 1
        return torch.ones(1, 1)

    def loss_a(self, x, gen, lazy=False):
        self.calls.append(("a", self.step - 1, lazy))
        loss = self.w(x).pow(2).mean()
        if self.step - 1 == self.nan_at:
            loss = loss * float("nan")
        if self.step - 1 == self.bad_grad_at:  # finite loss, non-finite gradient
            loss = loss + (self.w.weight - self.w.weight.detach()).abs().sqrt().sum()
        return loss, {}

    def loss_b(self, x, gen):
        self.calls.append(("b", self.step - 1, None))
        return self.w(x).abs().mean(), {}


def test_phase_every_and_lazy_every(tmp_path):
    task = ToyTask()
    train(task, LoopConfig(samples=7, batch_size=1), seed=0, resume_dir=tmp_path, fingerprint="f", progress=False)
    assert [c for c in task.calls if c[0] == "a"] == [("a", s, s % 2 == 0) for s in range(7)]
    assert [c[1] for c in task.calls if c[0] == "b"] == [0, 3, 6]


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    cfg = LoopConfig(samples=20, batch_size=1, checkpoint_every=5)
    with pytest.raises(FloatingPointError, match=r"diverged: nan a loss at step 12; nothing published; the last good checkpoint is step 10"):
        train(ToyTask(nan_at=12), cfg, seed=0, resume_dir=tmp_path, fingerprint="f", progress=False)
    from trilemma.artifacts import load_state
    state = load_state(tmp_path / "state.pt")
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["modules"]["w"].values())


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    cfg = LoopConfig(samples=20, batch_size=1, checkpoint_every=4)  # the bad update at step 7 is
    with pytest.raises(FloatingPointError, match="non-finite weights in 'w' at step 8; nothing published; the last good checkpoint is step 4"):  # followed by a checkpoint
        train(ToyTask(bad_grad_at=7), cfg, seed=0, resume_dir=tmp_path, fingerprint="f", progress=False)
    from trilemma.artifacts import load_state
    state = load_state(tmp_path / "state.pt")
    assert state["step"] == 4 and all(torch.isfinite(v).all() for v in state["modules"]["w"].values())


@pytest.mark.slow
def test_diverging_gan_job_fails_clearly_without_a_model_file(repo_copy):
    from conftest import run_cmd
    from dagtools import edit_yaml
    edit_yaml(repo_copy / "config/profiles/ci.yaml", lambda c: c["ddgan"]["train"].update(lr_d=1e30, lr_g=1e30))
    data = "results/ci/data/gauss25.safetensors"
    run_cmd(["trilemma", "fetch-data", "--profile", "ci", "--dataset", "gauss25", "--out", data], cwd=repo_copy)
    out = repo_copy / "results/ci/models/gan_seed0/model.safetensors"
    proc = run_cmd(["trilemma", "train", "--profile", "ci", "--model", "gan_seed0", "--data", data,
                    "--out", str(out), "--no-progress"], cwd=repo_copy, check=False)
    assert proc.returncode == 2
    assert "trilemma train: error: [train gan_seed0] diverged: nan" in proc.stderr and "nothing published" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def grid(spacing, std, n=4000):
    return {"name": "gauss25", "num_train": n, "num_eval": 100, "gauss25": {"spacing": spacing, "std": std}}


def test_data_scale_is_the_spread_equivariant_and_recorded_in_the_artifact():
    """issue 23: the spread sqrt(tr Cov) is in the data artifact's meta; a x2 copy of the data (spacing
    and std doubled, the same draws) has twice the spread bit for bit, so the DDGAN path's units see
    the same training set; x3 to float error."""
    from trilemma.data.toy2d import data_scale, generate
    from trilemma.schema.models import Data
    from trilemma.stages.train_gan import data_units
    a, meta = generate(Data.model_validate(grid(1.0, 0.05)), seed=0)
    b, meta2 = generate(Data.model_validate(grid(2.0, 0.1)), seed=0)
    assert torch.equal(b["train"], 2 * a["train"])
    assert meta["scale"] == data_scale(a["train"]) and meta2["scale"] == 2 * meta["scale"]
    x = a["train"].double()
    assert math.isclose(meta["scale"], (x - x.mean(0)).pow(2).sum(1).mean().sqrt().item(), rel_tol=1e-12)
    assert math.isclose(data_scale(3 * a["train"]), 3 * meta["scale"], rel_tol=1e-6)
    section = Ddgan.model_construct(model=GanModel.model_construct(scale_ref=2.0))
    units = data_units(section, meta)
    assert torch.equal(a["train"] * units, b["train"] * data_units(section, meta2))
    assert torch.allclose(a["train"] * units, 3 * a["train"] * data_units(section, {"scale": 3 * meta["scale"]}),
                          rtol=1e-6, atol=0)
    assert data_units(Ddgan.model_construct(), meta) == 1.0                  # images: no ddgan.model
    assert data_units(section, {"data_dim": [1, 28, 28]}) == 1.0              # images: no scale in the data


def test_default_toy_is_in_units_one_and_scale_ref_is_a_declared_gan_param():
    """scale_ref is the default toy's spread to the last bit: the default DDGAN and baselines train in
    data coordinates, unchanged.  Changing it re-runs the GAN train jobs and nothing else (it is in
    ``ddgan.model``, which they alone declare; the data artifact's scale is in the data file, which
    every downstream job depends on)."""
    from trilemma import config, dag
    from trilemma.data.toy2d import generate
    from trilemma.stages.train_gan import data_units
    cfg = config.load(root=REPO)
    typed = config.load_typed(root=REPO)
    _, meta = generate(typed.data, cfg["seed"])
    assert data_units(typed.ddgan, meta) == 1.0
    readers = {j.name for j in dag.jobs(cfg) if "ddgan.model" in j.params}
    gan_trains = {j.name for j in dag.gan_train_jobs(cfg, "data")}
    assert readers == gan_trains and len(readers) == 4 * 3 + 2 * 3   # T ablation x 3 seeds, 2 baselines x 3


@pytest.mark.parametrize("units", [1.0, 0.5, 1.3])
def test_units_round_trip_through_training_and_samplers(units):
    """The GAN path's task trains on units * x0; both samplers return their chain's output / units: the
    data round-trip is exact for k = 1 and powers of 2, and within one float32 rounding otherwise."""
    from trilemma.stages.train_gan import build_task
    section = Ddgan.model_construct(
        model=GanModel(hidden=8, layers=2, nz=2, emb_dim=4, d_fourier=1, g_fourier=1),
        train=TRAIN.model_copy(update={"t0_share": 0.5}), schedule=VpSchedule(beta_min=0.1, beta_max=20.0),
        baselines=Baselines.model_construct(wgan_gp=WGAN))
    x0 = tiny_data()
    for method in ("ddgan", "gan", "wgan_gp"):
        task, _ = build_task(method, 2, section, x0, 2, units)
        assert torch.equal(task.x0, x0 * units)
        back = task.x0 / units
        assert torch.equal(back, x0) if units in (1.0, 0.5) else torch.allclose(back, x0, rtol=2 ** -23, atol=0)
    net = RecordingGenerator(torch.tensor([[0.5, -1.0]]))
    den, g = Denoiser(net, ddgan_schedule(2), "x"), torch.Generator
    one = sample_ddgan(den, torch.randn(4, 2), latent_dim=3, generator=g().manual_seed(0))
    assert torch.equal(sample_ddgan(den, torch.randn(4, 2), latent_dim=3, generator=g().manual_seed(0), units=units),
                       one / units)
    gan = OneShot(GANGenerator(2, 2, 8, 2))
    assert torch.equal(sample_gan(gan, 4, latent_dim=2, generator=g().manual_seed(0), units=units),
                       sample_gan(gan, 4, latent_dim=2, generator=g().manual_seed(0)) / units)
