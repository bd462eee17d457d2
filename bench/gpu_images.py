"""GPU check for the image profiles (one prepared script, < 10 minutes on one H100/H200):

1. ``throughput``: training images/s of the ``cifar10`` U-Net (35.7M, batch 128, Adam step included)
   in fp32 eager, bf16 + channels-last, and bf16 + channels-last + torch.compile; prints the ratios.
2. ``fashion``: trains the Fashion-MNIST feature_net (seconds) and a small ``fashion`` U-Net teacher for
   a few minutes with the project's own loop and tasks, samples DDIM (eta 0, quadratic) at 4/16/64
   steps, and reports FID/IS in the classifier's feature space (torch-fidelity) against the training set.

  python bench/gpu_images.py --out $OUT/gpu_images.json [--teacher-minutes 4] [--smoke]

``--smoke`` runs every path for a few steps on whatever device there is (CPU included): a test of the
script, not a measurement.  Results are printed and written as JSON with the device's name.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from trilemma.artifacts import save_model
from trilemma.data import fashion_mnist
from trilemma.data.images import build_dataset, to_uint8
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.diffusion.timesteps import ddim_quadratic, sampling_grid
from trilemma.evaluation import images as ev_images
from trilemma.modality import Images
from trilemma.models.classifier import build_classifier
from trilemma.models.unet import build_unet
from trilemma.sampling.ddim import sample_ddim
from trilemma.schema.models import Data, Evaluation, ImageData, ImageEvaluation, Train
from trilemma.training.loop import LoopConfig, train
from trilemma.training.tasks.classifier import ClassifierTask, accuracy
from trilemma.training.tasks.ddpm import DDPMTask

SCHEDULE = {"name": "linear", "beta_start": 1e-4, "beta_end": 0.02, "num_steps": 1000}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(device, *, steps: int, warmup: int, batch: int = 128) -> dict:
    """Training images/s of the cifar10 U-Net under three execution settings."""
    out = {}
    for name, flags in {"fp32_eager": dict(bf16=False, channels_last=False),
                        "bf16_channels_last": dict(bf16=True, channels_last=True),
                        "bf16_channels_last_compile": dict(bf16=True, channels_last=True, compile=True)}.items():
        if flags.get("compile") and device.type != "cuda":
            continue                                   # compiling the 35.7M U-Net on a CPU takes many minutes
        torch.manual_seed(0)
        net = build_unet({"unet": {"preset": "cifar10", **flags}}, [3, 32, 32]).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=2e-4)
        x = torch.randn(batch, 3, 32, 32, device=device)
        t = torch.randint(0, 1000, (batch,), device=device).float()
        for i in range(warmup + steps):
            if i == warmup:
                sync(device)
                t0 = time.perf_counter()
            loss = (net(x, t) - x).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        out[name] = batch * steps / (time.perf_counter() - t0)
        print(f"{name}: {out[name]:.0f} images/s", flush=True)
        del net, opt
    out["speedup_bf16_cl"] = out["bf16_channels_last"] / out["fp32_eager"]
    if "bf16_channels_last_compile" in out:
        out["speedup_bf16_cl_compile"] = out["bf16_channels_last_compile"] / out["fp32_eager"]
    return out


def train_block(samples: int, batch: int, **values) -> Train:
    """A training block of the config models (what the tasks and the loop read): ``values`` over no
    warm-up, a constant LR, no weight decay, no EMA, no clipping; no checkpoint before the end."""
    return Train.model_validate({"samples": samples, "batch_size": batch, "warmup_samples": 0,
                                 "lr_schedule": "constant", "min_lr_ratio": 0.0, "weight_decay": 0.0, "ema_decay": 0.0,
                                 "grad_clip": None, "checkpoint_every": 10 ** 9, "log_every": 100, **values})


def loop_train(task, block: Train, tmp: Path, name: str) -> dict:
    return train(task, LoopConfig.from_config(block), seed=0, resume_dir=tmp / name, fingerprint=name,
                 progress=False, desc=name)


def fashion(device, data, *, teacher_seconds: float, num_samples: int, tmp: Path, smoke: bool) -> dict:
    x, y = data["train"], data["train_labels"]
    fn_model = {"channels": [16, 32, 64], "features": 128, "dropout": 0.1}
    images = Images()   # the image modality: networks on the device, uint8 batches scaled (and flipped)
    clf = images.place(build_classifier(fn_model, 1, 10))
    fn_train = train_block(512 if smoke else 600_000, 256, lr=3e-3, lr_schedule="cosine", ema_decay=0.99, hflip=True)
    final = loop_train(images.batches(ClassifierTask(clf, x, y, fn_train), hflip=True), fn_train, tmp, "fn")
    clf.load_state_dict(final["net"])
    acc = accuracy(clf, data["eval"], data["eval_labels"])
    save_model(tmp / "fn" / "model.safetensors", final["net"],
               {"name": "feature_net", "method": "classifier", "model": fn_model, "data_dim": [1, 28, 28],
                "num_classes": 10})
    net = images.place(build_unet({"unet": {"preset": "fashion"}}, [1, 28, 28]))
    sched = DiscreteSchedule.from_config(SCHEDULE)
    b = 8 if smoke else 128                            # smoke: the paths at CPU-sized batches
    t_cfg = {"lr": 2e-4, "warmup_samples": b * 500, "ema_decay": 0.999, "grad_clip": 1.0}
    # measure steps/s for 30 s, then train for the remaining budget (one run of the loop per phase)
    t0 = time.perf_counter()
    probe = train_block(b * (4 if smoke else 300), b, **t_cfg)
    loop_train(images.batches(DDPMTask(net, sched, x, probe)), probe, tmp, "probe")
    rate = probe.samples / (time.perf_counter() - t0)
    teacher = train_block(b * 4 if smoke else int(rate * teacher_seconds) // b * b, b, **t_cfg)
    samples = teacher.samples
    t0 = time.perf_counter()
    final = loop_train(images.batches(DDPMTask(net, sched, x, teacher)), teacher, tmp, "teacher")
    train_s = time.perf_counter() - t0
    net.load_state_dict(final["net"])
    den = Denoiser(net.eval(), sched, "eps")
    spec = ev_images.extractor_spec(ImageEvaluation.model_construct(extractor="feature_net"), tmp / "fn")
    ref = ev_images.reference_tensors(ev_images.extract(spec, x, 1000, device), spec, 10000, seed=0)
    evi = ImageEvaluation.model_construct(isc_splits=10, kid_subsets=50, kid_subset_size=min(1000, num_samples))
    out = {"feature_net_test_accuracy": acc, "teacher_train_samples": samples, "teacher_train_s": train_s,
           "teacher_images_per_s": samples / train_s, "ddim": {}}
    for steps in (4, 16, 64):
        g = torch.Generator(device).manual_seed(0)
        banks, t0 = [], time.perf_counter()
        with torch.no_grad():
            for b in range(0, num_samples, 1000):
                x_T = torch.randn((min(1000, num_samples - b), 1, 28, 28), generator=g, device=device)
                banks.append(to_uint8(sample_ddim(den, x_T, sampling_grid(ddim_quadratic(1000, steps)))).cpu())
        sync(device)
        samp_s = time.perf_counter() - t0
        feats = ev_images.extract(spec, torch.cat(banks), 1000, device)
        m = ev_images.image_metrics(feats, ref, spec, Evaluation.model_construct(prc_neighborhood=3, max_prc_samples=10000), evi, 0)
        out["ddim"][steps] = {**{k: m[k] for k in ("fd", "isc", "kid", "precision", "recall")}, "sample_s": samp_s}
        print(f"DDIM {steps} steps: FID {m['fd']:.3f} (feature_net), IS {m['isc']:.2f}, "
              f"P {m['precision']:.3f}, R {m['recall']:.3f}, {samp_s:.1f} s", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--teacher-minutes", type=float, default=4.0)
    p.add_argument("--num-samples", type=int, default=10000)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False   # fp32 means fp32
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "smoke": args.smoke}
    result["throughput"] = throughput(device, steps=2 if args.smoke else 50, warmup=1 if args.smoke else 15,
                                      batch=4 if args.smoke else 128)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))           # the throughput, should the rest time out
    splits = fashion_mnist.load(args.fashion_dir)
    n_train, n_eval = (2000, 500) if args.smoke else (60000, 10000)
    data, _ = build_dataset("fashion_mnist", splits["train"], splits["test"],
                            Data.model_construct(num_train=n_train, num_eval=n_eval, image=ImageData(crop=None)), {})
    with tempfile.TemporaryDirectory() as tmp:
        result["fashion"] = fashion(device, data, teacher_seconds=60 * args.teacher_minutes,
                                    num_samples=32 if args.smoke else args.num_samples, tmp=Path(tmp),
                                    smoke=args.smoke)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
