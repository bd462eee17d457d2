"""Guidance in the report: ``tables/guidance.md`` and ``figures/guidance_tradeoff.png``.

- The trade-off across w (Ho & Salimans 2022, Table 1 and Figure 4; Dhariwal & Nichol 2021, Table 4):
  the CFG teacher at its reference step count, the headline guided student and classifier guidance
  (its scale s in the ``w`` column), with FD to the data, precision, recall and class consistency.
- w x steps (Meng et al. 2023, Table 1 layout): the CFG teacher with DDIM at 2 NFE per step against
  the guided student at 1 NFE per step, deterministic and stochastic, as the Frechet distance to the
  CFG teacher's reference samples at the same w (``fd_to_teacher``) and class consistency.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from trilemma.reporting.figures import SAVE, _theme, plt, sns
from trilemma.reporting.tables import _md, feature_space, floor_row, with_ci

if TYPE_CHECKING:
    from trilemma.schema.models import Guidance

METHODS = ("cfg", "classifier_guidance", "guided_pd")


def guided_rows(df: pd.DataFrame) -> pd.DataFrame:
    out = df[df["method"].isin(METHODS)].copy()
    out["stochastic"] = out["stochastic"].astype(str).str.lower() == "true"
    out["curve"] = out.apply(curve, axis=1)
    return out


def curve(row) -> str:
    if row["method"] == "cfg":
        return "CFG teacher (DDIM, 2 NFE/step)"
    if row["method"] == "classifier_guidance":
        return "classifier guidance (DDIM, scale s)"
    return "guided student (" + ("stochastic" if row["stochastic"] else "DDIM") + ", 1 NFE/step)"


def tradeoff_frame(df: pd.DataFrame, reference_steps: int, headline_steps: int) -> pd.DataFrame:
    g = guided_rows(df)
    keep = (((g["method"] == "cfg") & (g["steps"] == reference_steps))
            | ((g["method"] == "guided_pd") & (g["steps"] == headline_steps) & ~g["stochastic"])
            | (g["method"] == "classifier_guidance"))
    cols = {"curve": "sampler", "w": "w (or s)", "steps": "steps", "nfe": "NFE", "fd": "FD (data)",
            "precision": "precision", "recall": "recall", "class_consistency": "class consistency",
            "hq": "HQ share", "fd_to_teacher": "FD to teacher", "fd_to_target": "FD to exact target"}
    rows = g[keep].sort_values(["method", "w"])
    floor = floor_row(df, rows["num_samples"].iloc[0]) if len(rows) else df.iloc[:0]
    rows = pd.concat([rows, floor.assign(curve="fresh draw of the data (floor)")])
    cols = {k: v for k, v in cols.items() if k in rows}
    return with_ci(rows, ["fd", "precision", "recall", "class_consistency", "hq"])[list(cols)].rename(columns=cols)


def grid_frame(df: pd.DataFrame, value: str, grid_w: list[float]) -> pd.DataFrame:
    """Rows (w, sampler), columns steps (NFE in the sampler label's per-step cost)."""
    g = guided_rows(df)
    g = g[g["w"].isin(grid_w) & (g["method"] != "classifier_guidance")]
    grid = g.pivot_table(index=["w", "curve"], columns="steps", values=value, aggfunc="first")
    grid.columns = [f"{int(c)} steps" for c in grid.columns]
    return grid.reset_index().rename(columns={"curve": "sampler"})


def guidance_table(df: pd.DataFrame, g: Guidance) -> str:
    e, ref, head = g.eval, g.eval.reference_steps, g.headline_steps
    lines = [f"Guidance on the toy (labels = gauss25 grid rows; {e.num_samples} samples per bank, labels "
             "balanced). Class consistency = share of samples within 3 std of a mode of the requested row. "
             f"FD = Fréchet distance in {feature_space(df)}, ± = 95% bootstrap half-width; the floor row is a "
             f"fresh draw of the data with its true labels. FD to exact target = Fréchet distance (same features) "
             "to a draw of the distribution the guidance formula aims at, p(x | y)^(1+w) p(x)^(-w) for CFG and "
             "its students, p(x | y)^s p(x)^(1-s) for classifier guidance, normalised on a grid from the true "
             "mixture (evaluation/guided_target.py). "
             f"FD to teacher = Fréchet distance (same features) to the CFG teacher's {ref}-step DDIM samples ({2 * ref} NFE) "
             "at the same w.", "",
             f"**Trade-off across w: CFG teacher at {ref} steps, guided student at {head} steps, classifier "
             "guidance (scale s in the w column)**", "", _md(tradeoff_frame(df, ref, head)), "",
             "**FD to the CFG teacher's reference samples, w × steps (teacher: 2 NFE per step; student: 1)**", "",
             _md(grid_frame(df, "fd_to_teacher", e.grid_w)), "",
             "**Class consistency, w × steps**", "", _md(grid_frame(df, "class_consistency", e.grid_w)), ""]
    return "\n".join(lines + claims(df, g))


def claims(df: pd.DataFrame, g: Guidance) -> list[str]:
    """The issue's targets checked from the measurements (Meng et al.'s claim at 4 steps)."""
    e, ref, head = g.eval, g.eval.reference_steps, g.headline_steps
    rows = guided_rows(df)
    teacher = rows[(rows["method"] == "cfg") & (rows["steps"] == ref)].set_index("w").sort_index()
    out = []
    if "fd_to_target" in teacher and teacher["fd_to_target"].notna().any():
        out.append("- CFG teacher against the exact tilted target (FD to exact target; the floor, a fresh draw, "
                   "scores the FD of the floor row): " + ", ".join(
                       f"w = {w:g} {r['fd_to_target']:.4g}" for w, r in teacher.iterrows()) + ".")
    if len(teacher) > 1:
        diffs = teacher[["class_consistency", "precision", "recall"]].diff().dropna()
        trend = ((diffs["class_consistency"] >= 0).all(), (diffs["precision"] >= 0).all(), (diffs["recall"] <= 0).all())
        out.append(f"- CFG teacher, w {teacher.index.min():g} → {teacher.index.max():g}: class consistency "
                   f"{teacher['class_consistency'].iloc[0]:.3f} → {teacher['class_consistency'].iloc[-1]:.3f}, "
                   f"precision {teacher['precision'].iloc[0]:.3f} → {teacher['precision'].iloc[-1]:.3f}, recall "
                   f"{teacher['recall'].iloc[0]:.3f} → {teacher['recall'].iloc[-1]:.3f} (monotone in w: consistency "
                   f"{'yes' if trend[0] else 'no'}, precision {'yes' if trend[1] else 'no'}, recall falling "
                   f"{'yes' if trend[2] else 'no'}).")
    for w in e.grid_w:
        s = rows[(rows["method"] == "guided_pd") & ~rows["stochastic"] & (rows["steps"] == head) & (rows["w"] == w)]
        t = rows[(rows["method"] == "cfg") & (rows["steps"] == head) & (rows["w"] == w)]
        if not (len(s) and len(t) and w in teacher.index):
            continue
        s, t = s.iloc[0], t.iloc[0]
        ratio = t["fd_to_teacher"] / s["fd_to_teacher"] if s["fd_to_teacher"] > 0 else float("inf")
        delta = s["class_consistency"] - teacher.loc[w, "class_consistency"]
        ok = ratio >= 3 and abs(delta) <= 0.05
        out.append(f"- w = {w:g}: {head}-step student FD to teacher {s['fd_to_teacher']:.4g} vs CFG teacher at "
                   f"{head} DDIM steps {t['fd_to_teacher']:.4g} (×{ratio:.1f} closer); class consistency "
                   f"{s['class_consistency']:.3f} vs teacher {teacher.loc[w, 'class_consistency']:.3f} at {ref} steps "
                   f"(Δ {delta:+.3f}) → target (≥ 3×, |Δ| ≤ 0.05) {'met' if ok else 'NOT met'}.")
    return out + [""] if out else []


def guidance_tradeoff(df: pd.DataFrame, path, *, dpi: int, reference_steps: int, headline_steps: int) -> None:
    """FD (data) vs class consistency, and precision vs recall, one curve per sampler, points = w."""
    _theme()
    g = guided_rows(df)
    keep = (((g["method"] == "cfg") & (g["steps"] == reference_steps))
            | ((g["method"] == "guided_pd") & (g["steps"] == headline_steps) & ~g["stochastic"])
            | (g["method"] == "classifier_guidance"))
    data = g[keep].sort_values(["curve", "w"])
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0))
    for ax, (x, y) in zip(axes, (("class_consistency", "fd"), ("recall", "precision"))):
        if len(data):
            sns.lineplot(data=data, x=x, y=y, hue="curve", style="curve", markers=True, dashes=False,
                         errorbar=None, sort=False, ax=ax)
            for _, r in data.iterrows():
                ax.annotate(f"{r['w']:g}", (r[x], r[y]), textcoords="offset points", xytext=(3, 3), fontsize=6)
            sns.move_legend(ax, "best", title=None, fontsize=7)
    axes[0].set(yscale="log", xlabel="class consistency (share in a mode of the requested row)",
                ylabel=f"Fréchet distance to data ({feature_space(df)})", title="Quality vs class consistency (labels: w)")
    axes[1].set(xlabel="recall", ylabel="precision", title="Precision vs recall (labels: w)")
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)
