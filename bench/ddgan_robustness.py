"""Does the toy's DDGAN recipe (``params.yaml``'s ``ddgan`` section) hold on data it was not tuned on?
(issue 23).  Trains, in-process and through the pipeline's own code (``stages.train_gan.build_task``,
the shared loop, ``sample_ddgan`` / ``sample_gan``, ``data_units``), the Denoising Diffusion GAN at
T = 4 (Xiao, Kreis & Vahdat 2022) and the two GAN baselines of its Fig. 6 with the recipe's updates,
on a family of toy variants x training seeds, and prints one row per (variant, recipe, method):

the metric panel of ``trilemma evaluate`` on a 10k-sample bank (``evaluation.panel.point_panel``):

- ``fd``: the headline distance of the metrics issue (Frechet distance in random Fourier features at
  the data's local scale, ``evaluation/features2d.py``) with ``fd_ci``, its bootstrap 95 % half-width;
- ``modes`` (of 25 / of 8) and ``hq``, PacGAN convention (evaluation/toy.py), and ``nll`` under the true
  mixture (gauss25, ring8; the swiss roll has neither);
- ``fd_xy``: the raw-coordinate Frechet distance (the weak metric the headline replaced);

each beside the floor of a fresh draw of the data.  ``--teacher-only`` (and the full plan) trains the
toy's DDPM teacher on the swiss roll with the toy's recipe and scores its DDPM-1000 bank: the reference
for the swiss roll, which has no modes.

Recipes: ``recipe`` (params.yaml as committed: units from the data's spread), ``fixed-units`` (the
same networks trained in data coordinates, k = 1: the recipe before issue 23), ``official`` (no
Fourier encodings, uniform t, R1 0.05: the paper's / official code's settings, default grid only) and
candidates (``--recipe NAME --set train.lr_g=3e-3 ...``: the ddgan section with overrides).  Methods:
``ddgan`` (T = ``coverage_steps``), ``ddgan_t<T>`` (the T ablation), ``gan``, ``wgan_gp``.

  PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python bench/ddgan_robustness.py --out results/robustness.jsonl

Rows already in ``--out`` are not re-run (the bench resumes); ``--summary`` prints the tables only.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from trilemma import config
from trilemma.data.toy2d import generate
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.evaluation.features2d import local_scale, toy_features
from trilemma.evaluation.panel import point_panel
from trilemma.models.gan import OneShot
from trilemma.sampling.ddgan import sample_ddgan
from trilemma.sampling.gan import sample_gan
from trilemma.schema.models import Data, Ddgan, Evaluation, Sampling, Teacher
from trilemma.stages.train_gan import build_task, data_units, ddgan_schedule
from trilemma.training.loop import LoopConfig, train

GRID = [(sp, sd) for sp in (0.5, 1.0, 2.0) for sd in (0.03, 0.1)]   # std / spacing from 0.015 to 0.2
VARIANTS = {f"grid s{sp:g} std{sd:g}": ("gauss25", {"spacing": sp, "std": sd}) for sp, sd in GRID}
VARIANTS.update({"default grid s1 std0.05": ("gauss25", {"spacing": 1.0, "std": 0.05}),
                 "ring8 r2 std0.05": ("ring8", {"radius": 2.0, "std": 0.05}),
                 "swissroll": ("swissroll", {"noise": 0.05, "scale": 0.2})})
OFFICIAL = {"model": {"d_fourier": 0, "g_fourier": 0}, "train": {"t0_share": None, "r1_gamma": 0.05,
                                                                  "r1_width_ref": None}}
CANDIDATES: dict[str, dict] = {}   # --recipe NAME --set key=value: a candidate's overrides of the ddgan section
NUM_SAMPLES = 10_000


def plan(methods: list[str], seeds: list[int]) -> list[tuple[str, str, str, int]]:
    """(variant, recipe, method, seed): every method with the recipe everywhere; DDGAN in fixed units
    where the units differ from 1; the official settings on the default grid."""
    rows = [(v, "recipe", m, s) for v in VARIANTS for m in methods for s in seeds]
    rows += [(v, "fixed-units", "ddgan", s) for v in VARIANTS if not v.startswith("default") for s in seeds]
    rows += [("default grid s1 std0.05", "official", "ddgan", s) for s in seeds]
    return rows


def dataset(variant: str, base: dict, seed: int = 0):
    """The variant's data artifact (tensors, meta), as ``fetch_data`` makes it from config seed ``seed``."""
    name, params = VARIANTS[variant]
    data_cfg = copy.deepcopy(base)
    data_cfg["name"], data_cfg[name] = name, params
    return generate(Data.model_validate(data_cfg), seed)


def scores(x: torch.Tensor, tensors: dict, meta: dict, cfg: dict) -> dict:
    """The pipeline's metric panel of one bank (``evaluation.panel.point_panel``, as ``trilemma evaluate``
    computes it): the headline ``fd`` in random Fourier features at the data's local scale with its
    bootstrap 95 % half-width ``fd_ci``, ``fd_xy``, and on mixtures modes, hq and the mixture NLL."""
    ev = Evaluation.model_validate(cfg["evaluation"])
    features = toy_features(ev.features, meta["dataset"], meta["params"])
    row = point_panel(x, tensors["eval"], features=features, means=tensors["mode_means"],
                      mode_labels=tensors["mode_labels"], std=meta.get("std"), ev=ev, seed=cfg["seed"])
    keep = ["fd", "fd_ci", "fd_xy", "precision", "recall", "num_modes"]
    keep += ["modes", "hq", "nll"] if row["num_modes"] else []
    return {k: row[k] for k in keep}


def teacher_bank(variant: str, cfg: dict) -> dict:
    """The toy's DDPM teacher trained on the variant with the toy's recipe (``teacher`` section, the
    training seed of the config: ``stages.train``'s code path), published and loaded back as the pipeline
    does (``artifacts.save_model`` / ``load_model``), and its DDPM-1000 bank (``ddpm-beta-s1000``, the
    sample stage's seeded batches): the reference a DDGAN is compared with on data without modes."""
    from trilemma.artifacts import load_model, save_model
    from trilemma.models.registry import build_model
    from trilemma.sampling.common import CountNFE
    from trilemma.stages.sample import draw, make_sampler, parse_spec
    from trilemma.training.tasks.ddpm import DDPMTask
    section = Teacher.model_validate(cfg["teacher"])
    model, schedule = section.model.plain(), section.schedule.plain()
    tensors, meta = dataset(variant, cfg["data"])
    torch.manual_seed(cfg["seed"])
    net = build_model(model, meta["data_dim"])
    task = DDPMTask(net, DiscreteSchedule.from_config(schedule), tensors["train"], section.train)
    c0 = time.process_time()
    with tempfile.TemporaryDirectory() as d:
        final = train(task, LoopConfig.from_config(section.train), seed=cfg["seed"], resume_dir=f"{d}/resume",
                      fingerprint="bench", progress=False)
        cpu = time.process_time() - c0
        save_model(f"{d}/model.safetensors", final["net"], {
            "name": "teacher_ddpm", "method": "ddpm", "model": model, "schedule": schedule,
            "parameterization": "eps", "data_dim": meta["data_dim"], "dataset": meta["dataset"]})
        denoiser, info = load_model(d)
    counter = CountNFE(denoiser)
    spec = parse_spec("ddpm-beta-s1000")
    n, bs = NUM_SAMPLES, cfg["sampling"]["batch_size"]
    with torch.no_grad():
        chunks, _ = draw(make_sampler(spec, counter, Sampling.model_validate(cfg["sampling"]), info), [counter], range(0, n, bs), n, bs, (2,),
                         cfg["seed"], torch.device("cpu"), lambda lo, hi: None)
    x = torch.cat(chunks)
    return {"variant": variant, "recipe": "teacher", "method": "ddpm-1000", "seed": cfg["seed"], "units": 1.0,
            "data_scale": meta["scale"], "train_cpu_s": round(cpu, 1), "samples": x, **scores(x, tensors, meta, cfg)}


def floor(variant: str, cfg: dict) -> dict:
    """The metrics of a fresh draw of the true data of bank size (another config seed's evaluation set)."""
    base = cfg["data"]
    tensors, meta = dataset(variant, base)
    return scores(dataset(variant, base, seed=7)[0]["eval"][:NUM_SAMPLES], tensors, meta, cfg)


def section_for(recipe: str, base: dict) -> dict:
    if recipe == "official":
        return config.deep_merge(base, OFFICIAL)
    return config.deep_merge(base, CANDIDATES.get(recipe, {}))


def overrides(pairs: list[str]) -> dict:
    """``a.b=value`` pairs (values parsed as YAML) as a nested dict for ``config.deep_merge``."""
    import yaml
    out: dict = {}
    for kv in pairs:
        key, value = kv.split("=", 1)
        *head, last = key.split(".")
        node = out
        for h in head:
            node = node.setdefault(h, {})
        node[last] = yaml.safe_load(value)
    return out


def typed(section: dict, r1: float | None = None) -> Ddgan:
    """The ddgan section as the pipeline's code reads it (validated), with R1 weight ``r1`` where given
    (:func:`r1_gamma`) and without the candidate key ``train.r1_width_ref`` (not a key of the config)."""
    train = {k: v for k, v in section["train"].items() if k != "r1_width_ref"}
    if r1 is not None:
        train["r1_gamma"] = r1
    return Ddgan.model_validate({**section, "train": train})


def r1_gamma(section: dict, meta: dict, units: float) -> float:
    """The R1 weight of a run: ``train.r1_gamma``, or with the candidate key ``train.r1_width_ref`` (not a
    key of the pipeline's config: measured here and not adopted) ``r1_gamma`` x (w / r1_width_ref)^2,
    w = k x the data's local scale (``evaluation.features2d.local_scale``: the mode std), i.e. gamma
    tied to the square of the width D must resolve (a D that separates modes of width w has gradients
    ~ 1 / w, so (gamma / 2) E||grad D||^2 is then the same penalty at every width)."""
    gamma, ref = section["train"]["r1_gamma"], section["train"].get("r1_width_ref")
    if not ref:
        return gamma
    return gamma * (units * local_scale(meta["dataset"], meta["params"]) / ref) ** 2


def chain_steps(method: str, section: dict) -> int:
    """T of a DDGAN method: ``ddgan`` is the recipe's ``coverage_steps``, ``ddgan_t<T>`` the T ablation's
    T (``ddgan.steps``); 1 for the one-shot baselines."""
    if method == "ddgan":
        return section["coverage_steps"]
    return int(method.removeprefix("ddgan_t")) if method.startswith("ddgan_t") else 1


def run_one(variant, recipe, method, seed, cfg) -> dict:
    section = section_for(recipe, cfg["ddgan"])
    tensors, meta = dataset(variant, cfg["data"])
    units = 1.0 if recipe == "fixed-units" else data_units(typed(section), meta)
    steps = chain_steps(method, section)
    torch.manual_seed(seed)
    r1 = r1_gamma(section, meta, units)
    ddgan = typed(section, r1)
    kind = "ddgan" if method.startswith("ddgan") else method
    task, _ = build_task(kind, steps, ddgan, tensors["train"], meta["data_dim"], units)
    c0 = time.process_time()
    with tempfile.TemporaryDirectory() as d:
        final = train(task, LoopConfig.from_config(ddgan.train), seed=seed, resume_dir=d,
                      fingerprint="bench", progress=False)
    cpu = time.process_time() - c0
    G = task.modules["G"]
    G.load_state_dict(final["G"])
    G.eval()
    g = torch.Generator().manual_seed(1234)
    if method.startswith("ddgan"):
        den = Denoiser(G, DiscreteSchedule.from_config(ddgan_schedule(ddgan, steps)), "x")
        x = sample_ddgan(den, torch.randn((NUM_SAMPLES, 2), generator=g), latent_dim=G.nz, generator=g, units=units)
    else:
        x = sample_gan(OneShot(G), NUM_SAMPLES, latent_dim=G.nz, generator=g, units=units)
    return {"variant": variant, "recipe": recipe, "method": method, "seed": seed, "units": units, "r1_gamma": r1,
            "set": CANDIDATES.get(recipe, {}),
            "data_scale": meta["scale"], "train_cpu_s": round(cpu, 1), **scores(x, tensors, meta, cfg)}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def commit() -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return sha + (" (+ uncommitted changes)" if dirty else "")


def fmt_seeds(rows, key, spec):
    return "/".join(("-" if r.get(key) is None else format(r[key], spec)) for r in rows)


def mean_std(values):
    t = torch.tensor(values, dtype=torch.float64)
    return f"{t.mean():.3g} ± {t.std(unbiased=False):.2g}" if len(values) else "-"


def passes(r) -> bool:
    """The issue's target for one run: >= 24 of 25 modes (all 8 on the ring) and hq >= 0.80."""
    need = r["num_modes"] - 1 if r["num_modes"] == 25 else r["num_modes"]
    return r["modes"] >= need and r["hq"] >= 0.80


def fmt_fd(rows) -> str:
    """The headline distance per seed, each ± its bootstrap 95 % half-width (as metrics.csv reports it)."""
    if any(r.get("fd") is None for r in rows):
        return "-"
    return " / ".join(f"{r['fd']:.2g} ± {r['fd_ci']:.1g}" for r in rows)


def summary(results: list[dict], floors: dict) -> str:
    lines = ["| variant | recipe | method | units k | modes by seed | hq by seed | pass | fd by seed (± 95 % bootstrap) "
             "| fd (mean ± sd over seeds) | fd_xy (mean ± sd) | nll (mean ± sd) | train CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list] = {}
    for r in results:
        groups.setdefault((r["variant"], r["recipe"], r["method"]), []).append(r)
    for variant, fl in floors.items():
        mix = bool(fl.get("num_modes"))
        lines.append(f"| {variant} | floor (fresh draw) | data | - | {fl['modes'] if mix else '-'} | "
                     f"{format(fl['hq'], '.3f') if mix else '-'} | - | {fmt_fd([fl])} | - | {fl['fd_xy']:.2g} | "
                     f"{format(fl['nll'], '.3f') if mix else '-'} | - |")
        for (v, recipe, method), rs in groups.items():
            if v != variant:
                continue
            rs = sorted(rs, key=lambda r: r["seed"])
            mixture = bool(rs[0].get("num_modes", "hq" in rs[0]))
            ok = f"{sum(passes(r) for r in rs)}/{len(rs)}" if mixture else "-"
            has_fd = all(r.get("fd") is not None for r in rs)
            lines.append(f"| {variant} | {recipe} | {method} | {rs[0]['units']:.3g} | "
                         f"{fmt_seeds(rs, 'modes', 'd') if mixture else '-'} | "
                         f"{fmt_seeds(rs, 'hq', '.2f') if mixture else '-'} | {ok} | {fmt_fd(rs)} | "
                         f"{mean_std([r['fd'] for r in rs]) if has_fd else '-'} | "
                         f"{mean_std([r['fd_xy'] for r in rs])} | "
                         f"{mean_std([r['nll'] for r in rs]) if mixture else '-'} | "
                         f"{mean_std([r['train_cpu_s'] for r in rs])} |")
    return "\n".join(lines + ["", pass_counts(results)])


def pass_counts(results: list[dict]) -> str:
    """The issue's targets over (variant, seed) runs: the 6 grids other than the default, and the ring."""
    lines = ["| recipe | method | grid runs passing (of 6 grids x seeds) | ring runs with all 8 modes, hq >= 0.80 |",
             "|---|---|---|---|"]
    keys = sorted({(r["recipe"], r["method"]) for r in results})
    for recipe, method in keys:
        rs = [r for r in results if (r["recipe"], r["method"]) == (recipe, method)]
        grid = [passes(r) for r in rs if r["variant"].startswith("grid")]
        ring = [passes(r) for r in rs if r["variant"].startswith("ring")]
        if not grid and not ring:
            continue
        lines.append(f"| {recipe} | {method} | {sum(grid)}/{len(grid)} | {sum(ring)}/{len(ring)} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/bench/ddgan_robustness.jsonl")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: ddgan.seeds")
    p.add_argument("--methods", nargs="+", default=["ddgan", "gan", "wgan_gp"])
    p.add_argument("--only", default="", help="run only variants whose name contains this")
    p.add_argument("--summary", action="store_true", help="print the tables of --out, train nothing")
    p.add_argument("--recipe", default=None, help="run only this candidate recipe: the ddgan section with --set")
    p.add_argument("--set", nargs="*", default=[], help="the candidate's overrides, e.g. train.lr_g=3e-3")
    p.add_argument("--skip", default="", help="comma-separated variants (substrings) not to run")
    p.add_argument("--recipes", default="", help="comma-separated recipes to run (default: all of the plan)")
    p.add_argument("--teacher-only", action="store_true", help="only the swiss roll's DDPM teacher and its bank")
    a = p.parse_args()
    if a.recipe:
        CANDIDATES[a.recipe] = overrides(a.set)
    torch.set_num_threads(1)
    cfg = config.load(None)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(l) for l in out.read_text().splitlines()] if out.exists() else []
    key = lambda r: (r["variant"], r["recipe"], r["method"], r["seed"])   # noqa: E731
    have = {key(r) for r in done}
    print(f"CPU: {cpu_model()}; commit {commit()}; torch {torch.__version__}; 1 thread", flush=True)
    w0 = time.perf_counter()
    if not a.summary:
        rows = plan(a.methods, a.seeds or cfg["ddgan"]["seeds"])
        if a.recipe:
            rows = [(v, a.recipe, m, s) for v, r, m, s in rows if r == "recipe"]
        skip = [x for x in a.skip.split(",") if x]
        if a.teacher_only:
            rows = []
        for row in rows:
            if row in have or a.only not in row[0] or any(x in row[0] for x in skip) or \
                    (a.recipes and row[1] not in a.recipes.split(",")):
                continue
            r = run_one(*row, cfg)
            print(json.dumps(r), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(r) + "\n")
            done.append(r)
        wanted = a.teacher_only or (any(r[0] == "swissroll" for r in rows) and a.only in "swissroll"
                                    and "swissroll" not in skip and not a.recipe and not a.recipes)
        if wanted and not any(r["recipe"] == "teacher" for r in done):
            r = teacher_bank("swissroll", cfg)
            r.pop("samples")
            print(json.dumps(r), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(r) + "\n")
            done.append(r)
    print(f"wall {time.perf_counter() - w0:.0f} s this call; "
          f"training CPU {sum(r['train_cpu_s'] for r in done):.0f} s over {len(done)} runs")
    print(summary(done, {v: floor(v, cfg) for v in VARIANTS if any(r["variant"] == v for r in done)}))


if __name__ == "__main__":
    main()
