"""Markdown tables from ``metrics.csv`` (pandas + tabulate), in the layouts of the papers' tables:
DDIM Table 1 (eta x steps) and DDGAN Table 1 (method, NFE, time, quality, coverage)."""
from __future__ import annotations

from importlib import resources

import pandas as pd


def paper_numbers() -> pd.DataFrame:
    with resources.files("trilemma").joinpath("reporting/paper_numbers.csv").open() as f:
        return pd.read_csv(f)


def _md(df: pd.DataFrame, floatfmt=".4g") -> str:
    return df.to_markdown(index=False, floatfmt=floatfmt)


def eta_label(row) -> str:
    return "σ̂" if bool(row["sigma_hat"]) else f"{float(row['eta']):g}"


def ddim_grid(df: pd.DataFrame, value: str = "fd") -> dict[str, pd.DataFrame]:
    """One eta x steps grid of ``value`` per skip type, rows ordered 0, 0.2, ..., 1, sigma-hat."""
    ddim = df[df["method"] == "ddim"].copy()
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


def ddim_table(df: pd.DataFrame, feature_space: str = "2-D coordinates", profile: str = "toy") -> str:
    out = [f"Fréchet distance ({feature_space}) of the DDPM teacher sampled with DDIM (Song et al. 2021, "
           "Eq. 12 and 16); rows as in the DDIM paper's Table 1: η = 1 is DDPM's posterior variance, "
           "σ̂ the larger DDPM variance.", ""]
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
                "precision": "Precision", "recall": "Recall", "modes": "Modes", "hq": "HQ share"}
IMAGE_FAST_COLUMNS = {"sampler": "Method", "nfe": "NFE", "time_per_100_s": "Time / 100 (s)", "fd": "FID",
                      "isc": "IS", "kid": "KID", "precision": "Precision", "recall": "Recall"}


def fast_sampling_frame(df: pd.DataFrame, bank_ids: list[str], columns: dict = FAST_COLUMNS) -> pd.DataFrame:
    keyed = df.assign(bank=df["model"] + "/" + df["spec"]).set_index("bank")
    rows = keyed.loc[[b for b in bank_ids if b in keyed.index]].reset_index()
    rows["sampler"] = rows.apply(lambda r: r["sampler"] + (f", {int(r['steps'])} steps"
                                                          if pd.notna(r["steps"]) else ""), axis=1)
    return rows[list(columns)].rename(columns=columns)


def fast_sampling_table(df: pd.DataFrame, bank_ids: list[str], device: str, intro: str | None = None,
                        columns: dict = FAST_COLUMNS) -> str:
    ours = fast_sampling_frame(df, bank_ids, columns)
    paper = paper_numbers()
    paper = paper[paper["paper"].str.startswith("DDGAN") & (paper["table"] == "Table 1")]
    intro = intro or (f"Ours, toy profile: time per 100 samples measured on {device}; modes out of the "
                      "dataset's modes; HQ = share of samples within 3 std of a mode.")
    lines = [intro, "", _md(ours), ""]
    if len(paper):
        wide = paper.pivot_table(index=["method", "setting", "nfe"], columns="metric", values="value",
                                 aggfunc="first").reset_index()
        times = paper.groupby(["method", "setting"])["time_s_per_100"].first().reset_index()
        wide = wide.merge(times, on=["method", "setting"], how="left")
        lines += ["Paper, CIFAR-10 (DDGAN Table 1, time per 100 images on one V100; source: "
                  "src/trilemma/reporting/paper_numbers.csv, after methods.md):", "", _md(wide, ".3g"), ""]
    return "\n".join(lines)
