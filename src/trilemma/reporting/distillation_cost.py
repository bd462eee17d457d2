"""Consistency distillation beside progressive distillation, and the distillation bill (issue 18), in
``tables/distillation.md`` and ``figures/distillation_cost.png``.

- CD vs PD at equal NFE: the consistency model with Algorithm 1 (Song et al. 2023) and the PD student
  of the same step count, both from ``teacher_pd``, with their 95% intervals and the tie rule of
  :mod:`trilemma.reporting.compare`; the consistency-models paper's CIFAR-10 FIDs (its Table 2: CD, and
  PD as it reports it) in their own columns.
- The bill of every distilled model with a bank (metrics.csv's ``train_*`` columns, copied from its
  model.json by the sample stage; ``training/bill.py``): teacher evaluations counted in training, the
  student's updates, training wall time on the recorded device, for the model alone and cumulatively
  (a PD round: every round before it, from ``teacher_pd``).
- Quality at N steps against the cost of getting there: each PD student and each CD bank, its headline
  distance beside the cumulative bill; the figure plots it (distance against teacher evaluations and
  against wall time).
"""
from __future__ import annotations

import pandas as pd
from matplotlib.ticker import NullFormatter

from trilemma.dag_base import parse_student
from trilemma.reporting.compare import estimate, verdict
from trilemma.reporting.figures import SAVE, _theme, plt, sns
from trilemma.reporting.tables import _md, fmt_ci, paper_numbers

CM_PAPER = "Consistency Models (Song et al. 2023)"
DISTILLED = ("pd", "cd", "guided_pd", "guided_w")
LABELS = {"pd": "PD", "cd": "CD", "guided_pd": "guided PD"}


def _by_steps(df: pd.DataFrame, method: str) -> pd.DataFrame:
    return df[df["method"] == method].set_index("steps").sort_index()


def _cm_paper(method_prefix: str) -> dict[int, float]:
    paper = paper_numbers()
    paper = paper[(paper["paper"] == CM_PAPER) & paper["method"].str.startswith(method_prefix)
                  & (paper["metric"] == "FID")]
    return dict(zip(paper["steps"].astype(int), paper["value"]))


def cd_vs_pd_frame(df: pd.DataFrame, metrics: tuple[str, ...] = ("fd", "modes", "hq")) -> pd.DataFrame:
    """One row per CD step count: PD's student and the CD model at that NFE, CD's verdict on ``fd``."""
    pd_rows, cd_rows = _by_steps(df, "pd"), _by_steps(df, "cd")
    cd_paper, pd_paper = _cm_paper("Consistency distillation"), _cm_paper("Progressive distillation")
    rows = []
    for n in cd_rows.index:
        row = {"steps (NFE)": int(n)}
        for label, part in (("PD", pd_rows), ("CD", cd_rows)):
            for m in metrics:
                if n in part.index:
                    row[f"{label} {m}"] = fmt_ci(part.loc[n, m], part.loc[n].get(f"{m}_ci"))
        if n in pd_rows.index:
            row["CD vs PD (fd)"] = verdict(estimate(cd_rows.loc[[n]], "fd"), estimate(pd_rows.loc[[n]], "fd"))
        row["paper CD FID (CIFAR-10)"] = cd_paper.get(int(n))
        row["paper PD FID (CIFAR-10, as in CM)"] = pd_paper.get(int(n))
        rows.append(row)
    return pd.DataFrame(rows)


def cd_claim(df: pd.DataFrame) -> list[str]:
    """Which way CD vs PD went at each step count the paper reports, and whether its ordering carries over."""
    pd_rows, cd_rows, paper = _by_steps(df, "pd"), _by_steps(df, "cd"), _cm_paper("Consistency distillation")
    lines = []
    for n in sorted(set(pd_rows.index) & set(cd_rows.index) & set(paper)):
        v = verdict(estimate(cd_rows.loc[[n]], "fd"), estimate(pd_rows.loc[[n]], "fd"))
        carried = "carries over" if v == "better" else "does not carry over"
        said = {"better": "CD beats PD", "worse": "PD beats CD", "tie": "CD and PD tie (inside the intervals)"}[v]
        lines.append(f"- **{int(n)} step{'s' if n > 1 else ''}:** {said} here "
                     f"(FD: CD {fmt_ci(cd_rows.loc[n, 'fd'], cd_rows.loc[n].get('fd_ci'))}, "
                     f"PD {fmt_ci(pd_rows.loc[n, 'fd'], pd_rows.loc[n].get('fd_ci'))}); the CIFAR-10 ordering of the "
                     f"consistency-models paper (CD better) {carried}.")
    return lines + ([""] if lines else [])


def bill_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per distilled model that has a bank (its first bank's copy of the bill)."""
    rows = df[df["method"].isin(DISTILLED) & df["train_teacher_evals"].notna()]
    return rows.drop_duplicates("model").copy()


def bill_frame(df: pd.DataFrame) -> pd.DataFrame:
    rows = bill_rows(df)
    order = {m: i for i, m in enumerate(DISTILLED)}
    rows = rows.assign(o=rows["method"].map(order), s=-pd.to_numeric(rows["steps"])).sort_values(["o", "s"])
    return pd.DataFrame({
        "model": rows["model"],
        "student steps": [str(parse_student(m)[1]) if parse_student(m) else "any (Alg. 1)" for m in rows["model"]],
        "teacher evals": rows["train_teacher_evals"].astype("int64"), "updates": rows["train_updates"].astype("int64"),
        "wall s": rows["train_wall_s"], "cumulative teacher evals": rows["train_cumulative_teacher_evals"].astype("int64"),
        "cumulative updates": rows["train_cumulative_updates"].astype("int64"),
        "cumulative wall s": rows["train_cumulative_wall_s"]})


def cost_points(df: pd.DataFrame) -> pd.DataFrame:
    """PD students and CD banks: steps, headline distance with its interval, the cumulative bill."""
    rows = df[df["method"].isin(("pd", "cd")) & df["train_teacher_evals"].notna()].copy()
    rows["label"] = rows["method"].map(LABELS)
    return rows.sort_values(["method", "steps"])


def cost_frame(df: pd.DataFrame) -> pd.DataFrame:
    rows = cost_points(df)
    return pd.DataFrame({
        "method": rows["label"], "steps (NFE)": rows["steps"].astype(int),
        "fd": [fmt_ci(v, h) for v, h in zip(rows["fd"], rows.get("fd_ci", pd.Series(index=rows.index)))],
        "teacher evals to get there": rows["train_cumulative_teacher_evals"].astype("int64"),
        "updates": rows["train_cumulative_updates"].astype("int64"),
        "wall s": rows["train_cumulative_wall_s"]})


def cd_sections(df: pd.DataFrame, feature_space: str) -> list[str]:
    """The markdown the distillation table adds: CD vs PD, the bill, quality vs cost."""
    if not (df["method"] == "cd").any() and bill_rows(df).empty:
        return []
    device = bill_rows(df)["train_device"].dropna().unique()
    out = ["### Consistency distillation vs progressive distillation, same teacher", "",
           "Consistency distillation (Song et al. 2023, Algorithm 2: one teacher DDIM step between adjacent "
           "points of the discretisation, an EMA target, sampled with Algorithm 1) of `teacher_pd`, the teacher "
           "of the PD chain, against the PD student of the same step count. FD in "
           f"{feature_space}, ± = 95% interval; the verdict calls a difference inside the combined intervals a "
           "tie. The paper's CIFAR-10 FIDs (its Table 2, LPIPS distance and a Heun teacher: "
           "src/trilemma/reporting/paper_numbers.csv) for orientation only.", "", _md(cd_vs_pd_frame(df)), "",
           *cd_claim(df)]
    if not bill_rows(df).empty:
        out += ["### The distillation bill", "",
                "Teacher network evaluations spent in training (counted: one per example per teacher pass), "
                "the student's optimizer steps and the training wall time, for each distilled model alone and "
                "cumulatively (a PD round: with every round before it, from `teacher_pd`; guided rounds: with "
                "stage one). Rounds without a bank (above `distill.eval.student_max_steps`) are only in the "
                f"cumulative columns. Device: {', '.join(map(str, device)) or 'unknown'}.", "",
                _md(bill_frame(df)), "",
                "### Quality at N steps vs the cost of getting there", "",
                "Each student's headline distance beside the cumulative bill of its training "
                "(figures/distillation_cost.png plots it).", "", _md(cost_frame(df)), ""]
    return out


def distillation_cost_figure(df: pd.DataFrame, path, *, dpi: int, ylabel: str) -> None:
    """FD at N steps against the cumulative teacher evaluations (left) and wall time (right) spent in
    training, PD students and CD banks labelled with N."""
    from trilemma.reporting.figures import error_bars
    _theme()
    pts = cost_points(df)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8), sharey=True)
    for ax, x, xlabel in ((axes[0], "train_cumulative_teacher_evals", "teacher evaluations spent in training"),
                          (axes[1], "train_cumulative_wall_s", "training wall time (s)")):
        if len(pts):
            sns.scatterplot(data=pts, x=x, y="fd", hue="label", style="label", s=50, ax=ax)
            error_bars(ax, pts, x)
            for _, r in pts.iterrows():
                ax.annotate(f"{int(r['steps'])}", (r[x], r["fd"]), textcoords="offset points", xytext=(4, 3),
                            fontsize=6)
            ax.legend(title=None, fontsize=7)
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
        ax.xaxis.set_minor_formatter(NullFormatter())   # the minor ticks' labels overlap on a short decade
    fig.suptitle("Quality at N steps (labels) vs the cost of getting there", fontsize=9)
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)
