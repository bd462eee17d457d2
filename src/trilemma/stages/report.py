"""Write the tables, figures and report.md of a profile from its metrics.csv and sample banks.  One
stage for every profile: the modality (:mod:`trilemma.modality`) gives the report's layout (its
tables' metric columns, its figures, scatter plots of points or mosaics of images, and report.md's
setup text); the rest is the same."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from trilemma import config, dag, modality, paths
from trilemma.artifacts import _atomic, load_tensors


def add_arguments(p):
    p.add_argument("--out", required=True, help="output report.md; tables/ and figures/ are written beside it")


def _write_text(path: str, text: str) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def run(args):
    cfg = config.load_typed(args.profile)
    plain, p, rep = cfg.plain(), cfg.profile, cfg.report   # the DAG reads the plain values
    df = pd.read_csv(paths.fmt(paths.METRICS_CSV, profile=p))
    device = str(df["device"].iloc[0]) if len(df) else "unknown"
    layout = modality.of(cfg).report(cfg, df, device)
    table_text = layout.tables()
    for name, text in table_text.items():
        _write_text(paths.fmt(paths.TABLE, profile=p, table=name), text + "\n")
    fig = {name: paths.fmt(paths.FIGURE, profile=p, figure=name) for name in dag.report_figures(plain)}
    for path in fig.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    layout.figures(fig)
    data, dmeta = load_tensors(paths.fmt(paths.DATA, profile=p, dataset=cfg.data.name))
    keyed = layout.df.assign(bank=layout.df["model"] + "/" + layout.df["spec"]).set_index("bank")
    panels = [(layout.real_title, data["eval"][:layout.panel_size])]
    for bank in rep.sample_panels:
        x, _ = load_tensors(paths.Bank.parse(bank).path(paths.BANK, p))
        panels.append((layout.panel_title(keyed.loc[bank]), x["samples"][:layout.panel_size]))
    layout.samples(panels, fig["samples"], data["eval"])
    out_dir = Path(args.out).parent
    rel = {k: os.path.relpath(v, out_dir) for k, v in fig.items()}
    deck = dag.deck.report_section(plain, lambda f: Path(f).read_text(), lambda f: os.path.relpath(f, out_dir))  # issue 19
    _write_text(args.out, layout.assemble(table_text, rel, dmeta) + "\n".join(["", *deck]))
    print(f"wrote {args.out}, {len(table_text)} tables, {len(fig)} figures")
