"""The report of an image profile (:class:`ImagesReport`, :meth:`trilemma.modality.Images.report`): the sample figure (one grid of uint8 images per panel, real
data first, in the layout of the papers' sample figures, DDPM Fig. 1 and DDGAN Fig. 1, byte-stable like
every figure), and ``distillation.md`` (PD Table 2 / Fig. 4) and ``ddgan.md`` (DDGAN Table 2) with
FID, IS, KID and precision/recall in the profile's feature space instead of the toy's mode counts."""
from __future__ import annotations

from typing import TYPE_CHECKING

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from trilemma import dag  # noqa: E402
from trilemma.reporting import ddgan, distillation, distillation_cost, figures, report, tables  # noqa: E402
from trilemma.reporting.distillation_cost import cd_sections  # noqa: E402
from trilemma.reporting.figures import SAVE  # noqa: E402
from trilemma.reporting.tables import _md, paper_numbers  # noqa: E402

if TYPE_CHECKING:
    from trilemma.schema.models import Config, Ddgan, Guidance

METRICS = ["nfe", "fd", "isc", "kid", "precision", "recall"]


class ImagesReport:
    """FID, IS, KID and precision/recall in the profile's feature space (a floor and two ceilings, no
    mode counts); rows of images for the samples; report.md with the method sections of the image profiles."""
    real_title = "real data (test split)"

    def __init__(self, cfg: Config, df, device: str):
        self.cfg, self.df, self.device, self.rep = cfg, df, device, cfg.report
        self.space = str(df["feature_space"].iloc[0]) if len(df) else "unknown"
        self.panel_size = self.rep.grid_images

    def tables(self) -> dict[str, str]:
        cfg, df, p, space = self.cfg, self.df, self.cfg.profile, self.space
        return {
            "ddim": tables.ddim_table(df[df["model"] == dag.TEACHER], feature_space=space, profile=p),
            "fast_sampling": tables.fast_sampling_table(
                df, self.rep.fast_sampling, self.device, columns=tables.IMAGE_FAST_COLUMNS,
                intro=f"Ours, {p} profile: time per 100 samples measured on {self.device}; FID, IS and KID in "
                      f"{space}; precision/recall (Kynkäänniemi et al.) in the same features."),
            "distillation": distillation_table(df, cfg.distill.headline_steps, space),
            "ddgan": ddgan_table(df, cfg.ddgan, self.device, space),
            "references": reference_table(df, space)}

    def figures(self, fig: dict[str, str]) -> None:
        df, dpi, ylabel = self.df, self.rep.dpi, f"FID ({self.space})"
        figures.fid_vs_time(df, fig["fid_vs_time"], dpi=dpi, device=self.device, ylabel=ylabel)
        distillation.fid_vs_steps(df, fig["fid_vs_steps"], dpi=dpi, ylabel=ylabel)
        distillation_cost.distillation_cost_figure(df, fig["distillation_cost"], dpi=dpi, ylabel=ylabel)

    @staticmethod
    def panel_title(r) -> str:
        return f"{r['sampler']}\nNFE {int(r['nfe'])}, FID {r['fd']:.3g}"

    def samples(self, panels, path, real) -> None:
        image_grid(panels, path, dpi=self.rep.dpi)

    def assemble(self, table_text: dict[str, str], rel: dict[str, str], dmeta: dict) -> str:
        import os

        from trilemma import paths
        from trilemma.artifacts import load_json
        from trilemma.models.registry import build_model

        cfg, df = self.cfg, self.df
        summary = paths.fmt(paths.FEATURE_NET_SUMMARY, profile=cfg.profile)
        facts = {"feature_space": self.space, "reference": str(df["reference"].iloc[0]) if len(df) else "unknown",
                 "params": sum(t.numel() for t in build_model(cfg.teacher.model.plain(), dmeta["data_dim"]).parameters()),
                 "feature_net": load_json(summary) if os.path.exists(summary) else None}
        teacher = df[df["model"] == dag.TEACHER]   # the DDPM teacher's findings; PD and DDGAN have their sections
        return (report.assemble_images(cfg, teacher, table_text, rel, facts)
                + method_sections(cfg, table_text, rel, self.space))


def tile(images: torch.Tensor, nrow: int | None = None, pad: int = 1) -> torch.Tensor:
    """uint8 (N, C, H, W) -> one uint8 (H', W', C) mosaic with ``pad`` white pixels between images."""
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    out = torch.full((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        out[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = images[i]
    return out.permute(1, 2, 0)


def image_grid(panels: list[tuple[str, torch.Tensor]], path, *, dpi: int, per_row: int = 16) -> None:
    """``panels``: (title, uint8 (N, C, H, W)) pairs, one per method, drawn as rows of ``per_row``
    images (grey images in grey) with the title on the left.  Every bank's first images start from the
    same x_T (``stages/sample.py`` seeds batch b with (seed, b)), so a column compares the samplers
    on one draw of noise: DDIM Fig. 5's layout, with methods for step counts."""
    strips = [tile(images, nrow=min(per_row, images.shape[0])) for _, images in panels]
    heights = [s.shape[0] for s in strips]
    width = max(s.shape[1] for s in strips)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 0.3 + 0.7 * len(panels)),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (title, _), mosaic in zip(axes[:, 0], panels, strips):
        mosaic = mosaic.numpy()
        if mosaic.shape[-1] == 1:
            ax.imshow(mosaic[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(mosaic, interpolation="nearest")
        ax.set(xticks=[], yticks=[], xlim=(-0.5, width - 0.5))
        ax.set_ylabel(title.replace("\n", " "), rotation=0, ha="right", va="center", fontsize=7)
        for side in ax.spines.values():
            side.set_visible(False)
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)


REFERENCE_COLUMNS = ["sampler", "num_samples", "fd", "kid", "isc", "precision", "recall", "class_min_share",
                     "class_consistency"]


def reference_table(df, space: str) -> str:
    """The floor (held-out real images) and the two ceilings (pixels shuffled across images, blurred real
    images) through the same metrics as every bank: the scale that a sampler's FID is read on."""
    from trilemma.dag import FLOOR_KINDS
    order = {m: i for i, m in enumerate(FLOOR_KINDS.values())}
    rows = df[df["method"].isin(order)].sort_values("method", key=lambda m: m.map(order))
    cols = [c for c in REFERENCE_COLUMNS if c in rows]
    return "\n".join([
        f"The scale of every FID below (fd = FID, isc = IS, kid = KID, all in {space}): the floor is real images "
        "the models never saw (the test split; the reference statistics are the training split's), the ceilings "
        "are two trivially bad generators, the same images with every pixel position shuffled across the images "
        "(real per-pixel statistics, no structure) and blurred (`stages/floor.py`). class_min_share: the smallest "
        "share of one class under the profile's classifier (0.1 for balanced classes); class_consistency: the "
        "share classified as the image's own label (the classifier's accuracy).", "",
        _md(rows[cols].reset_index(drop=True))])


def distillation_table(df, headline: int, space: str) -> str:
    """Every student with its own N-step DDIM (PD) against DDIM on the same teacher (DDIM), FID in
    the profile's features; the paper's CIFAR-10 FIDs (Table 2) in their own column."""
    students, ddim = distillation.chain_rows(df)
    lines = ["Progressive distillation (Salimans & Ho 2022, Algorithm 2): the N-step student of each round "
             "with its own N-step DDIM sampler (PD) against DDIM with N steps on the same distillation teacher "
             f"(DDIM; up to `distill.eval.baseline_max_steps`). fd = FID, isc = IS, kid = KID, all in {space}. "
             "The paper's CIFAR-10 FIDs (Table 2; source: src/trilemma/reporting/paper_numbers.csv, after "
             "methods.md §5.4) are printed in their own column.", "",
             _md(distillation.distillation_frame(df, METRICS)), ""]
    if headline in students.index:
        s = students.loc[headline]
        line = f"**Headline, {headline} steps:** student FID {s['fd']:.4g}, IS {s['isc']:.3g}"
        if headline in ddim.index:
            d = ddim.loc[headline]
            line += f"; DDIM on the same teacher FID {d['fd']:.4g} (student/DDIM = {s['fd'] / d['fd']:.3f})"
        lines += [line + ".", ""]
    return "\n".join(lines + cd_sections(df, space))


def ddgan_table(df, ddgan_cfg: Ddgan, device: str, space: str) -> str:
    """DDGAN's T ablation (Table 2 layout) with the paper's CIFAR-10 FID and recall beside ours."""
    rows = ddgan.gan_rows(df)
    rows = rows[(rows["method"] == "ddgan") & (rows["train_seed"].astype(int) == ddgan_cfg.seeds[0])]
    rows = rows.sort_values("steps")
    paper = paper_numbers()
    paper = paper[paper["paper"].str.startswith("DDGAN") & (paper["table"] == "Table 2")]
    paper = paper.pivot_table(index="steps", columns="metric", values="value", aggfunc="first")
    out = rows[["steps", "nfe", "time_per_100_s", "fd", "isc", "kid", "precision", "recall"]].rename(columns={
        "steps": "T", "nfe": "NFE", "time_per_100_s": "Time / 100 (s)", "fd": "FID", "isc": "IS", "kid": "KID",
        "precision": "Precision", "recall": "Recall"})
    for metric in ("FID", "Recall"):
        out[f"paper {metric} (CIFAR-10)"] = [paper[metric].get(t) if metric in paper else None for t in out["T"]]
    lines = [f"**T ablation (DDGAN Table 2 layout)**: ours (training seed {ddgan_cfg.seeds[0]}; FID, IS, KID "
             f"and precision/recall in {space}; time per 100 samples on {device}) beside the paper's CIFAR-10 "
             "FID and recall (source: src/trilemma/reporting/paper_numbers.csv, after methods.md §4.3; "
             "secondary copies of the paper).", "", _md(out), ""]
    return "\n".join(lines + _speed_line(df, rows[rows["steps"] == ddgan_cfg.coverage_steps]) + [""])


def _speed_line(df, head) -> list[str]:
    """DDGAN's time per 100 samples against the DDPM teacher's longest chain on the same device."""
    ddpm = df[(df["method"] == "ddpm") & (df["model"] == "teacher_ddpm")]
    if not len(head) or not len(ddpm):
        return []
    full, d = ddpm.sort_values("steps").iloc[-1], head.iloc[0]
    ratio = float(full["time_per_100_s"]) / float(d["time_per_100_s"])
    return [f"- Speed: DDGAN T={int(d['steps'])} takes {d['time_per_100_s']:.4g} s per 100 samples, the DDPM "
            f"teacher's {int(full['steps'])}-step chain {float(full['time_per_100_s']):.4g} s on the same device: "
            f"{ratio:.0f}× faster (paper, CIFAR-10 on a V100: 0.21 s vs DDPM's 1000 steps 80.5 s, about 380×)."]


GUIDED_COLUMNS = {"curve": "sampler", "w": "w", "steps": "steps", "nfe": "NFE", "time_per_100_s": "Time / 100 (s)",
                  "fd": "FID", "isc": "IS", "kid": "KID", "precision": "Precision", "recall": "Recall"}


def guidance_table(df, g: Guidance, space: str) -> str:
    """Guidance on images (Ho & Salimans 2022, Table 1 / Fig. 4; Meng et al. 2023, Table 1 layout): the
    CFG teacher at its reference steps and the guided student at the headline steps across w, then
    FID and IS in a w x steps grid (teacher: 2 NFE per step; student: 1).  No class consistency and no
    FD to the teacher on images (the toy's columns)."""
    from trilemma.reporting import guidance

    e, ref, head = g.eval, g.eval.reference_steps, g.headline_steps
    rows = guidance.guided_rows(df)
    keep = (((rows["method"] == "cfg") & (rows["steps"] == ref))
            | ((rows["method"] == "guided_pd") & (rows["steps"] == head) & ~rows["stochastic"]))
    trade = rows[keep].sort_values(["method", "w"])
    lines = [f"Classifier-free guidance on images ({e.num_samples} samples per bank, class labels balanced; "
             f"p_uncond = {g.p_uncond}). FID, IS, KID and precision/recall in {space}. The CFG teacher "
             "samples with DDIM at 2 NFE per step, the guided student (stages one and two of Meng et al.) "
             "with its own DDIM at 1 NFE per step. Classifier guidance is not run on images.", "",
             f"**Across w: CFG teacher at {ref} steps, guided student at {head} steps**", "",
             _md(trade[list(GUIDED_COLUMNS)].rename(columns=GUIDED_COLUMNS)), ""]
    if e.grid_steps or e.stochastic_steps:
        for value, name in (("fd", "FID"), ("isc", "IS")):
            lines += [f"**{name}, w × steps**", "", _md(guidance.grid_frame(df, value, e.grid_w)), ""]
    return "\n".join(lines)


def guidance_section(cfg: Config) -> str:
    """The report's guidance section: the setup and the table of the ``guidance_table`` job."""
    from pathlib import Path

    from trilemma import paths
    path = Path(paths.fmt(paths.TABLE, profile=cfg.profile, table="guidance"))
    if not cfg.guidance.enabled or not path.exists():
        return ""
    g = cfg.guidance
    s1, r = g.stage1, g.rounds
    return "\n".join([
        "## Classifier-free guidance and guided distillation", "",
        f"Setup: the CFG teacher is a class-conditional U-Net (preset `{g.teacher.model.unet.preset}`, "
        f"null label, p_uncond = {g.p_uncond}) on the distillation teacher's recipe, "
        f"{g.teacher.train.samples:,} training samples; stage one trains the w-conditioned student "
        f"(w ~ U[{s1.w_min:g}, {s1.w_max:g}]) for {s1.train.samples:,} samples; stage two distils it "
        f"{g.start_steps} → {g.final_steps} steps at batch {r.batch_size}.", "",
        path.read_text(), ""])


def method_sections(cfg: Config, tables: dict[str, str], figures: dict[str, str], space: str) -> str:
    """The report's sections for progressive distillation and DDGAN on images, each with its setup."""
    t, r, g = cfg.distill.teacher, cfg.distill.rounds, cfg.ddgan
    gen = g.image_model.generator
    return "\n".join([
        "## Progressive distillation (PD Table 2 / Fig. 4 layout)", "",
        f"Setup: the distillation teacher is a U-Net (preset `{t.model.unet.preset}`) in continuous time "
        f"on the cosine logSNR schedule, {t.parameterization}-prediction with `{t.weighting}` weighting, "
        f"{t.train.samples:,} training samples (EMA weights); rounds {cfg.distill.start_steps} → "
        f"{cfg.distill.final_steps} steps at batch {r.batch_size}, updates and peak LR per round in "
        "`distill.rounds` (annealed linearly to 0, no EMA, dropout 0).", "",
        tables["distillation"], "",
        f"![FID vs steps]({figures['fid_vs_steps']})", "",
        f"FID ({space}) against sampling steps (log axes): each distilled student with its own DDIM "
        "against DDIM on the undistilled teacher (PD Fig. 4 layout), and consistency distillation.", "",
        f"![Distillation cost]({figures['distillation_cost']})", "",
        "Quality at N steps against the teacher evaluations and wall time spent to train each student (issue 18).", "",
        "## Denoising Diffusion GAN", "",
        f"Setup: G(x_t, z, t) predicts x0 (U-Net with adaptive group norm from a mapping network of z, nz = "
        f"{g.image_model.nz}, ch {gen.ch}, ch_mult {gen.ch_mult}), D(x_(t-1), x_t, t) the official "
        f"small discriminator (ngf {g.image_model.discriminator.ngf}); {g.train.samples:,} training "
        f"samples at batch {g.train.batch_size}, R1 γ = {g.train.r1_gamma} every "
        f"{g.train.lazy_reg} steps, EMA {g.train.ema_decay} on G.", "",
        tables["ddgan"], ""]) + guidance_section(cfg)
