"""Issue 22's targets, checked from a finished image profile (default ``fashion_small``), with 95%
bootstrap intervals where a number carries a conclusion.  Not part of ``make run``: it reads the
profile's ``metrics.csv``, banks, reference statistics and feature net, and recomputes nothing the
pipeline reports, except the intervals:

- FID of a bank: the bank's features resampled with replacement (``--bootstrap`` times), the
  reference statistics held fixed (as the 2-D panel's intervals, ``evaluation/panel.py``), through
  the same torch-fidelity functions as ``trilemma evaluate`` (``evaluation/images.image_metrics``);
  the interval is the 2.5-97.5 percentile range; a ratio of two banks' FIDs resamples both;
- class confidence (the feature net's mean probability of the requested class): resampled the same way.

    python bench/image_targets.py [--profile fashion_small] [--bootstrap 200]

The targets (issue 22): the teacher's FID well below the blurred and shuffled ceilings; DDIM eta 0 below
eta 1 at 10 and 20 steps; the 4-step PD student at most 0.5x DDIM-4 on the same teacher; DDGAN T = 4
with no class below 5% (each training seed); CFG's confidence in the requested class rising with w, for
the teacher and for the 4-step guided student; the feature net's test accuracy at least 0.85.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

from trilemma import config, paths
from trilemma.artifacts import load_tensors
from trilemma.evaluation.images import extract, extractor_spec


def fid(features: torch.Tensor, ref: dict) -> float:
    stats = fid_features_to_statistics(features.double())
    return float(fid_statistics_to_metric(stats, {"mu": ref["mu"].numpy(), "sigma": ref["sigma"].numpy()},
                                          verbose=False)[KEY_METRIC_FID])


class Banks:
    """Each bank's features (FID layer) and logits under the profile's extractor, extracted once."""

    def __init__(self, cfg, bootstrap: int):
        self.cfg, self.B = cfg, bootstrap
        evi = cfg.evaluation.images
        self.spec = extractor_spec(evi, paths.fmt(paths.FEATURE_NET_DIR, profile=cfg.profile))
        dataset = cfg.data.name
        self.ref, _ = load_tensors(paths.fmt(paths.REFERENCE, profile=cfg.profile, dataset=dataset,
                                             extractor=evi.extractor))
        self.cache: dict[str, tuple] = {}

    def get(self, bank: str):
        if bank not in self.cache:
            x, _ = load_tensors(paths.Bank.parse(bank).path(paths.BANK, self.cfg.profile))
            f = extract(self.spec, x["samples"], self.cfg.evaluation.images.batch_size, torch.device("cpu"))
            self.cache[bank] = (f[self.spec["fid"]], f[self.spec["isc"]], x.get("labels"))
        return self.cache[bank]

    def _draws(self, n: int, seed: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return [torch.randint(0, n, (n,), generator=g) for _ in range(self.B)]

    @functools.cache
    def fid(self, bank: str) -> tuple[float, float, float]:
        """FID with its bootstrap interval (cached: the targets quote a bank more than once)."""
        feats, _, _ = self.get(bank)
        reps = [fid(feats[i], self.ref) for i in self._draws(feats.shape[0], 0)]
        return fid(feats, self.ref), *np.percentile(reps, [2.5, 97.5])

    def ratio(self, num: str, den: str) -> tuple[float, float, float]:
        a, b = self.get(num)[0], self.get(den)[0]
        reps = [fid(a[i], self.ref) / fid(b[j], self.ref)
                for i, j in zip(self._draws(a.shape[0], 1), self._draws(b.shape[0], 2))]
        return fid(a, self.ref) / fid(b, self.ref), *np.percentile(reps, [2.5, 97.5])

    def confidence(self, bank: str) -> tuple[float, float, float]:
        _, logits, labels = self.get(bank)
        p = logits.double().softmax(1).gather(1, labels.long()[:, None]).squeeze(1)
        reps = [float(p[i].mean()) for i in self._draws(p.shape[0], 3)]
        return float(p.mean()), *np.percentile(reps, [2.5, 97.5])


def ci(v: tuple[float, float, float], digits: int = 4) -> str:
    return f"{v[0]:.{digits}g} [{v[1]:.{digits}g}, {v[2]:.{digits}g}]"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="fashion_small")
    p.add_argument("--bootstrap", type=int, default=200)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = config.load_typed(args.profile)
    df = pd.read_csv(paths.fmt(paths.METRICS_CSV, profile=cfg.profile))
    df["bank"] = df["model"] + "/" + df["spec"]
    row = df.set_index("bank")
    banks = Banks(cfg, args.bootstrap)
    out = []

    summary = Path(paths.fmt(paths.FEATURE_NET_SUMMARY, profile=cfg.profile))
    acc = json.loads(summary.read_text())["test_accuracy"] if summary.exists() else float("nan")
    out.append(f"- Feature net: test accuracy {acc:.4f} (target >= {cfg.feature_net.min_test_accuracy}) -> "
               f"{verdict(acc >= cfg.feature_net.min_test_accuracy)}.")

    floors = df[df["model"] == "data"].sort_values("fd")
    ddim0 = df[(df["model"] == "teacher_ddpm") & (df["method"] == "ddim") & (df["eta"] == 0)].sort_values("steps")
    teacher_best = ddim0["bank"].iloc[-1]   # DDIM eta 0 at the most steps of the grid
    t = banks.fid(teacher_best)
    refs = {b: banks.fid(b) for b in floors["bank"]}
    ceilings = [b for b in refs if "fresh" not in b]
    out.append(f"- Teacher, DDIM eta 0 at {int(ddim0['steps'].iloc[-1])} steps: FID {ci(t)}; floor and ceilings: "
               + ", ".join(f"{b.split('/')[1]} {ci(v)}" for b, v in refs.items())
               + f" -> below every ceiling: {verdict(all(t[2] < refs[b][1] for b in ceilings))}.")

    for steps in (10, 20, 50):
        a, b = f"teacher_ddpm/ddim-eta0-uniform-s{steps}", f"teacher_ddpm/ddim-eta1-uniform-s{steps}"
        if a in row.index and b in row.index:
            r = banks.ratio(a, b)
            out.append(f"- DDIM {steps} steps: eta 0 FID {ci(banks.fid(a))}, eta 1 {ci(banks.fid(b))}; ratio "
                       f"{ci(r, 3)} -> eta 0 better" + (f": {verdict(r[2] < 1)}." if steps in (10, 20) else
                                                          f" (no target at {steps}): {'yes' if r[2] < 1 else 'no'}."))

    student, ddim = f"pd_s{cfg.distill.headline_steps}/pd-s{cfg.distill.headline_steps}", \
        f"teacher_pd/ddim-eta0-uniform-s{cfg.distill.headline_steps}"
    if student in row.index and ddim in row.index:
        r = banks.ratio(student, ddim)
        out.append(f"- PD, {cfg.distill.headline_steps} steps: student FID {ci(banks.fid(student))}, DDIM on the "
                   f"same teacher {ci(banks.fid(ddim))}; ratio {ci(r, 3)} (target <= 0.5) -> {verdict(r[2] <= 0.5)}.")

    gan = df[df["method"] == "ddgan"].sort_values("train_seed")
    for _, g in gan.iterrows():
        out.append(f"- DDGAN T = {int(g['steps'])}, training seed {int(g['train_seed'])}: FID {ci(banks.fid(g['bank']))}; "
                   f"class shares {g['class_min_share']:.3f} (min) to {g['class_max_share']:.3f} (max) "
                   f"-> no class below 5%: {verdict(g['class_min_share'] >= 0.05)}.")

    ge = cfg.guidance.eval
    for label, method, steps in (("CFG teacher", "cfg", ge.reference_steps),
                                 (f"{cfg.guidance.headline_steps}-step guided student", "guided_pd",
                                  cfg.guidance.headline_steps)):
        rows = df[(df["method"] == method) & (df["steps"] == steps)
                  & ~df.get("stochastic", pd.Series(False, index=df.index)).fillna(False).astype(bool)].sort_values("w")
        conf = [(w, banks.confidence(b)) for w, b in zip(rows["w"], rows["bank"])]
        rising = all(c1[1] > c0[2] for (_, c0), (_, c1) in zip(conf, conf[1:]))
        out.append(f"- {label} ({steps} steps): confidence in the requested class by w: "
                   + ", ".join(f"w = {w:g} {ci(c, 3)}" for w, c in conf)
                   + f"; FID " + ", ".join(f"w = {w:g} {row.loc[b, 'fd']:.4g}" for w, b in zip(rows["w"], rows["bank"]))
                   + (f" -> rises with w (each step outside the intervals): {verdict(rising)}." if len(conf) > 1
                      else " -> one w: no trend to check."))

    print(f"# Issue 22 targets, profile {cfg.profile} ({args.bootstrap} bootstrap resamples, 95% intervals)\n")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
