"""Tables and figures of the issue-19 studies (``tables/deck_<study>.md``, ``figures/deck_<study>.png``):
DDIM Table 2 (inversion), Fig. 5 (consistency), Fig. 6 (interpolation) and DDGAN Fig. 2 (the true
denoising distribution).  Each table ends with the check of the paper's claim, as measured.

Points and images share the tables; a figure's data panels are drawn by modality, chosen once from the
batch's shape (:func:`_is_image`): points over the data's density, images as mosaics (DDIM Figs. 5-6)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

SAVE = {"bbox_inches": "tight", "metadata": {"Software": None}}
GREY = {"s": 2, "c": "0.8", "alpha": 0.5, "linewidths": 0}


def _md(df: pd.DataFrame, floatfmt=".3g") -> str:
    return df.to_markdown(index=False, floatfmt=floatfmt)


def _pm(mean: float, half: float) -> str:
    return "–" if math.isnan(mean) else f"{mean:.3g} ± {half:.2g}"


def _is_image(x) -> bool:
    return x.dim() > 2


def _mosaic(ax, rows: list, title: str) -> None:
    """One mosaic of float [-1, 1] image batches (n, C, H, W), one batch per row."""
    import torch

    from trilemma.data.images import to_uint8
    from trilemma.reporting.images import tile
    m = tile(to_uint8(torch.cat(rows)), nrow=rows[0].shape[0]).numpy()
    grey = m.shape[-1] == 1
    ax.imshow(m[..., 0] if grey else m, cmap="gray" if grey else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    ax.set_title(title, fontsize=8)


def _background(ax, data) -> None:
    ax.scatter(data[:, 0], data[:, 1], **GREY)
    ax.set_aspect("equal")


# ----------------------------------------------------------------------------- inversion
def inversion_table(rows: pd.DataFrame, students: pd.DataFrame, num_points: int) -> str:
    grid = rows.pivot_table(index="model", columns="steps", values="mse", aggfunc="first", sort=False)
    grid.columns = [f"S = {c}" for c in grid.columns]
    out = [f"Reconstruction error of DDIM inversion (η = 0 run backwards x_0 → x_T with S steps, decoded with "
           f"the same S steps), mean squared error per coordinate over {num_points} held-out points (the "
           "`eval` split); DDIM Table 2 layout."
           + (" The exact denoiser of the data's mixture on the teacher's schedule has the discretisation error alone."
              if rows["model"].str.contains("oracle").any() else ""), "", _md(grid.reset_index(), ".2e"), ""]
    for value, what, fmt in (("mse_median", "Median squared error per coordinate (the mean's tail is points decoded "
                              "onto another mode):", ".2e"),
                             ("other_mode", "Share of points reconstructed onto another mode:", ".3f"),
                             ("latent_norm2", "Mean |x_T|² / d of the encoded latents (1 on the Gaussian's shell):", ".3f")):
        grid = rows.pivot_table(index="model", columns="steps", values=value, aggfunc="first", sort=False)
        grid.columns = [f"S = {c}" for c in grid.columns]
        if grid.notna().any().any():      # (no modes on images or the swiss roll)
            out += [what, "", _md(grid.reset_index(), fmt), ""]
    if len(students):
        from trilemma.dag_base import parse_student
        is_student = students["model"].map(lambda m: parse_student(m) is not None)
        kind = students["model"].where(~is_student, "student pd_s<N>, own grid")
        shown = students.assign(kind=kind).pivot_table(index="steps", columns="kind", values="mse", aggfunc="first")
        flips = students.assign(kind=kind).pivot_table(index="steps", columns="kind", values="other_mode", aggfunc="first")
        shown = shown.join(flips.add_suffix(": other mode"))
        out += ["Progressive-distillation students inverted on their own N-step grid (t_i = i / N; the first "
                "inversion step evaluates the network at t = 0, logSNR 20, where a student was never asked for "
                "eps), beside DDIM on their undistilled teacher at the same N; MSE per coordinate and share of "
                "points reconstructed onto another mode:", "",
                _md(shown.sort_index(ascending=False).reset_index().rename(columns={"steps": "N"}), ".3g"), ""]
    teacher = rows[rows["model"] == rows["model"].iloc[0]].sort_values("steps")
    falling = bool((teacher["mse"].diff().dropna() < 0).all())
    out.append(f"**Claim (DDIM Sec. 5.4): the error falls as S grows** — {teacher['model'].iloc[0]}: "
               + ", ".join(f"S={s}: {m:.2e} ± {e:.1e}" for s, m, e in zip(teacher["steps"], teacher["mse"], teacher["mse_se"]))
               + (" — holds." if falling else " — does NOT decrease monotonically."))
    top = rows[rows["steps"] == rows["steps"].max()].set_index("model")
    if len(top) > 1 and top["mse"].iloc[1] > top["mse"].iloc[0]:
        other, name = top.iloc[1], top.index[1]
        out.append(f"\nAt S = {int(rows['steps'].max())} the {name} reconstructs *worse* than the learned teacher "
                   f"({other['mse']:.2e} vs {top['mse'].iloc[0]:.2e}; median {other['mse_median']:.2e}): its mean is "
                   f"the {other['other_mode']:.1%} of points reconstructed onto another mode. The exact flow separates "
                   "the modes sharply, so an Euler step near a boundary between basins can carry a point across; the "
                   "learned ε is smoother and its map easier to invert.")
    return "\n".join(out)


def inversion_figure(rows: pd.DataFrame, students: pd.DataFrame, x_0, recon, path, *, dpi: int, steps: int) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    for name, part in pd.concat([rows, students]).groupby("model", sort=False):
        a.errorbar(part["steps"], part["mse"], yerr=part["mse_se"], marker="o", label=name, capsize=2)
    a.set(xscale="log", yscale="log", xlabel="steps S", ylabel="reconstruction MSE per coordinate",
          title="DDIM inversion (Table 2)")
    a.legend(fontsize=7)
    if _is_image(x_0):
        n = min(8, recon.shape[0])
        _mosaic(b, [x_0[:n], recon[:n]], f"x_0 (top) → encode → decode (bottom), S = {steps}")
        fig.savefig(path, dpi=dpi, **SAVE)
        plt.close(fig)
        return
    _background(b, x_0)
    for p, q in zip(x_0[:300], recon[:300]):
        b.plot([p[0], q[0]], [p[1], q[1]], c="C3", lw=0.5)
    b.scatter(recon[:300, 0], recon[:300, 1], s=3, c="C3")
    b.set_title(f"x_0 (grey) → encode → decode, S = {steps}", fontsize=9)
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)


# ----------------------------------------------------------------------------- consistency
def consistency_table(table: pd.DataFrame, num_points: int, target_steps: int = 50, target: float = 0.1) -> str:
    ref = int(table["reference"].iloc[0])
    shown = pd.DataFrame({"steps S": table["steps"],
                          f"distance to S={ref}": [_pm(m, s) for m, s in zip(table["mean"], table["std"])],
                          "÷ mode spacing": [_pm(m, s) for m, s in zip(table["mean_rel"], table["std_rel"])],
                          "same mode": table["same_mode"].map(lambda v: f"{v:.3f}")})
    if table["spacing"].isna().all():   # no modes (images, the swiss roll): the distance alone
        shown = shown.iloc[:, :2].assign(**{"RMS per coordinate": [_pm(m, s) for m, s in zip(table["rms_mean"],
                                                                                              table["rms_std"])]})
        intro = (f"One batch of {num_points} x_T decoded with S steps (DDIM, η = 0): Euclidean distance of each "
                 f"decode to the {ref}-step decode of the same x_T, mean ± std, in data units (images: pixels in [-1, 1]), and per coordinate "
                 "(DDIM Fig. 5, consistency; the figure has one row per x_T).")
    else:
        intro = (f"One batch of {num_points} x_T decoded with S steps (DDIM, η = 0): per-point Euclidean distance to the "
                 f"{ref}-step decode of the same x_T, mean ± std, in data units and over the smallest distance between "
                 f"two modes ({table['spacing'].iloc[0]:.3g}); `same mode`: share decoded onto the same nearest mode "
                 "(DDIM Fig. 5, consistency).")
    out = [intro, "", shown.to_markdown(index=False), ""]
    at = table[table["steps"] == target_steps]
    if len(at) and not table["spacing"].isna().all():
        rel = float(at["mean_rel"].iloc[0])
        out.append(f"**Target: distance at {target_steps} steps < {target} × the mode spacing** — {rel:.3g} × the spacing "
                   + ("— holds." if rel < target else "— does NOT hold."))
    return "\n".join(out)


def consistency_figure(data, decodes: dict, path, *, dpi: int, points: int) -> None:
    steps = sorted(decodes)
    if _is_image(data):   # DDIM Fig. 5: one row per x_T, one column per S
        fig, ax = plt.subplots(figsize=(0.9 * len(steps) + 1, 0.9 * points + 0.5))
        import torch
        _mosaic(ax, [torch.stack([decodes[s][j] for s in steps]) for j in range(points)],
                "one x_T per row; columns: S = " + ", ".join(map(str, steps)))
        fig.savefig(path, dpi=dpi, **SAVE)
        plt.close(fig)
        return
    fig, ax = plt.subplots(figsize=(5, 5))
    _background(ax, data)
    steps = sorted(decodes)
    colours = plt.cm.viridis([i / max(len(steps) - 1, 1) for i in range(len(steps))])
    for s, c in zip(steps, colours):
        x = decodes[s][:points]
        ax.scatter(x[:, 0], x[:, 1], s=18, color=c, label=f"S = {s}", zorder=3)
    for j in range(min(points, decodes[steps[0]].shape[0])):
        path_j = [decodes[s][j] for s in steps]
        ax.plot([p[0] for p in path_j], [p[1] for p in path_j], c="0.3", lw=0.6, zorder=2)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(f"Decodes of {points} fixed x_T across steps (DDIM Fig. 5)", fontsize=9)
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)


# ----------------------------------------------------------------------------- interpolation
def interpolation_table(norms: pd.DataFrame, pairs: int, steps: int, dim: int) -> str:
    mid = norms.loc[norms.groupby("kind")["a"].apply(lambda a: (a - 0.5).abs().idxmin())]
    ends = norms[norms["a"].isin([0.0, 1.0])].groupby("kind")["norm2"].mean()
    shown = pd.DataFrame({"path": mid["kind"], "|z|²/d at the ends": [ends[k] for k in mid["kind"]],
                          "|z|²/d at a = 0.5": mid["norm2"], "min over pairs at a = 0.5": mid["norm2_min"]})
    s, l_ = (float(mid.set_index("kind").loc[k, "norm2"]) for k in ("slerp", "linear"))
    shell = (f"In d = {dim} the Gaussian's shell is wide (|z|² ~ χ²_{dim}), so the effect is the same factor but less "
             "decisive than in image dimensions, where |z|²/d concentrates at 1." if dim <= 16 else
             f"In d = {dim}, |z|²/d concentrates at 1 (standard deviation √(2/d) = {(2 / dim) ** 0.5:.2g}), so the linear "
             "midpoint lies far off the shell the network was trained on.")
    return "\n".join([
        f"{pairs} pairs of x_T ~ N(0, I) interpolated and decoded with {steps}-step DDIM (η = 0); mean |z|² / d "
        f"along the path (d = {dim}; a standard Gaussian has E|z|²/d = 1). Figure: the decoded paths"
        + (" over the data." if dim <= 16 else ", one row per pair."),
        "", _md(shown, ".3f"), "",
        f"**Why slerp (DDIM Sec. 5.3)**: the linear midpoint's squared norm falls to {l_ / s:.2f} of the slerp "
        f"midpoint's (theory for independent pairs: 1/2). " + shell])


def interpolation_figure(data, paths: dict, norms: pd.DataFrame, path, *, dpi: int) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.3))
    for ax, kind in zip(axes, ("slerp", "linear")):
        _, x = paths[kind]
        if _is_image(data):   # DDIM Fig. 6: one row per pair, a from 0 to 1 left to right
            _mosaic(ax, [x[:, j] for j in range(x.shape[1])], f"decoded {kind} paths of x_T (a: 0 → 1)")
            continue
        _background(ax, data)
        for j in range(x.shape[1]):
            ax.plot(x[:, j, 0], x[:, j, 1], "-o", ms=2, lw=0.8, color=f"C{j % 10}")
        ax.set_title(f"decoded {kind} paths of x_T", fontsize=9)
    for kind, part in norms.groupby("kind"):
        axes[2].plot(part["a"], part["norm2"], marker=".", label=kind)
    axes[2].axhline(1.0, c="0.5", ls="--", lw=0.8)
    axes[2].set(xlabel="a", ylabel="mean |z|² / d", title="norm along the latent path")
    axes[2].legend()
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)


# ----------------------------------------------------------------------------- the true denoising distribution
def _seeds(values: list) -> str:
    return " / ".join(f"{v:.3g}" for v in values) if values else "–"


def denoising_table(summary: pd.DataFrame, rows: pd.DataFrame, distance: str, num_samples: int, seeds: int = 1) -> str:
    shown = pd.DataFrame({
        "T": summary["T"], "x_t points": summary["points"],
        "(a) best Gaussian": [_pm(m, c) for m, c in zip(summary["gaussian"], summary["gaussian_ci"])],
        "(b) DDGAN": [_pm(m, c) for m, c in zip(summary["ddgan"], summary["ddgan_ci"])],
        "(b) per seed": summary["ddgan_seeds"].map(_seeds),
        "(c) teacher's DDPM step": [_pm(m, c) for m, c in zip(summary["ddpm"], summary["ddpm_ci"])],
        "floor (truth vs truth)": [_pm(m, c) for m, c in zip(summary["floor"], summary["floor_ci"])],
        "modes: truth": summary["modes_truth"].map(lambda v: f"{v:.2f}"),
        "modes: DDGAN": summary["modes_ddgan"].map(lambda v: "–" if math.isnan(v) else f"{v:.2f}")})
    steps = denoising_summary_by_step(rows)
    per_step = pd.DataFrame({"T": steps["T"], "step i": steps["step"], "x_t points": steps["points"],
                             **{k: [_pm(m, c) for m, c in zip(steps[v], steps[f"{v}_ci"])]
                                for k, v in (("(a) best Gaussian", "gaussian"), ("(b) DDGAN", "ddgan"),
                                             ("(c) DDPM step", "ddpm"), ("floor", "floor"))},
                             "modes: truth": steps["modes_truth"].map(lambda v: f"{v:.2f}"),
                             "modes: DDGAN": steps["modes_ddgan"].map(lambda v: "–" if math.isnan(v) else f"{v:.2f}")})
    out = [f"Distance from the true q(x_(t-1) | x_t) (exact, the data's mixture on DDGAN's discretised VP SDE) to "
           f"(a) the moment-matched Gaussian, (b) the DDGAN generators' conditional (ddgan_t<T>, {seeds} training "
           "seed(s): pooled over seeds, and each seed's mean) and (c) the trained DDPM teacher's Gaussian step "
           "respaced to the T-step chain (σ² = β̃, its x̂_0 at the same noise level), "
           f"{distance}, {num_samples} draws each; mean ± 1.96 SE over x_t ~ q(x_t), the steps of each chain "
           "equally represented. `modes`: exp(entropy) of the draws' nearest-mode histogram (DDGAN Sec. 3, Fig. 2).",
           "", shown.to_markdown(index=False), "", "Per denoising step (index i: x_i → x_(i-1); i = 0 ends at the data):",
           "", per_step.to_markdown(index=False), ""]
    s = summary.set_index("T")
    few = [T for T in s.index if T <= 8]
    grows = len(few) > 1 and all(s.loc[a, "gaussian"] >= s.loc[b, "gaussian"] for a, b in zip(few, few[1:]))
    out.append(f"**Claim (a): the best Gaussian's distance grows as T falls** — "
               + ", ".join(f"T={T}: {s.loc[T, 'gaussian']:.3g}" for T in s.index) + (" — holds." if grows else " — not monotone."))
    last = steps[steps["step"] == 0].set_index("T")
    for T in few:
        if not math.isnan(s.loc[T, "ddgan"]):
            out.append(f"- T={T}: all steps {_verdict(s.loc[T])}; the last step (i = 0) {_verdict(last.loc[T])}.")
    if not s["ddpm"].isna().all():
        out += ["", "**DDGAN's point in practice: its conditional against the Gaussian step a DDPM sampler takes "
                "with the same T** ((c) vs (b)):"]
        out += [f"- T={T}: all steps {_verdict(s.loc[T], 'ddpm', 'ddgan')}; the last step (i = 0) "
                f"{_verdict(last.loc[T], 'ddpm', 'ddgan')}." for T in few if not math.isnan(s.loc[T, "ddgan"])]
    return "\n".join(out)


def _verdict(row, first: str = "gaussian", second: str = "ddgan") -> str:
    """(a) vs (b) (or ``first`` vs ``second``) of one summary row, a difference inside the summed 95%
    half-widths being a tie."""
    names = {"gaussian": ("a", "the Gaussian"), "ddgan": ("b", "DDGAN"), "ddpm": ("c", "the DDPM step")}
    a, ca, b, cb = (row[k] for k in (first, f"{first}_ci", second, f"{second}_ci"))
    (la, na), (lb, nb) = names[first], names[second]
    v = (f"{nb} closer" if b + cb < a - ca else f"{na} closer" if a + ca < b - cb else "a tie within the error bars")
    return f"({la}) {a:.3g} ± {ca:.2g} vs ({lb}) {b:.3g} ± {cb:.2g}: {v}"


def denoising_summary_by_step(rows: pd.DataFrame) -> pd.DataFrame:
    from trilemma.deck.denoising import summary
    return summary(rows[rows["T"] <= 8], by=("T", "step"))


def denoising_figure(panels: list[dict], path, *, dpi: int) -> None:
    """``panels``: one per (T, x_t) with the draws of :func:`trilemma.deck.denoising.draws` and a title."""
    Ts = sorted({p["T"] for p in panels})
    cols = max(sum(p["T"] == T for p in panels) for T in Ts)
    fig, axes = plt.subplots(len(Ts), cols, figsize=(3 * cols, 3 * len(Ts)), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for r, T in enumerate(Ts):
        for c, p in enumerate([p for p in panels if p["T"] == T]):
            ax = axes[r, c]
            ax.set_axis_on()
            d = p["draws"]
            ax.scatter(d["truth"][:, 0], d["truth"][:, 1], s=2, c="0.3", label="true q(x_(t-1) | x_t)")
            ax.scatter(d["gaussian"][:, 0], d["gaussian"][:, 1], s=2, c="C0", alpha=0.3, label="best Gaussian")
            if "ddpm" in d:
                ax.scatter(d["ddpm"][:, 0], d["ddpm"][:, 1], s=2, c="C2", alpha=0.3, label="teacher's DDPM step")
            if "ddgan" in d:
                ax.scatter(d["ddgan"][:, 0], d["ddgan"][:, 1], s=2, c="C1", alpha=0.5, label="DDGAN (seed 0)")
            ax.set_title(p["title"], fontsize=8)
            ax.set_aspect("equal", adjustable="datalim")
    axes[0, 0].legend(fontsize=6, markerscale=3)
    fig.suptitle("The last denoising step x_0 | x_(t_1) for T steps (DDGAN Fig. 2): truth, best Gaussian, "
                 "the teacher's DDPM step, DDGAN", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)
