"""Progressive distillation in the report (Salimans & Ho 2022): ``tables/distillation.md`` (students
vs DDIM on the same teacher at every step count, the paper's CIFAR-10 FIDs of Table 2 beside, in
their own column; then consistency distillation and the distillation bill, ``distillation_cost.py``)
and ``figures/fid_vs_steps.png`` (Figure 4 layout: FD against steps, log2 axis; the CD banks too)."""
from __future__ import annotations

import pandas as pd

from trilemma.reporting.distillation_cost import cd_sections
from trilemma.reporting.figures import SAVE, _theme, plt, sns
from trilemma.reporting.tables import _md, feature_space, floor_row, fmt_ci, paper_numbers, with_ci

PD_TEACHER = "teacher_pd"
METRICS = ["nfe", "fd", "precision", "recall", "modes", "hq"]
CI_METRICS = ["fd", "precision", "recall", "hq"]


def cd_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The consistency model's banks (issue 18), indexed by steps."""
    return df[df["method"] == "cd"].set_index("steps").sort_index()


def chain_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(students, DDIM baselines on the distillation teacher), each indexed by steps."""
    students = df[df["method"] == "pd"].set_index("steps").sort_index()
    ddim = df[(df["method"] == "ddim") & (df["model"] == PD_TEACHER)].set_index("steps").sort_index()
    return students, ddim


def distillation_frame(df: pd.DataFrame, metrics: list[str] = METRICS) -> pd.DataFrame:
    students, ddim = (with_ci(part, CI_METRICS) for part in chain_rows(df))
    paper = paper_numbers()
    paper = paper[paper["paper"].str.startswith("Progressive Distillation") & (paper["table"] == "Table 2")
                  & (paper["method"] == "Progressive Distillation") & (paper["metric"] == "FID")]
    paper_fid = dict(zip(paper["steps"].astype(int), paper["value"]))
    steps = sorted(set(students.index) | set(ddim.index))
    rows = []
    for n in steps:
        row = {"steps": int(n), "round": _round(students, n)}
        for label, part in (("PD", students), ("DDIM", ddim)):
            for m in metrics:
                row[f"{label} {m}"] = part.loc[n, m] if n in part.index else None
        row["paper PD FID (CIFAR-10)"] = paper_fid.get(int(n))
        rows.append(row)
    floor = with_ci(floor_row(df, students["num_samples"].iloc[0]) if len(students) else df.iloc[:0], CI_METRICS)
    for _, f in floor.iterrows():
        rows.append({"steps": "floor: fresh draw", **{f"PD {m}": f[m] for m in metrics if m != "nfe"}})
    return pd.DataFrame(rows)


def _round(students: pd.DataFrame, n) -> object:
    return int(students.loc[n, "round"]) if n in students.index and pd.notna(students.loc[n, "round"]) else None


def distillation_table(df: pd.DataFrame, headline: int) -> str:
    students, ddim = chain_rows(df)
    lines = ["Progressive distillation (Salimans & Ho 2022, Algorithm 2): the N-step student of each round "
             "with its own N-step DDIM sampler (PD) against DDIM with N steps on the same distillation teacher "
             f"(DDIM; only up to the configured `distill.eval.baseline_max_steps`). FD = Fréchet distance in "
             f"{feature_space(df)}; ± = 95% bootstrap half-width; the last row is a fresh draw of the data, the "
             "floor. The paper's CIFAR-10 FIDs (Table 2; source: "
             "src/trilemma/reporting/paper_numbers.csv, after methods.md §5.4) are printed in their own column "
             "for orientation only.", "", _md(distillation_frame(df)), ""]
    if headline in students.index:
        s = students.loc[headline]
        line = (f"**Headline, {headline} steps:** student FD {fmt_ci(s['fd'], s.get('fd_ci'))}, {int(s['modes'])} of "
                f"{int(s['num_modes'])} modes, high-quality share {s['hq']:.3f}")
        if headline in ddim.index:
            d = ddim.loc[headline]
            line += (f"; DDIM on the same teacher FD {fmt_ci(d['fd'], d.get('fd_ci'))} "
                     f"(student/DDIM = {s['fd'] / d['fd']:.3f})")
        lines += [line + ".", ""]
    return "\n".join(lines + cd_sections(df, feature_space(df)))


def fid_vs_steps(df: pd.DataFrame, path, *, dpi: int, ylabel: str | None = None) -> None:
    """FD against sampling steps on a log2 axis: distilled vs DDIM on the same teacher (Fig. 4), with
    the 95% intervals as error bars and the floor (a fresh draw of the data) as a horizontal line."""
    from trilemma.reporting.figures import error_bars, floor_line
    _theme()
    students, ddim = chain_rows(df)
    data = pd.concat([students.reset_index().assign(curve="distilled (PD student)"),
                      ddim.reset_index().assign(curve="DDIM, undistilled teacher"),
                      cd_rows(df).reset_index().assign(curve="consistency distillation (CD, Alg. 1)")])
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    if len(data):
        sns.lineplot(data=data, x="steps", y="fd", hue="curve", style="curve", markers=True, dashes=False,
                     errorbar=None, sort=True, ax=ax)
        error_bars(ax, data, "steps")
        floor_line(ax, floor_row(df, students["num_samples"].iloc[0]) if len(students) else df.iloc[:0])
        sns.move_legend(ax, "upper right", title=None, fontsize=7)
    ylabel = ylabel or f"Fréchet distance ({feature_space(df)})"
    ax.set_xscale("log", base=2)
    ax.set(yscale="log", xlabel="sampling steps", ylabel=ylabel,
           title="Distilled vs undistilled DDIM, same teacher (PD Fig. 4 layout)")
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)
