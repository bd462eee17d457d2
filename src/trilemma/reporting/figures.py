"""Figures (seaborn on the Agg backend), byte-stable across runs (no software/date metadata):

- ``fid_vs_time``: FD against time per 100 samples, log axes, one line per method (DDGAN Fig. 4);
- ``samples``: scatter panels of the real data and each method (DDGAN Fig. 6).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

SAVE = {"bbox_inches": "tight", "metadata": {"Software": None}}
GAN_LABELS = {"ddgan": "DDGAN (NFE = T)", "gan": "GAN", "wgan_gp": "WGAN-GP"}


def _theme():
    sns.set_theme(style="whitegrid", context="paper")


def curve_label(row) -> str:
    """The line a metrics row belongs to in fid_vs_time: one per method (and its main setting)."""
    if row["method"] == "ddpm":
        return "DDPM (σ²=β)" if row["variance"] == "beta" else "DDPM (σ²=β̃)"
    if row["method"] == "ddim":
        if row.get("model") == "teacher_pd":
            return None  # DDIM on the distillation teacher: in fid_vs_steps
        if str(row["sigma_hat"]).lower() == "true":
            return None
        return f"DDIM (η={float(row['eta']):g})" if float(row["eta"]) in (0.0, 1.0) else None
    if row["method"] == "pf_ode":
        return "PF-ODE"
    if row["method"] == "pd":
        return "PD student (DDIM)"
    if row["method"] == "stochastic":
        return None
    if row["method"] == "guided_pd":  # the caller keeps one w (guidance.eval.headline_w)
        return None if str(row["stochastic"]).lower() == "true" else f"guided PD student (DDIM, w={float(row['w']):g})"
    if row["method"] in ("cfg", "classifier_guidance"):
        return None  # in guidance_tradeoff
    if row["method"] in GAN_LABELS:
        return GAN_LABELS[row["method"]]
    return str(row["method"])


def fid_vs_time(df: pd.DataFrame, path, *, dpi: int, device: str,
                ylabel: str = "Fréchet distance (2-D coordinates)") -> None:
    _theme()
    data = df.assign(curve=df.apply(curve_label, axis=1)).dropna(subset=["curve"])
    data = data.sort_values(["curve", "time_per_100_s"])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sns.lineplot(data=data, x="time_per_100_s", y="fd", hue="curve", style="curve", markers=True,
                 dashes=False, errorbar=None, sort=True, ax=ax)
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
