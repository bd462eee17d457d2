"""Write the tables, figures and report.md of a profile from its metrics.csv and sample banks."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from trilemma import config, dag, paths
from trilemma.artifacts import _atomic, load_tensors
from trilemma.data.images import is_image_profile
from trilemma.reporting import (ddgan, distillation, distillation_cost, error_split, figures, guidance, report,
                                tables)


def add_arguments(p):
    p.add_argument("--out", required=True, help="output report.md; tables/ and figures/ are written beside it")


def _write_text(path: str, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def run(args):
    cfg = config.load(args.profile)
    p, rep = cfg["profile"], cfg["report"]
    df = pd.read_csv(paths.fmt(paths.METRICS_CSV, profile=p))
    device = str(df["device"].iloc[0]) if len(df) else "unknown"
    if is_image_profile(cfg):
        return run_images(args, cfg, df, device)
    df, with_oracle = error_split.without_oracle(df), df   # the oracle's banks: only in error_split
    space, floor = tables.feature_space(df), tables.floor_row(df, cfg["sampling"]["num_samples"])
    table_text = {"ddim": tables.ddim_table(df[df["model"] == dag.TEACHER], space, floor=floor),
                  "distillation": distillation.distillation_table(df, cfg["distill"]["headline_steps"]),
                  "fast_sampling": tables.fast_sampling_table(df, rep["fast_sampling"], device, floor=floor),
                  "ddgan": ddgan.ddgan_table(df, cfg["ddgan"], device)}
    if "guidance" in dag.report_tables(cfg):
        table_text["guidance"] = guidance.guidance_table(df, cfg["guidance"])
    if "error_split" in dag.report_tables(cfg):
        table_text["error_split"] = error_split.error_split_table(with_oracle)
    for name, text in table_text.items():
        _write_text(paths.fmt(paths.TABLE, profile=p, table=name), text + "\n")
    fig = {name: paths.fmt(paths.FIGURE, profile=p, figure=name) for name in dag.report_figures(cfg)}
    for path in fig.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    g = cfg["guidance"]
    on_time_axis = ddgan.first_seed_only(df, cfg["ddgan"]["seeds"][0])
    if "w" in on_time_axis:  # the guided student at one w
        on_time_axis = on_time_axis[(on_time_axis["method"] != "guided_pd") | (on_time_axis["w"] == g["eval"]["headline_w"])]
    figures.fid_vs_time(on_time_axis, fig["fid_vs_time"], dpi=rep["dpi"], device=device,
                        ylabel=f"Fréchet distance ({space})", floor=floor)
    figures.trilemma_chart(df, rep["fast_sampling"], fig["trilemma"], dpi=rep["dpi"], device=device,
                           ylabel=f"Fréchet distance ({space})", floor=floor)
    distillation.fid_vs_steps(df, fig["fid_vs_steps"], dpi=rep["dpi"])
    distillation_cost.distillation_cost_figure(df, fig["distillation_cost"], dpi=rep["dpi"],
                                               ylabel=f"Fréchet distance ({space})")
    if "guidance_tradeoff" in fig:
        guidance.guidance_tradeoff(df, fig["guidance_tradeoff"], dpi=rep["dpi"],
                                   reference_steps=g["eval"]["reference_steps"], headline_steps=g["headline_steps"])
    if "error_split" in fig:
        error_split.error_split_figure(with_oracle, fig["error_split"], dpi=rep["dpi"])
    data, _ = load_tensors(paths.fmt(paths.DATA, profile=p, dataset=cfg["data"]["name"]))
    n = rep["scatter_points"]
    keyed = df.assign(bank=df["model"] + "/" + df["spec"]).set_index("bank")
    panels = [("real data", data["eval"][:n].numpy())]
    for bank in rep["sample_panels"]:
        x, _ = load_tensors(paths.Bank.parse(bank).path(paths.BANK, p))
        r = keyed.loc[bank]
        panels.append((f"{r['sampler']}\nNFE {int(r['nfe'])}", x["samples"][:n].numpy()))
    limit = float(data["eval"].abs().max()) * 1.15
    figures.samples_grid(panels, fig["samples"], dpi=rep["dpi"], limit=limit)
    out_dir = Path(args.out).parent
    rel = {k: os.path.relpath(v, out_dir) for k, v in fig.items()}
    deck = dag.deck.report_section(cfg, lambda f: Path(f).read_text(), lambda f: os.path.relpath(f, out_dir))  # issue 19
    _write_text(args.out, report.assemble(cfg, df, table_text, rel) + "\n".join(["", *deck]))
    print(f"wrote {args.out}, {len(table_text)} tables, {len(fig)} figures")


def run_images(args, cfg, df, device):
    """The image profiles' report: the same tables and figures, sample grids instead of scatter plots."""
    from trilemma.artifacts import load_json
    from trilemma.models.registry import build_model
    from trilemma.reporting import images

    p, rep = cfg["profile"], cfg["report"]
    space = str(df["feature_space"].iloc[0]) if len(df) else "unknown"
    table_text = {
        "ddim": tables.ddim_table(df[df["model"] == dag.TEACHER], feature_space=space, profile=p),
        "fast_sampling": tables.fast_sampling_table(
            df, rep["fast_sampling"], device, columns=tables.IMAGE_FAST_COLUMNS,
            intro=f"Ours, {p} profile: time per 100 samples measured on {device}; FID, IS and KID in "
                  f"{space}; precision/recall (Kynkäänniemi et al.) in the same features."),
        "distillation": images.distillation_table(df, cfg["distill"]["headline_steps"], space),
        "ddgan": images.ddgan_table(df, cfg["ddgan"], device, space),
        "references": images.reference_table(df, space)}
    for name, text in table_text.items():
        _write_text(paths.fmt(paths.TABLE, profile=p, table=name), text + "\n")
    fig = {name: paths.fmt(paths.FIGURE, profile=p, figure=name) for name in dag.report_figures(cfg)}
    for path in fig.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    figures.fid_vs_time(df, fig["fid_vs_time"], dpi=rep["dpi"], device=device, ylabel=f"FID ({space})")
    distillation.fid_vs_steps(df, fig["fid_vs_steps"], dpi=rep["dpi"], ylabel=f"FID ({space})")
    distillation_cost.distillation_cost_figure(df, fig["distillation_cost"], dpi=rep["dpi"], ylabel=f"FID ({space})")
    data, dmeta = load_tensors(paths.fmt(paths.DATA, profile=p, dataset=cfg["data"]["name"]))
    n = rep.get("grid_images", 64)
    keyed = df.assign(bank=df["model"] + "/" + df["spec"]).set_index("bank")
    panels = [("real data (test split)", data["eval"][:n])]
    for bank in rep["sample_panels"]:
        x, _ = load_tensors(paths.Bank.parse(bank).path(paths.BANK, p))
        r = keyed.loc[bank]
        panels.append((f"{r['sampler']}\nNFE {int(r['nfe'])}, FID {r['fd']:.3g}", x["samples"][:n]))
    images.image_grid(panels, fig["samples"], dpi=rep["dpi"])
    summary = paths.fmt(paths.FEATURE_NET_SUMMARY, profile=p)
    facts = {"feature_space": space, "reference": str(df["reference"].iloc[0]) if len(df) else "unknown",
             "params": sum(t.numel() for t in build_model(cfg["teacher"]["model"], dmeta["data_dim"]).parameters()),
             "feature_net": load_json(summary) if os.path.exists(summary) else None}
    out_dir = Path(args.out).parent
    rel = {k: os.path.relpath(v, out_dir) for k, v in fig.items()}
    teacher = df[df["model"] == dag.TEACHER]   # the DDPM teacher's findings; PD and DDGAN have their sections
    deck = dag.deck.report_section(cfg, lambda f: Path(f).read_text(), lambda f: os.path.relpath(f, out_dir))  # issue 19
    _write_text(args.out, report.assemble_images(cfg, teacher, table_text, rel, facts)
                + images.method_sections(cfg, table_text, rel, space) + "\n".join(["", *deck]))
    print(f"wrote {args.out}, {len(table_text)} tables, {len(fig)} figures")
