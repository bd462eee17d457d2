"""Where the error comes from (issue 24): ``tables/error_split.md`` and ``figures/error_split.png``.

The oracle (``diffusion/oracle.py``) is the exact denoiser of the toy, so a sampler run on it has
only the solver's error; the learned DDPM teacher with the same sampler at the same steps has the
total.  Two panels in the layout of DDIM Table 1 (sampler x steps): the oracle (solver error) and the
teacher (total), then the learning error, teacher - oracle at each steps, and the step count from
which the solver's error, oracle(N) - oracle(N_max) (N_max = the most steps, where the oracle is at
the sampling floor), falls below the network's.  The distance is the one column :data:`DISTANCE`.
"""
from __future__ import annotations

import pandas as pd

from trilemma.reporting.figures import SAVE, _theme, plt, sns
from trilemma.reporting.tables import _md

DISTANCE = "fd"                   # the headline distance column of metrics.csv
DISTANCE_LABEL = "FD"
ORACLE, TEACHER = "oracle", "teacher_ddpm"


def without_oracle(df: pd.DataFrame) -> pd.DataFrame:
    """The rows every other table and figure reads: the oracle's banks appear only here."""
    return df[df["model"] != ORACLE]


def sampler_label(row) -> str:
    if row["method"] == "pf_ode":
        return f"PF-ODE ({row['solver']}, adaptive)"
    if str(row["sigma_hat"]).lower() == "true":
        return "DDIM σ̂ = DDPM (σ²=β)"
    eta = float(row["eta"])
    return "DDIM (η=1) = DDPM (σ²=β̃)" if eta == 1.0 else f"DDIM (η={eta:g})"


def paired(df: pd.DataFrame) -> pd.DataFrame:
    """One row per oracle bank with the teacher's bank of the same spec: sampler, steps (NFE for the
    adaptive solver), oracle, teacher, learning error (teacher - oracle)."""
    o = df[df["model"] == ORACLE].set_index("spec")
    t = df[df["model"] == TEACHER].set_index("spec")
    specs = [s for s in o.index if s in t.index]
    out = pd.DataFrame({"sampler": [sampler_label(o.loc[s]) for s in specs],
                        "steps": [int(o.loc[s]["steps"]) if pd.notna(o.loc[s]["steps"]) else None for s in specs],
                        "nfe": [(int(o.loc[s]["nfe"]), int(t.loc[s]["nfe"])) for s in specs],
                        "oracle": [float(o.loc[s][DISTANCE]) for s in specs],
                        "teacher": [float(t.loc[s][DISTANCE]) for s in specs]})
    out["learning"] = out["teacher"] - out["oracle"]
    return out


def _panel(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    grid = rows.pivot_table(index="sampler", columns="steps", values=value, aggfunc="first")
    grid.columns = [str(int(c)) for c in grid.columns]
    return grid.reset_index().rename(columns={"sampler": "sampler \\ steps"})


def crossover(rows: pd.DataFrame) -> dict[str, int | None]:
    """Per sampler: the fewest steps N where the solver's error oracle(N) - oracle(N_max) is below the
    learning error teacher(N) - oracle(N) (None: never on the grid)."""
    out = {}
    for name, part in rows[rows["steps"].notna()].groupby("sampler"):
        part = part.sort_values("steps")
        floor = part["oracle"].iloc[-1]
        below = part[(part["oracle"] - floor) < part["learning"]]
        out[name] = int(below["steps"].iloc[0]) if len(below) else None
    return out


def error_split_table(df: pd.DataFrame) -> str:
    rows = paired(df)
    fixed, adaptive = rows[rows["steps"].notna()], rows[rows["steps"].isna()]
    if not len(fixed):
        return "No oracle banks in metrics.csv (oracle.enabled, a dataset with a closed-form density)."
    fixed = fixed.assign(steps=fixed["steps"].astype(int))
    top = int(fixed["steps"].max())
    out = [f"{DISTANCE_LABEL} of the same sampler at the same steps on the exact denoiser of the data "
           f"(the oracle: the solver's error alone) and on the learned DDPM teacher (the total), DDIM Table 1 "
           f"layout; the learning error is teacher − oracle. {DISTANCE_LABEL} lower is better.", "",
           f"**Solver error: the oracle, {DISTANCE_LABEL}**", "", _md(_panel(fixed, "oracle")), "",
           f"**Total: the learned teacher, {DISTANCE_LABEL}**", "", _md(_panel(fixed, "teacher")), "",
           f"**Learning error: teacher − oracle, {DISTANCE_LABEL}**", "", _md(_panel(fixed, "learning")), ""]
    at_top = fixed[fixed["steps"] == top]
    out += [f"- At {top} steps (solver error ≈ 0): learning error {r['learning']:.4g} for {r['sampler']} "
            f"(teacher {r['teacher']:.4g}, oracle {r['oracle']:.4g})." for _, r in at_top.iterrows()]
    for name, n in crossover(fixed).items():
        out.append(f"- {name}: the solver's error (oracle(N) − oracle({top})) falls below the network's from "
                   + (f"N = {n} steps." if n is not None else f"no step count up to {top}."))
    for _, r in adaptive.iterrows():
        out.append(f"- {r['sampler']}: oracle {r['oracle']:.4g} (NFE {r['nfe'][0]}), teacher {r['teacher']:.4g} "
                   f"(NFE {r['nfe'][1]}), learning error {r['learning']:.4g}.")
    return "\n".join(out)


def error_split_figure(df: pd.DataFrame, path, *, dpi: int) -> None:
    """Distance against steps (log axes): per sampler the teacher (solid) and the oracle (dashed)."""
    rows = paired(df)
    rows = rows[rows["steps"].notna()]
    long = rows.melt(id_vars=["sampler", "steps"], value_vars=["teacher", "oracle"], var_name="denoiser",
                     value_name=DISTANCE_LABEL)
    long["denoiser"] = long["denoiser"].map({"teacher": "learned teacher (total)", "oracle": "oracle (solver only)"})
    _theme()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    sns.lineplot(data=long, x="steps", y=DISTANCE_LABEL, hue="sampler", style="denoiser", markers=True, ax=ax)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(f"{DISTANCE_LABEL} to the data")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)
