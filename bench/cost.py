"""Project the GPU-hours of every stage of a profile (``cifar10`` by default) from throughput measured
on one GPU by the device scripts, and write ``results/<profile>/cost.md``.

    python bench/cost.py --images gpu_images.json --methods gpu_methods.json --sampling mfu.json \\
        [--profile cifar10] [--out results/cifar10/cost.md]

The inputs, all from one card (the script refuses JSONs from different devices or ``--smoke`` runs):

- ``--images``: ``bench/gpu_images.py``; training images/s of the ``cifar10`` U-Net (bf16 +
  channels-last, with compile if the profile compiles): the DDPM teacher.
- ``--methods``: ``bench/gpu_images_methods.py --profile <profile>``; optimizer steps/s of the
  progressive-distillation teacher (also the CFG teacher: the same U-Net plus a label embedding), of a
  distillation round (also each guided round and guided stage one: two teacher forwards and one
  student forward and backward per update, as a PD round) and of the DDGAN at T = 4 (the cost of a
  DDGAN iteration does not depend on T).
- ``--sampling``: ``bench/gpu_sampling_mfu.py``; seconds per DDIM step of each U-Net preset at the
  measured batch nearest the profile's ``sampling.batch_size``.

Sample banks cost NFE x samples forwards (NFE as ``methods.md`` counts them: CFG 2 per step,
classifier guidance 1 + a classifier pass, the fixed-step PF-ODE solvers N + 1 (Euler) or 2N + 1
(Heun), every other sampler 1 per step, DDGAN's generator T).  The adaptive RK45 solver's NFE is
not known before it runs: the projection uses 140, DDGAN Table 1's NFE for the probability-flow ODE
on CIFAR-10, and says so.  DDGAN generator forwards
are costed as the ``cifar10`` U-Net's (a similar network: ch 128, ch_mult 1,2,2,2).  Data, reference
statistics and metric extraction are not projected (they are not measured; minutes, not hours).
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from trilemma import config, dag, paths
from trilemma.sampling import registry

RK45_NFE = 140   # DDGAN Table 1, "Probability Flow (VP)" on CIFAR-10


def nfe(spec: str) -> int:
    """Network evaluations of one sample of the bank ``spec``: the registry's NFE rule
    (``sampling/registry.py``); RK45_NFE where an adaptive solver decides."""
    n = registry.parse(spec).nfe
    return RK45_NFE if n is None else n


def model_preset(cfg: dict, model: str) -> str:
    """The U-Net preset whose sampling speed stands for ``model``'s forwards."""
    if model == dag.TEACHER or paths.parse_gan_model(model):
        return cfg["teacher"]["model"]["unet"]["preset"]
    if dag.in_pd_chain(model):
        return cfg["distill"]["teacher"]["model"]["unet"]["preset"]
    return cfg["guidance"]["teacher"]["model"]["unet"]["preset"]


def seconds_per_forward(sampling: dict, preset: str, batch: int) -> tuple[float, int]:
    """(seconds per sample per network forward, batch measured) for ``preset``, eager, at the
    measured batch nearest ``batch``."""
    rows = [r for r in sampling["sampling"] if r["preset"] == preset and not r["compile"]]
    if not rows:
        raise SystemExit(f"--sampling has no eager row for preset {preset!r}; rerun bench/gpu_sampling_mfu.py "
                         f"with --presets {preset}")
    r = min(rows, key=lambda r: abs(r["batch"] - batch))
    return r["seconds_per_step"] / r["batch"], r["batch"]


def project(cfg: dict, images: dict, methods: dict, sampling: dict) -> list[dict]:
    """One row per stage family: jobs, work, rate and GPU-hours."""
    rows = []
    teacher_compile = cfg["teacher"]["model"]["unet"].get("compile", False)
    key = "bf16_channels_last_compile" if teacher_compile else "bf16_channels_last"
    tr = cfg["teacher"]["train"]
    rows.append({"stage": f"train {dag.TEACHER} (DDPM)", "jobs": 1, "work": f"{tr['samples']:,} images",
                 "rate": f"{images['throughput'][key]:,.0f} images/s ({key})",
                 "hours": tr["samples"] / images["throughput"][key] / 3600})
    for model, section in ((dag.PD_TEACHER, cfg["distill"]["teacher"]), (dag.CFG_TEACHER, cfg["guidance"]["teacher"])):
        t = section["train"]
        steps = t["samples"] / t["batch_size"]
        rows.append({"stage": f"train {model}", "jobs": 1, "work": f"{steps:,.0f} steps x {t['batch_size']}",
                     "rate": f"{methods['teacher_pd_steps_per_s']:.2f} steps/s (teacher_pd)",
                     "hours": steps / methods["teacher_pd_steps_per_s"] / 3600})
    gans = [g for g in dag.gan_models(cfg) if g[1] == "ddgan"]
    g = cfg["ddgan"]["train"]
    steps = g["samples"] / g["batch_size"]
    rows.append({"stage": f"train DDGAN (T = {', '.join(str(x[2]) for x in gans)})", "jobs": len(gans),
                 "work": f"{len(gans)} x {steps:,.0f} steps x {g['batch_size']}",
                 "rate": f"{methods['ddgan_t4_steps_per_s']:.2f} steps/s (ddgan_t4)",
                 "hours": len(gans) * steps / methods["ddgan_t4_steps_per_s"] / 3600})
    round_rate = methods["pd_round_steps_per_s"]
    for chain, label in (("distill", "progressive distillation"), ("guidance", "guided distillation, stage two")):
        counts = [config.section(cfg, dag.round_updates_key(cfg, n, chain)) for n in dag.student_steps(cfg, chain)]
        rows.append({"stage": f"{label}: {len(counts)} rounds {cfg[chain]['start_steps']} -> {cfg[chain]['final_steps']}",
                     "jobs": len(counts), "work": f"{sum(counts):,} updates",
                     "rate": f"{round_rate:.2f} updates/s (pd_round)", "hours": sum(counts) / round_rate / 3600})
    s1 = cfg["guidance"]["stage1"]["train"]
    updates = s1["samples"] / s1["batch_size"]
    rows.append({"stage": "guided distillation, stage one", "jobs": 1, "work": f"{updates:,.0f} updates",
                 "rate": f"{round_rate:.2f} updates/s (pd_round)", "hours": updates / round_rate / 3600})
    cd, pd_batch = cfg["consistency"]["train"], cfg["distill"]["rounds"]["batch_size"]
    # a CD update (one teacher pass and one target pass without gradient, one student pass with) at its batch,
    # priced as a PD round's update (two teacher passes without gradient, one with) scaled by the batch ratio
    cd_updates = cd["updates"] * cd["batch_size"] / pd_batch
    rows.append({"stage": "consistency distillation", "jobs": 1, "work": f"{cd['updates']:,} updates x {cd['batch_size']}",
                 "rate": f"{round_rate:.2f} updates/s x {pd_batch} (pd_round)", "hours": cd_updates / round_rate / 3600})
    banks = defaultdict(lambda: {"jobs": 0, "forwards": 0, "seconds": 0.0, "rk45": False})
    batch = cfg["sampling"]["batch_size"]
    for job in dag.jobs(cfg):
        if job.stage != "sample" or job.argv[1] == "floor":   # the floor and ceilings: real images, no network
            continue
        model = Path(job.argv[job.argv.index("--model-dir") + 1]).name
        spec = job.argv[job.argv.index("--spec") + 1]
        n = config.section(cfg, next(k for k in job.params if k.endswith("num_samples")))   # the bank's size key
        preset = model_preset(cfg, model)
        sec, measured_batch = seconds_per_forward(sampling, preset, batch)
        b = banks[preset]
        b["jobs"] += 1
        b["forwards"] += nfe(spec) * n
        b["seconds"] += nfe(spec) * n * sec
        b["rk45"] |= registry.parse(spec).nfe is None
        b["batch"] = measured_batch
    for preset, b in sorted(banks.items()):
        note = f"; RK45 at NFE {RK45_NFE} (assumed)" if b["rk45"] else ""
        rows.append({"stage": f"sample banks on the {preset} U-Net", "jobs": b["jobs"],
                     "work": f"{b['forwards']:,} sample-forwards",
                     "rate": f"{b['forwards'] / b['seconds']:,.0f} sample-forwards/s (batch {b['batch']}, eager{note})",
                     "hours": b["seconds"] / 3600})
    return rows


def render(profile: str, rows: list[dict], device: str, sources: list[str]) -> str:
    total = sum(r["hours"] for r in rows)
    lines = [f"# GPU-hours of the `{profile}` profile, projected from measured throughput", "",
             f"Measured on one **{device}** by {', '.join(f'`{s}`' for s in sources)}; written by "
             f"`bench/cost.py` (its docstring says what each rate stands for). One GPU, no data-parallel "
             f"speed-up assumed: divide a training row by the GPUs of its job for a lower bound.", "",
             "| Stage | Jobs | Work | Measured rate | GPU-hours |", "|---|---:|---|---|---:|"]
    lines += [f"| {r['stage']} | {r['jobs']} | {r['work']} | {r['rate']} | {r['hours']:,.1f} |" for r in rows]
    lines += [f"| **total** | {sum(r['jobs'] for r in rows)} | | | **{total:,.1f}** |", "",
              "Not projected: fetching data, reference statistics and the metric jobs (Inception features "
              "of each bank); they were not measured.", ""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="cifar10")
    p.add_argument("--images", required=True, help="JSON of bench/gpu_images.py")
    p.add_argument("--methods", required=True, help="JSON of bench/gpu_images_methods.py --profile PROFILE")
    p.add_argument("--sampling", required=True, help="JSON of bench/gpu_sampling_mfu.py")
    p.add_argument("--out", default=None, help="default: results/<profile>/cost.md")
    p.add_argument("--allow-smoke", action="store_true", help="accept --smoke / CPU JSONs (to test this script)")
    args = p.parse_args()
    cfg = config.load(args.profile)
    inputs = {k: json.loads(Path(getattr(args, k)).read_text()) for k in ("images", "methods", "sampling")}
    devices = {v["device"] for v in inputs.values()}
    if len(devices) != 1:
        raise SystemExit(f"the JSONs come from different devices {sorted(devices)}: measure on one card")
    device = devices.pop()
    if not args.allow_smoke and (device == "cpu" or any(v.get("smoke") for v in inputs.values())):
        raise SystemExit("a --smoke or CPU measurement projects nothing about a GPU; pass --allow-smoke to test")
    if inputs["methods"].get("profile", args.profile) != args.profile:
        raise SystemExit(f"--methods was measured for profile {inputs['methods']['profile']!r}, not {args.profile!r}")
    rows = project(cfg, inputs["images"], inputs["methods"], inputs["sampling"])
    out = Path(args.out or f"results/{args.profile}/cost.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(args.profile, rows, device, [Path(getattr(args, k)).name for k in inputs]))
    print(out.read_text())


if __name__ == "__main__":
    main()
