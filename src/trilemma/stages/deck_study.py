"""One study of issue 19 (``--study``), a table and a figure:

  inversion      DDIM inversion of held-out data: reconstruction error against steps (DDIM Table 2), the
                 DDPM teacher, the exact denoiser, and the distilled students on their own grids
  consistency    one batch of x_T decoded at several step counts, distance to the most-steps decode (Fig. 5)
  interpolation  slerp and linear paths between x_T pairs, decoded (Fig. 6), and their norms
  denoising      DDGAN's true denoising distribution on the toy mixture vs the best Gaussian and the DDGAN
                 generators (DDGAN Sec. 3, Fig. 2)

Settings come from the ``deck`` section of the configuration; the models are read from ``--models``.
Each study imports only its own modules (its ``deck:<study>`` entries in ``dag_base.ENTRIES``: a job's code
dependencies are their import closure).  Points and
images take the same path: a sample is one row of a batch, whatever its shape (``_held_out`` scales an
image split to [-1, 1]); only the figures differ (``reporting/deck.py`` draws images as grids).
"""
from __future__ import annotations

from pathlib import Path

import torch

from trilemma import config, dag, dag_deck
from trilemma.artifacts import _atomic, load_model, load_tensors
from trilemma.reporting import deck as show

STUDIES = ("inversion", "consistency", "interpolation", "denoising")


def add_arguments(p):
    p.add_argument("--study", required=True, choices=STUDIES)
    p.add_argument("--data", required=True, help="the dataset artifact (held-out points: its eval split)")
    p.add_argument("--models", required=True, help="the directory holding the model directories")
    p.add_argument("--table", required=True, help="output markdown table")
    p.add_argument("--figure", required=True, help="output figure (.png)")


def run(args):
    cfg = config.load_typed(args.profile)
    torch.set_num_threads(cfg.timing.threads)
    data, meta = load_tensors(args.data)
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    text = globals()[args.study](cfg, data, meta, Path(args.models), args.figure)
    _atomic(args.table, lambda tmp: Path(tmp).write_text(text + "\n"))
    print(f"wrote {args.table} and {args.figure}")


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _held_out(data, meta, n: int) -> torch.Tensor:
    """The first ``n`` samples of the eval split as the models see them (images: uint8 -> [-1, 1])."""
    x = data["eval"][:n]
    if meta.get("image"):
        from trilemma.data.images import to_float
        x = to_float(x)
    return x.to(_device())


def _generator(cfg, study: str) -> torch.Generator:
    return torch.Generator().manual_seed(cfg.seed * 1_000_003 + STUDIES.index(study))


def _modes(data, meta):
    """The mode means of a mixture (None: the swiss roll has no modes)."""
    return data["mode_means"] if "mode_means" in data and meta["dataset"] != "swissroll" else None


def _teacher(models: Path):
    return _load(models / dag.TEACHER)


def _load(model_dir: Path):
    return load_model(model_dir)[0].to(_device())


def inversion(cfg, data, meta, models: Path, figure: str) -> str:
    from trilemma.deck import ddim_map
    c = cfg.deck.inversion
    x_0 = _held_out(data, meta, c.num_points)
    teacher = _teacher(models)
    rows = [(dag.TEACHER, teacher, c.steps)]
    oracle = ddim_map.oracle_of(data, meta, teacher.schedule)
    if oracle is not None:
        rows.append(("exact denoiser (oracle)", oracle, c.steps))
    means = _modes(data, meta)
    table = ddim_map.inversion_table(rows, x_0, means)
    students = dag_deck.inversion_students(cfg.plain())
    pd_teacher = _load(models / dag.PD_TEACHER) if students else None
    chain = ddim_map.inversion_table([(dag.student(n), _load(models / dag.student(n)), [n]) for n in students]
                                     + ([(f"{dag.PD_TEACHER} (DDIM)", pd_teacher, students)] if students else []), x_0, means)
    first = min(c.steps)
    _, recon = ddim_map.reconstruct_ddim(teacher, x_0, ddim_map.grid(teacher, first))
    show.inversion_figure(table, chain, _held_out(data, meta, len(data["eval"])).cpu(), recon.cpu(), figure,
                          dpi=cfg.report.dpi, steps=first)
    return show.inversion_table(table, chain, x_0.shape[0])


def consistency(cfg, data, meta, models: Path, figure: str) -> str:
    from trilemma.deck import ddim_map
    c = cfg.deck.consistency
    x_T = torch.randn((c.num_points, *data["eval"].shape[1:]), generator=_generator(cfg, "consistency"))
    table, decodes = ddim_map.consistency(_teacher(models), x_T.to(_device()), c.steps, _modes(data, meta))
    show.consistency_figure(_held_out(data, meta, len(data["eval"])).cpu(), {s: x.cpu() for s, x in decodes.items()},
                            figure, dpi=cfg.report.dpi, points=c.figure_points)
    return show.consistency_table(table, c.num_points)


def interpolation(cfg, data, meta, models: Path, figure: str) -> str:
    from trilemma.deck import ddim_map
    c = cfg.deck.interpolation
    z = torch.randn((2, c.pairs, *data["eval"].shape[1:]), generator=_generator(cfg, "interpolation")).to(_device())
    paths = {k: (l.cpu(), x.cpu()) for k, (l, x) in ddim_map.interpolation(_teacher(models), z[0], z[1], c.points,
                                                                          c.steps).items()}
    norms = ddim_map.norm_profile(paths)
    show.interpolation_figure(_held_out(data, meta, len(data["eval"])).cpu(), paths, norms, figure,
                              dpi=cfg.report.dpi)
    return show.interpolation_table(norms, c.pairs, c.steps, z[0, 0].numel())


def denoising(cfg, data, meta, models: Path, figure: str) -> str:
    from trilemma.deck import denoising as exact
    from trilemma.diffusion.oracle import GaussianMixture
    from trilemma.evaluation.features2d import toy_features
    from trilemma.sampling.ddgan import ChainTable
    c = cfg.deck.denoising
    mixture = GaussianMixture.from_data(data, meta)
    phi = toy_features(cfg.evaluation.features, meta["dataset"], meta["params"])
    generators = dag_deck.denoising_generators(cfg.plain())
    teacher_net = load_model(models / dag.TEACHER)[0]
    rows, panels = [], []
    for T in c.steps:
        schedule = exact.ddgan_schedule_config(cfg.ddgan.schedule.plain(), T)
        oracle = exact.exact_chain(mixture, schedule)
        gens = []
        for name in generators.get(T, []):
            den, info = load_model(models / name)
            if info["schedule"] != schedule:
                raise config.ConfigError(f"{name} was trained on {info['schedule']}, not {schedule}: re-train it")
            gens.append((den, ChainTable(den.schedule), info["model"]["nz"]))
        teacher = (teacher_net, ChainTable(oracle.schedule))
        rows.append(exact.distances(oracle, gens, phi, c.num_points, c.num_samples, cfg.seed, teacher))
        g = _generator(cfg, "denoising")   # the same x_0 and noise at every T: x_t at each T's first step
        for j, x in enumerate(exact.step_points_at(oracle, 0, c.figure_points, g)):
            panels.append({"T": T, "draws": exact.draws(oracle, gens[:1], x, 0, c.num_samples, g, teacher),
                           "title": f"T = {T}, x_t #{j + 1}"})
    import pandas as pd
    rows = pd.concat(rows, ignore_index=True)
    show.denoising_figure(panels, figure, dpi=cfg.report.dpi)
    return show.denoising_table(exact.summary(rows), rows, phi.name, c.num_samples,
                                seeds=len(next(iter(generators.values()), [])))
