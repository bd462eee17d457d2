"""Write the tables, figures and report.md of a profile from its metrics.csv and sample banks."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from trilemma import config, dag, paths
from trilemma.artifacts import _atomic, load_tensors
from trilemma.reporting import ddgan, figures, report, tables


def add_arguments(p):
    p.add_argument("--out", required=True, help="output report.md; tables/ and figures/ are written beside it")


def _write_text(path: str, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def run(args):
    cfg = config.load(args.profile)
    p, rep = cfg["profile"], cfg["report"]
    df = pd.read_csv(paths.fmt(paths.METRICS_CSV, profile=p))
    device = str(df["device"].iloc[0]) if len(df) else "unknown"
    table_text = {"ddim": tables.ddim_table(df),
                  "fast_sampling": tables.fast_sampling_table(df, rep["fast_sampling"], device),
                  "ddgan": ddgan.ddgan_table(df, cfg["ddgan"], device)}
    for name, text in table_text.items():
        _write_text(paths.fmt(paths.TABLE, profile=p, table=name), text + "\n")
    fig = {name: paths.fmt(paths.FIGURE, profile=p, figure=name) for name in dag.FIGURES}
    for path in fig.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    figures.fid_vs_time(ddgan.first_seed_only(df, cfg["ddgan"]["seeds"][0]), fig["fid_vs_time"],
                        dpi=rep["dpi"], device=device)
    data, _ = load_tensors(paths.fmt(paths.DATA, profile=p, dataset=cfg["data"]["name"]))
    n = rep["scatter_points"]
    keyed = df.assign(bank=df["model"] + "/" + df["spec"]).set_index("bank")
    panels = [("real data", data["eval"][:n].numpy())]
    for bank in rep["sample_panels"]:
        model, spec = bank.split("/")
        x, _ = load_tensors(paths.fmt(paths.BANK, profile=p, model=model, spec=spec))
        r = keyed.loc[bank]
        panels.append((f"{r['sampler']}\nNFE {int(r['nfe'])}", x["samples"][:n].numpy()))
    limit = float(data["eval"].abs().max()) * 1.15
    figures.samples_grid(panels, fig["samples"], dpi=rep["dpi"], limit=limit)
    out_dir = Path(args.out).parent
    rel = {k: os.path.relpath(v, out_dir) for k, v in fig.items()}
    _write_text(args.out, report.assemble(cfg, df, table_text, rel))
    print(f"wrote {args.out}, {len(table_text)} tables, {len(fig)} figures")
