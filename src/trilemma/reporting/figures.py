"""Figures (seaborn on the Agg backend), byte-stable across runs (no software/date metadata):

- ``fid_vs_time``: FD against time per 100 samples, log axes, one line per method (DDGAN Fig. 4);
- ``samples``: scatter panels of the real data and each method (DDGAN Fig. 6);
- ``trilemma``: quality, coverage and speed of every method at its headline setting, in one chart.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from trilemma import paths  # noqa: E402
from trilemma.dag import FLOOR_METHODS  # noqa: E402

SAVE = {"bbox_inches": "tight", "metadata": {"Software": None}}
GAN_LABELS = {"ddgan": "DDGAN (NFE = T)", "gan": "GAN", "wgan_gp": "WGAN-GP"}


def _theme():
    sns.set_theme(style="whitegrid", context="paper")


def curve_label(row) -> str | None:
    """The line a metrics row belongs to in fid_vs_time (None: not on it): its sampler's ``curve`` in
    the registry (``sampling/registry.py``); the floor is a line of its own."""
    from trilemma.sampling.registry import by_method
    if row["method"] in FLOOR_METHODS:
        return None
    entry = by_method(row["method"])
    return entry.curve(row) if entry else str(row["method"])


def error_bars(ax, data: pd.DataFrame, x: str, y: str = "fd") -> None:
    """Vertical 95% intervals (``<y>_ci``) at each point, where the rows carry them."""
    if f"{y}_ci" in data and data[f"{y}_ci"].notna().any():
        ax.errorbar(data[x], data[y], yerr=data[f"{y}_ci"], fmt="none", ecolor="0.4", elinewidth=0.7,
                    capsize=1.5, zorder=1)


def floor_line(ax, floor: pd.DataFrame, y: str = "fd") -> None:
    """The floor: a fresh draw of the data through the same metric, as a dashed horizontal line."""
    for _, f in floor.iterrows():
        ax.axhline(f[y], color="0.2", linestyle="--", linewidth=0.9,
                   label=f"fresh draw of the data (floor, n = {int(f['num_samples'])})")


def fid_vs_time(df: pd.DataFrame, path, *, dpi: int, device: str, ylabel: str,
                floor: pd.DataFrame | None = None) -> None:
    _theme()
    data = df.assign(curve=df.apply(curve_label, axis=1)).dropna(subset=["curve"])
    data = data.sort_values(["curve", "time_per_100_s"])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sns.lineplot(data=data, x="time_per_100_s", y="fd", hue="curve", style="curve", markers=True,
                 dashes=False, errorbar=None, sort=True, ax=ax)
    error_bars(ax, data, "time_per_100_s")
    if floor is not None:
        floor_line(ax, floor)
    for _, r in data.iterrows():
        ax.annotate(str(int(r["nfe"])), (r["time_per_100_s"], r["fd"]), textcoords="offset points",
                    xytext=(3, 3), fontsize=6)
    ax.set(xscale="log", yscale="log", xlabel=f"time per 100 samples (s), {device}",
           ylabel=ylabel, title="Quality vs sampling time (labels: NFE)")
    sns.move_legend(ax, "upper right", title=None, fontsize=7)
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)


def samples_grid(panels: list[tuple[str, "object"]], path, *, dpi: int, limit: float) -> None:
    """``panels``: (title, (N, 2) array) pairs; the first is the real data."""
    _theme()
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.4), squeeze=False)
    for ax, (title, pts) in zip(axes[0], panels):
        ax.scatter(pts[:, 0], pts[:, 1], s=1.5, alpha=0.5, linewidths=0, color="tab:blue")
        ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal", xticks=[], yticks=[])
        ax.set_title(title, fontsize=7)
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)


def trilemma_chart(df: pd.DataFrame, bank_ids: list[str], path, *, dpi: int, device: str, ylabel: str,
                   floor: pd.DataFrame | None = None) -> None:
    """The generative learning trilemma (Xiao et al. 2022, Fig. 1) measured: each method at its headline
    setting (``bank_ids``, GAN-type methods averaged over their training seeds) placed by sampling time
    (x), headline distance (y) and mode coverage (colour: coverage JSD, 0 = every mode its share)."""
    _theme()
    keyed = df.assign(bank=df["model"] + "/" + df["spec"])
    gan_like = keyed["method"].isin(list(GAN_LABELS))
    heads = keyed[keyed["bank"].isin(bank_ids) & ~gan_like]
    gans = keyed[gan_like & keyed["spec"].isin({paths.Bank.parse(b).spec for b in bank_ids} | {"gan", "wgan_gp"})]
    gans = gans.groupby("sampler", as_index=False)[["time_per_100_s", "fd", "coverage_jsd", "nfe"]].mean()
    points = pd.concat([heads.assign(label=heads["sampler"] + heads["steps"].map(
        lambda s: f", {int(s)} steps" if pd.notna(s) else "")), gans.assign(label=gans["sampler"] + " (seed mean)")])
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    sc = ax.scatter(points["time_per_100_s"], points["fd"], c=points["coverage_jsd"], cmap="viridis_r",
                    vmin=0.0, vmax=max(0.05, float(points["coverage_jsd"].max())), s=40, edgecolors="k", linewidths=0.4)
    for _, r in points.iterrows():
        ax.annotate(r["label"], (r["time_per_100_s"], r["fd"]), textcoords="offset points", xytext=(4, 3), fontsize=6)
    if floor is not None:
        floor_line(ax, floor)
        ax.legend(fontsize=7, loc="upper right")
    fig.colorbar(sc, ax=ax, label="coverage JSD (bits; 0 = every mode its share)")
    ax.set(xscale="log", yscale="log", xlabel=f"time per 100 samples (s), {device}", ylabel=ylabel,
           title="The trilemma: quality (down), coverage (colour), speed (left)")
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)
