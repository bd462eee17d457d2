"""GPU check of progressive distillation and DDGAN on images (one prepared script, a few minutes on one
H100/H200): the image jobs of ``trilemma train`` / ``distill`` built as the stages build them
(the toy's tasks through ``training/tasks/images.py``: batches on the CPU, networks on the GPU), run with
the shared loop on random uint8 images of the profile's shape, for the profile's networks.

For each of ``teacher_pd``, a distillation round and ``ddgan_t4``: optimizer steps per second after
warm-up (the budget estimates in config/profiles/fashion.yaml and cifar10.yaml rest on these), and the
first step's loss on the GPU against the CPU's from the same weights and batch (bf16 on the GPU: close,
not equal).

  python bench/gpu_images_methods.py --profile fashion --out $OUT/gpu_methods.json [--steps 40] [--smoke]

``--smoke`` runs every path for two steps at batch 4 on whatever device there is (CPU included).
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

from trilemma import config
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.models.ddgan_images import build_discriminator, build_generator
from trilemma.schema.models import Config
from trilemma.stages.train_gan import ddgan_schedule
from trilemma.training.loop import LoopConfig, train
from trilemma.training.tasks.distill import DistillTask
from trilemma.training.tasks.gan import DDGANTask
from trilemma.training.tasks.images import ImageBatches, on_device, without_dropout
from trilemma.training.tasks.pd_teacher import pd_teacher_setup


def tasks(cfg: Config, x0: torch.Tensor, device) -> dict:
    """name -> a function building (task, batch size) with its networks on ``device``."""
    meta = {"data_dim": list(x0.shape[1:])}

    def teacher():
        _, _, task, _ = pd_teacher_setup(cfg, {"train": x0}, meta)
        on_device(task.denoiser.net, device)
        return ImageBatches(task), task.batch_size

    def pd_round():
        _, _, t, _ = pd_teacher_setup(cfg, {"train": x0}, meta)
        teacher_den = Denoiser(on_device(t.denoiser.net.eval(), device), t.denoiser.schedule, t.denoiser.parameterization)
        net = on_device(without_dropout(copy.deepcopy(t.denoiser.net).train()), device)
        student = Denoiser(net, teacher_den.schedule, teacher_den.parameterization)
        r = cfg.distill.rounds.model_copy(update={"lr": {"default": 5e-5}})
        task = DistillTask(student, teacher_den, x0, r, 4, cfg.distill.teacher.weighting)
        return ImageBatches(task), r.batch_size

    def ddgan():
        im, tr = cfg.ddgan.image_model, cfg.ddgan.train
        G = on_device(build_generator({"nz": im.nz, "generator": im.generator.plain()}, meta["data_dim"]), device)
        D = on_device(build_discriminator(im.discriminator.plain(), meta["data_dim"]), device)
        sched = DiscreteSchedule.from_config(ddgan_schedule(cfg.ddgan, 4))
        h, w = meta["data_dim"][1:]
        return ImageBatches(DDGANTask(G, D, sched, x0, tr.model_copy(update={"r1_gamma": tr.r1_gamma * h * w}))), \
            tr.batch_size

    return {"teacher_pd": teacher, "pd_round": pd_round, "ddgan_t4": ddgan}


def steps_per_second(build, steps: int, warmup: int, tmp: Path, name: str) -> float:
    task, batch = build()
    train(task, LoopConfig(samples=warmup * batch, batch_size=batch, checkpoint_every=10 ** 9), seed=0,
          resume_dir=tmp / f"{name}-warm", fingerprint=name, progress=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    train(task, LoopConfig(samples=steps * batch, batch_size=batch, checkpoint_every=10 ** 9), seed=1,
          resume_dir=tmp / name, fingerprint=name, progress=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def first_loss(build_on, device) -> float:
    torch.manual_seed(0)
    task, _ = build_on(device)
    gen = torch.Generator().manual_seed(0)
    loss, _ = task.phases[0].loss_fn(task.sample_batch(gen), gen)
    return float(loss)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="fashion")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    cfg = config.load_typed(args.profile)
    if args.smoke:   # batches of 4: the paths, not the profile's cost (a CPU step at batch 128 takes minutes)
        for section in (cfg.distill.teacher.train, cfg.distill.rounds, cfg.ddgan.train):
            section.batch_size = 4
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shape = {"fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}[cfg.data.name]
    if cfg.data.image is not None and cfg.data.image.crop:
        shape = (shape[0], cfg.data.image.crop, cfg.data.image.crop)
    x0 = torch.randint(0, 256, (512, *shape), dtype=torch.uint8)
    steps, warmup = (2, 1) if args.smoke else (args.steps, 5)
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "profile": args.profile}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("teacher_pd", "pd_round", "ddgan_t4"):
            result[f"{name}_steps_per_s"] = steps_per_second(tasks(cfg, x0, device)[name], steps, warmup, Path(tmp), name)
            if device.type == "cuda":
                result[f"{name}_first_loss"] = {d: first_loss(lambda dv: tasks(cfg, x0, torch.device(dv))[name](), d)
                                                for d in ("cpu", "cuda")}
            print(name, json.dumps({k: v for k, v in result.items() if k.startswith(name)}), flush=True)
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")   # after each: a timeout keeps the rest


if __name__ == "__main__":
    main()
