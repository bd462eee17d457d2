"""Diagnosis of classifier guidance on the toy (issue 24, item 3): swap the exact parts of the oracle
(``diffusion/oracle.py``) for the learned ones, one at a time.  Not a test: it prints one table.

    python bench/cg_diagnosis.py --results results/toy [--scales 1,2,4] [--steps 64] [--n 2000]

Rows: the score (eps of the unconditional model: the oracle's, the CFG teacher's null label, the
unconditional distillation teacher ``teacher_pd``, or any model directory given with --score-dir) times the classifier (the exact Bayes classifier, or
``classifier_cg``), each through :class:`ClassifierGuidedDenoiser` and N-step DDIM
exactly as the ``cg-w<S>-s<N>`` banks run (``stages/sample.py``).  Reference rows: the exact
conditional (a fresh draw of q(x | y)), the oracle's conditional denoiser and the CFG teacher's
conditional (w = 0) through the same DDIM, and the unconditional scores alone.  Columns: class
consistency and the hq share (``evaluation/toy.py``).

Measured on the toy (issue 24; teacher_cfg, teacher_pd from ``make run``), consistency / hq at s = 1:
exact conditional 0.990 / 0.990; oracle + exact classifier 0.993 / 0.993; oracle + classifier_cg (300k
samples) 0.911 / 0.970, (1M) 0.985 / 0.986; teacher_cfg's null label + exact classifier 0.211 / 0.211
(its unconditional samples alone: hq 0.224); teacher_pd + exact 0.958 / 0.958, + classifier_cg (1M)
0.949 / 0.950.  The CFG teacher's null label is what broke classifier guidance (params.yaml,
``guidance.eval.classifier_guides``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from trilemma.artifacts import load_model, load_network, load_tensors
from trilemma.diffusion.continuous import CosineLogSNRSchedule, uniform_grid
from trilemma.diffusion.oracle import ExactClassifier, GaussianMixture, OracleDenoiser
from trilemma.evaluation.toy import class_consistency, mode_metrics
from trilemma.sampling.ddim import sample_ddim
from trilemma.sampling.guidance import CFGDenoiser, ClassifierGuidedDenoiser
from trilemma.stages.sample import balanced_labels


def parts(results: Path, classifier_dir: str | None, score_dir: str | None):
    """(mixture, {score name: (denoiser, null label)}, {classifier name: module})."""
    tensors, meta = load_tensors(results / "data" / "gauss25.safetensors")
    mix = GaussianMixture.from_data(tensors, meta)
    teacher, info = load_model(results / "models" / "teacher_cfg")
    oracle = OracleDenoiser(mix, teacher.schedule)
    scores = {"oracle": (oracle, oracle.null_label), "teacher_cfg(null)": (teacher, info["model"]["num_classes"])}
    for extra in [results / "models" / "teacher_pd", score_dir]:   # unconditional models
        if extra and (Path(extra) / "model.json").exists():
            den, sinfo = load_model(extra)
            scores[sinfo["name"]] = (den, None)
    classifiers = {"exact": ExactClassifier(oracle)}
    cdir = Path(classifier_dir) if classifier_dir else results / "models" / "classifier_cg"
    if (cdir / "model.json").exists():
        classifiers[cdir.name] = load_network(cdir)[0]
    return mix, teacher, info, oracle, scores, classifiers


def metrics(x, y, mix) -> tuple[float, float]:
    x = x.double()
    return (class_consistency(x, y, mix.means, mix.labels, mix.std), mode_metrics(x, mix.means, mix.std)["hq"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results/toy")
    p.add_argument("--classifier-dir", default=None, help="default: <results>/models/classifier_cg")
    p.add_argument("--score-dir", default=None, help="an extra unconditional model (e.g. an unconditional teacher)")
    p.add_argument("--scales", default="1,2,4")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--n", type=int, default=2000)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    mix, teacher, info, oracle, scores, classifiers = parts(Path(args.results), args.classifier_dir, args.score_dir)
    y = balanced_labels(args.n, mix.num_classes, "cpu")
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(args.n, 2, generator=g)
    ts = uniform_grid(args.steps)
    run = lambda den, cond=None: sample_ddim(den, x_T, ts, cond=cond, generator=g)   # noqa: E731
    print(f"{'row':<60} {'consistency':>11} {'hq':>6}")
    rows = [("exact conditional (fresh draw)", mix.sample(args.n, g, y)),
            ("oracle conditional, DDIM", run(oracle, {"y": y})),
            ("teacher_cfg conditional (w=0), DDIM", run(CFGDenoiser(teacher, info["model"]["num_classes"]), {"y": y, "w": 0.0}))]
    for name, (den, null) in scores.items():
        rows.append((f"{name} unconditional, DDIM", run(den, None if null is None else {"y": torch.full_like(y, null)})))
    for name, x in rows:
        cc, hq = metrics(x, y, mix)
        print(f"{name:<60} {cc:>11.3f} {hq:>6.3f}")
    for s in (float(v) for v in args.scales.split(",")):
        for sname, (den, null) in scores.items():
            for cname, clf in classifiers.items():
                x = run(ClassifierGuidedDenoiser(den, clf, null), {"y": y, "w": s})
                cc, hq = metrics(x, y, mix)
                print(f"{f'cg s={s:g}: score {sname} + classifier {cname}':<60} {cc:>11.3f} {hq:>6.3f}")


if __name__ == "__main__":
    main()
