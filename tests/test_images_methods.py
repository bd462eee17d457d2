"""Progressive distillation and DDGAN on images: the U-Net under the continuous-time denoiser, the DDGAN
image generator and discriminator, the image batches of the toy's tasks, and the DAG of the image
profiles (cifar10: 11 rounds 8192 -> 4 at the paper's 50k updates and lr 5e-5; DDGAN's T ablation)."""
import copy

import pytest
import torch

from conftest import REPO
from test_unet import _perturbed
from trilemma import config, dag
from trilemma.artifacts import load_model, save_model
from trilemma.diffusion.continuous import CosineLogSNRSchedule
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.models.ddgan_images import AdaGN, DDGANImageDiscriminator, build_generator, minibatch_stddev
from trilemma.models.unet import AttnBlock, build_unet, norm_groups
from trilemma.sampling.ddgan import sample_ddgan
from trilemma.schema.models import GanTrain, Rounds, Train
from trilemma.training.loop import LoopConfig, train
from trilemma.training.tasks.distill import DistillTask
from trilemma.training.tasks.gan import DDGANTask
from trilemma.training.tasks.images import ImageBatches, on_device, without_dropout
from trilemma.training.tasks.pd_teacher import PDTeacherTask

G_CFG = {"kind": "unet", "arch": "ddgan_generator", "nz": 4,
         "generator": {"z_emb_dim": 8, "n_mlp": 1, "ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1,
                       "attn_resolutions": [4], "t_emb_dim": 8}}


def test_unet_takes_the_continuous_time_input_of_the_pd_denoiser():
    """Denoiser passes 1000 * inv_cos(lambda_t) (a float in [0, 1000]) per sample or per batch."""
    net = _perturbed(build_unet({"unet": {"preset": "tiny"}}, [3, 8, 8])).eval()
    den = Denoiser(net, CosineLogSNRSchedule(), "x")
    z = torch.randn(2, 3, 8, 8)
    x_a, eps_a = den(z, torch.tensor([0.3, 0.3], dtype=torch.float64))
    x_b, _ = den(z, 0.3)                                             # the samplers' scalar fast path
    assert x_a.shape == eps_a.shape == z.shape and torch.allclose(x_a, x_b, atol=1e-6)
    assert not torch.allclose(x_a, den(z, 0.7)[0])                    # the time input reaches the network


def test_pd_cifar10_preset_is_the_reference_layout():
    net = build_unet({"unet": {"preset": "pd_cifar10"}}, [3, 32, 32])
    assert net.ch == 256 and net.temb[0].out_features == 1024        # ch 256, embedding 1024
    assert sum(isinstance(m, AttnBlock) for m in net.modules()) == 2 * (3 + 4) + 1   # at 16 and 8, down and up; mid
    assert {m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}
    assert {m.p for m in without_dropout(net).modules() if isinstance(m, torch.nn.Dropout)} == {0.0}


def test_ddgan_generator_predicts_x0_from_xt_t_and_z():
    torch.manual_seed(0)
    G = _perturbed(build_generator(G_CFG, [3, 8, 8]))
    x_t, t = torch.randn(4, 3, 8, 8), torch.tensor([0.0, 1.0, 2.0, 3.0])
    out = G(x_t, t, torch.randn(4, 4))
    assert out.shape == x_t.shape and out.abs().max() <= 1.0               # tanh output
    assert not torch.allclose(out, G(x_t, t, torch.randn(4, 4)))          # the latent matters
    assert not torch.allclose(out[:1], G(x_t[:1], torch.tensor([3.0]), torch.randn(1, 4)))


def test_adagn_starts_as_groupnorm_and_follows_the_style():
    norm = AdaGN(8, 4)
    h, w = torch.randn(2, 8, 3, 3), torch.randn(2, 4)
    groups = norm_groups(8)            # 2: at least 4 channels per group, as the U-Net's norms
    assert groups == 2 and torch.allclose(norm(h, w), torch.nn.functional.group_norm(h, groups, eps=1e-6), atol=1e-6)
    _perturbed(norm)
    assert not torch.allclose(norm(h, w), norm(h, torch.randn(2, 4)))


def test_discriminator_and_minibatch_stddev():
    D = _perturbed(DDGANImageDiscriminator(3, ngf=4, t_emb_dim=8, levels=2))
    x = torch.randn(8, 3, 8, 8)
    assert D(x, x, torch.arange(8.0)).shape == (8,)
    h = torch.randn(8, 5, 2, 2)
    out = minibatch_stddev(h)
    g = h.reshape(2, 4, 5, 2, 2)       # groups of 4 consecutive examples: a rank's slice holds whole groups
    expected = (g.var(1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # one std per group
    assert out.shape == (8, 6, 2, 2) and torch.allclose(out[:, 5, 0, 0], expected.repeat_interleave(4))
    assert torch.allclose(minibatch_stddev(h[4:]), out[4:])    # a slice of whole groups: the same channel


def test_generator_round_trips_through_model_json_and_samples(tmp_path):
    G = _perturbed(build_generator(G_CFG, [3, 8, 8]))
    sched = {"name": "vp_sde", "beta_min": 0.1, "beta_max": 20.0, "num_steps": 2}
    save_model(tmp_path / "model.safetensors", G.state_dict(),
               {"name": "ddgan_t2_seed0", "method": "ddgan", "model": G_CFG, "schedule": sched,
                "parameterization": "x", "data_dim": [3, 8, 8]})
    den, info = load_model(tmp_path)
    x_T = torch.randn(2, 3, 8, 8)
    a = sample_ddgan(den, x_T, latent_dim=4, generator=torch.Generator().manual_seed(1))
    b = sample_ddgan(Denoiser(G.eval(), DiscreteSchedule.from_config(sched), "x"), x_T, latent_dim=4,
                     generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x_T.shape


def test_image_batches_scale_flip_and_pass_the_shard():
    x0 = torch.randint(0, 256, (6, 3, 4, 4), dtype=torch.uint8)
    task = PDTeacherTask(Denoiser(build_unet({"unet": {"preset": "tiny"}}, [3, 4, 4]), CosineLogSNRSchedule(), "v"),
                         x0, Train.model_construct(batch_size=5, lr=1e-3, weight_decay=0.0), "snr_trunc")
    wrapped = ImageBatches(task, hflip=True)
    x, y = wrapped.sample_batch(torch.Generator().manual_seed(0))
    assert x.dtype == torch.float32 and x.shape == (5, 3, 4, 4) and y is None
    assert x.min() >= -1.0 and x.max() <= 1.0
    x2, _ = wrapped.sample_batch(torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)                                          # flips come from the loop's generator
    wrapped.shard = slice(0, 2)
    assert task.shard == slice(0, 2) and wrapped.modules is task.modules and wrapped.phases is task.phases
    assert on_device(task.denoiser.net, torch.device("cpu")) is task.denoiser.net


def test_pd_round_and_ddgan_train_on_uint8_images(tmp_path):
    """The toy's tasks, unchanged, through ImageBatches: a few loop steps give finite weights."""
    x0 = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    teacher = Denoiser(build_unet({"unet": {"preset": "tiny"}}, [3, 8, 8]).eval(), CosineLogSNRSchedule(), "v")
    student = Denoiser(copy.deepcopy(teacher.net).train(), teacher.schedule, "v")
    rounds = Rounds.model_construct(batch_size=4, lr={"default": 1e-3})
    pd = ImageBatches(DistillTask(student, teacher, x0, rounds, 2, "snr_trunc"))
    out = train(pd, LoopConfig(samples=8, batch_size=4, checkpoint_every=10), seed=0,
                resume_dir=tmp_path / "pd", fingerprint="pd", progress=False)
    assert all(torch.isfinite(v).all() for v in out["net"].values())
    G, D = build_generator(G_CFG, [3, 8, 8]), DDGANImageDiscriminator(3, ngf=4, t_emb_dim=8, levels=2)
    train_cfg = GanTrain.model_construct(batch_size=4, lr_g=1e-4, lr_d=1e-4, betas=[0.5, 0.9], r1_gamma=0.02 * 64,
                                         lazy_reg=1)
    sched = DiscreteSchedule.from_config({"name": "vp_sde", "beta_min": 0.1, "beta_max": 20.0, "num_steps": 2})
    gan = ImageBatches(DDGANTask(G, D, sched, x0, train_cfg), hflip=True)
    out = train(gan, LoopConfig(samples=8, batch_size=4, ema_decay=0.9, checkpoint_every=10), seed=0,
                resume_dir=tmp_path / "gan", fingerprint="gan", progress=False)
    assert set(out) == {"G", "D"} and all(torch.isfinite(v).all() for v in out["G"].values())


def test_r1_with_gamma_times_pixels_is_the_official_penalty():
    """The shared task sums the squared gradient over dim 1 and averages the rest; with gamma * H * W
    that is (gamma / 2) E ||grad||^2 over the whole image, as train_ddgan.py."""
    grad = torch.randn(4, 3, 5, 6)
    ours = (0.02 * 5 * 6) / 2 * grad.pow(2).sum(dim=1).mean()
    official = 0.02 / 2 * grad.reshape(4, -1).norm(2, dim=1).pow(2).mean()
    assert torch.allclose(ours, official)


@pytest.mark.parametrize("profile, rounds, first, last, updates, lr, ddgan_T", [
    ("cifar10", 11, 4096, 4, 50000, 5e-5, [1, 2, 4, 8]),     # 8192 -> 4 at the paper's 50k updates, 5e-5
    ("fashion", 6, 128, 4, 2000, 5e-5, [4]),
    ("ci_images", 2, 4, 2, 5, 1e-4, [2])])
def test_image_dag_has_the_distillation_chain_and_ddgan(profile, rounds, first, last, updates, lr, ddgan_T):
    cfg = config.load(profile, root=REPO)
    jobs = {j.name: j for j in dag.jobs(cfg)}
    chain = [j for j in jobs.values() if j.stage == "distill" and j.name.startswith("distill-pd_")]  # not guided_s<N>
    assert [j.name for j in chain] == [f"distill-pd_s{first >> i}" for i in range(rounds)]
    assert first >> (rounds - 1) == last
    for job in chain:
        n = int(job.name.split("_s")[1])
        assert job.argv[:2] == ("trilemma", "distill") and job.argv[job.argv.index("--chain") + 1] == "distill"
        assert config.section(cfg, dag.round_key(cfg, "updates", n)) == updates
        assert config.section(cfg, dag.round_key(cfg, "lr", n)) == lr
        assert "src/trilemma/training/tasks/images.py" in job.deps and "distill.rounds.hflip" in job.params
    assert jobs["train-teacher_pd"].argv[1] == "train"   # one verb for points and images (issue 16)
    assert "src/trilemma/models/unet.py" in jobs["train-teacher_pd"].deps
    gans = sorted(n for n in jobs if n.startswith("train-ddgan"))
    assert gans == sorted(f"train-ddgan_t{T}_seed0" for T in ddgan_T)
    assert not any(n.startswith(("train-gan", "train-wgan", "train-classifier_cg")) for n in jobs)  # toy only
    assert jobs["train-teacher_cfg"].argv[1] == "train"  # guidance on images: the CFG teacher on the U-Net
    dd = jobs[gans[0]]
    assert "ddgan.image_model" in dd.params and "src/trilemma/models/ddgan_images.py" in dd.deps
    assert "src/trilemma/models/ddgan_images.py" in jobs[f"sample-ddgan_t{ddgan_T[0]}_seed0-ddgan-s{ddgan_T[0]}"].deps
    assert {f"results/{profile}/tables/{t}.md" for t in ("distillation", "ddgan")} <= set(jobs["report"].committed)


def test_toy_jobs_do_not_depend_on_image_code():
    for job in dag.jobs(config.load(root=REPO)):
        assert not any(d.endswith(("_images.py", "tasks/images.py", "models/unet.py")) for d in job.deps), job.name
