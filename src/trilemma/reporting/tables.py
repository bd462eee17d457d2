"""Markdown tables from ``metrics.csv`` (pandas + tabulate), in the layouts of the papers' tables:
DDIM Table 1 (eta x steps) and DDGAN Table 1 (method, NFE, time, quality, coverage)."""
from __future__ import annotations

from importlib import resources

import pandas as pd

from trilemma.dag import FLOOR, FLOOR_METHODS   # the floor banks' methods (stages/floor.py)


def paper_numbers() -> pd.DataFrame:
    with resources.files("trilemma").joinpath("reporting/paper_numbers.csv").open() as f:
        return pd.read_csv(f)


def _md(df: pd.DataFrame, floatfmt=".4g") -> str:
    return df.to_markdown(index=False, floatfmt=floatfmt)





def with_ci(rows: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``cols`` as text 'value ± half-width' where the rows carry ``<col>_ci`` (the 95% intervals of
    the 2-D profiles); unchanged elsewhere."""
    out = rows.copy()
    for c in cols:
        if f"{c}_ci" in out and out[f"{c}_ci"].notna().any():
            out[c] = [fmt_ci(v, h) for v, h in zip(out[c], out[f"{c}_ci"])]
    return out


def fmt_ci(value, half_width) -> str:
    if pd.isna(value):
        return ""
    if pd.isna(half_width):
        return f"{value:.4g}"
    return f"{value:.4g} ± {half_width:.2g}"


def floor_row(df: pd.DataFrame, num_samples) -> pd.DataFrame:
    """The fresh draw of the data at ``num_samples`` (empty where the profile has no floor)."""
    rows = df[df["method"] == FLOOR]
    return rows[pd.to_numeric(rows["num_samples"]) == int(num_samples)]


def feature_space(df: pd.DataFrame) -> str:
    spaces = df[~df["method"].isin(FLOOR_METHODS)]["feature_space"].dropna().unique() if "feature_space" in df else []
    return str(spaces[0]) if len(spaces) else "unknown features"


def eta_label(row) -> str:
    return "σ̂" if bool(row["sigma_hat"]) else f"{float(row['eta']):g}"


def ddim_grid(df: pd.DataFrame, value: str = "fd") -> dict[str, pd.DataFrame]:
    """One eta x steps grid of ``value`` (with its interval where there is one) per skip type, rows
    ordered 0, 0.2, ..., 1, sigma-hat."""
    ddim = with_ci(df[df["method"] == "ddim"], [value])
    ddim["sigma_hat"] = ddim["sigma_hat"].astype(str).str.lower() == "true"
    ddim["η"] = ddim.apply(eta_label, axis=1)
    ddim["order"] = ddim["sigma_hat"].astype(int) * 10 + ddim["eta"].astype(float)
    grids = {}
    for skip, part in ddim.groupby("skip", sort=True):
        grid = part.pivot_table(index=["order", "η"], columns="steps", values=value, aggfunc="first")
        grid = grid.sort_index().reset_index(level="order", drop=True).reset_index()
        grid.columns = ["η \\ steps"] + [str(int(c)) for c in grid.columns[1:]]
        grids[skip] = grid
    return grids


def ddim_table(df: pd.DataFrame, feature_space: str, profile: str = "toy", floor: pd.DataFrame | None = None) -> str:
    out = [f"Fréchet distance ({feature_space}) of the DDPM teacher sampled with DDIM (Song et al. 2021, "
           "Eq. 12 and 16); rows as in the DDIM paper's Table 1: η = 1 is DDPM's posterior variance, "
           "σ̂ the larger DDPM variance.", ""]
    if floor is not None and len(floor):
        f = floor.iloc[0]
        out += [f"Floor: a fresh draw of the data ({int(f['num_samples'])} points) scores FD "
                f"{fmt_ci(f['fd'], f['fd_ci'])}; a difference within the ± (95% bootstrap intervals) is a tie.", ""]
    for skip, grid in ddim_grid(df).items():
        out += [f"**Ours, {profile}, {skip} timestep subsequence: FD (lower is better)**", "", _md(grid), ""]
    paper = paper_numbers()
    paper = paper[(paper["paper"].str.startswith("DDIM")) & (paper["table"] == "Table 1")
                  & (paper["metric"] == "FID")]
    if len(paper):
        paper = paper.assign(row=paper["setting"].str.replace(" quadratic", "", regex=False))
        grid = paper.pivot_table(index="row", columns="steps", values="value", aggfunc="first")
        grid.columns = [str(int(c)) for c in grid.columns]
        grid = grid.reset_index().rename(columns={"row": "η \\ steps"})
        out += ["**Paper, CIFAR-10 FID (DDIM Table 1, quadratic subsequence; source: "
                "src/trilemma/reporting/paper_numbers.csv, after methods.md)**", "", _md(grid, ".2f"), ""]
    return "\n".join(out)


FAST_COLUMNS = {"sampler": "Method", "nfe": "NFE", "time_per_100_s": "Time / 100 (s)", "fd": "FD",
                "precision": "Precision", "recall": "Recall", "modes": "Modes", "hq": "HQ share",
                "nll": "NLL", "coverage_jsd": "Coverage JSD", "fd_xy": "FD (xy)"}
CI_COLUMNS = ["fd", "precision", "recall", "hq", "nll", "coverage_jsd", "fd_xy"]
IMAGE_FAST_COLUMNS = {"sampler": "Method", "nfe": "NFE", "time_per_100_s": "Time / 100 (s)", "fd": "FID",
                      "isc": "IS", "kid": "KID", "precision": "Precision", "recall": "Recall"}


def fast_sampling_frame(df: pd.DataFrame, bank_ids: list[str], columns: dict = FAST_COLUMNS,
                        floor: pd.DataFrame | None = None) -> pd.DataFrame:
    keyed = df.assign(bank=df["model"] + "/" + df["spec"]).set_index("bank")
    rows = keyed.loc[[b for b in bank_ids if b in keyed.index]].reset_index()
    rows["sampler"] = rows.apply(lambda r: r["sampler"] + (f", {int(r['steps'])} steps"
                                                          if pd.notna(r["steps"]) else ""), axis=1)
    if floor is not None:
        rows = pd.concat([rows, floor])
    columns = {k: v for k, v in columns.items() if k in rows}
    return with_ci(rows, CI_COLUMNS)[list(columns)].rename(columns=columns)


def fast_sampling_table(df: pd.DataFrame, bank_ids: list[str], device: str, intro: str | None = None,
                        columns: dict = FAST_COLUMNS, floor: pd.DataFrame | None = None) -> str:
    ours = fast_sampling_frame(df, bank_ids, columns, floor)
    paper = paper_numbers()
    paper = paper[paper["paper"].str.startswith("DDGAN") & (paper["table"] == "Table 1")]
    intro = intro or (f"Ours, toy profile: time per 100 samples measured on {device}; FD = Fréchet distance "
                      f"in {feature_space(df)}; modes out of the dataset's modes; HQ = share of samples within "
                      "3 std of a mode; NLL = mean −log p under the true mixture; coverage JSD = Jensen–Shannon "
                      "divergence (bits) of the per-mode histogram from uniform; FD (xy) on raw coordinates "
                      "(not the headline). ± = 95% bootstrap half-width; the last row is the floor, a fresh "
                      "draw of the data.")
    lines = [intro, "", _md(ours), ""]
    if len(paper):
        wide = paper.pivot_table(index=["method", "setting", "nfe"], columns="metric", values="value",
                                 aggfunc="first").reset_index()
        times = paper.groupby(["method", "setting"])["time_s_per_100"].first().reset_index()
        wide = wide.merge(times, on=["method", "setting"], how="left")
        lines += ["Paper, CIFAR-10 (DDGAN Table 1, time per 100 images on one V100; source: "
                  "src/trilemma/reporting/paper_numbers.csv, after methods.md):", "", _md(wide, ".3g"), ""]
    return "\n".join(lines)
