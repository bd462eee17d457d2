"""``trilemma <verb>``: one entry point; each verb is one box of the DAG (``trilemma.stages.*``).

Snakemake rules and DVC stages call these verbs with the same arguments; arguments carry paths and
wildcard values only, hyperparameters come from the one config (``config/profiles/<profile>.yaml`` over its defaults).
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import sys

from trilemma.jobclock import JobClock   # first: its clock starts with the process

VERBS = {
    "check-config": ("check_config", "validate the configuration of a profile and print its jobs"),
    "config": ("show_config", "print a profile's resolved configuration (--schema: the JSON schema; --write: the generated files)"),
    "fetch-data": ("fetch_data", "generate or fetch a dataset into a safetensors file"),
    "train": ("train", "train a model with the shared training loop (resumes after a kill)"),
    "distill": ("distill", "one progressive-distillation round: an N-step student from a 2N-step model"),
    "share-model": ("share_model", "a trained network under a second model name (the CFG teacher as the PD teacher)"),
    "consistency-distill": ("consistency", "consistency distillation (Song et al. 2023) of the distillation teacher"),
    "guided-stage1": ("guided_stage1", "guided distillation stage one: a w-conditioned student of the CFG teacher"),
    "guidance-table": ("guidance_table", "image profiles: tables/guidance.md from metrics.csv (FID/IS per w and steps)"),
    "feature-net": ("feature_net", "image profiles: train the feature-space classifier, record its test accuracy"),
    "reference-stats": ("reference_stats", "image profiles: features and FID statistics of the real images"),
    "oracle": ("oracle", "register the exact denoiser of the toy's Gaussian mixture as a model (issue 24)"),
    "deck-study": ("deck_study", "one study of DDIM as a map or DDGAN's true denoising distribution (issue 19)"),
    "sample": ("sample", "draw a sample bank with one sampler spec, counting NFE and timing it"),
    "floor": ("floor", "2-D profiles: a fresh draw of the data, the size of a bank (every metric's floor)"),
    "evaluate": ("evaluate", "compute the metrics of one sample bank against the evaluation data"),
    "collect": ("collect", "gather every bank's metrics into metrics.csv"),
    "report": ("report", "write the tables, figures and report.md from metrics.csv"),
    "dvc-yaml": ("dvc_yaml", "generate the DVC front-ends (dvc.yaml, pipelines/<profile>/) from the DAG table"),
    "dvc-code": ("dvc_code", "the DVC front-end's code stage: one file of module hashes per job"),
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``verb``'s module is imported (verbs import torch, pandas, ...)."""
    parser = argparse.ArgumentParser(
        prog="trilemma",
        description="Fast-sampling diffusion experiments as a cached DAG. Normally run through "
                    "`snakemake --cores all` or `dvc repro`, which call these verbs.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, (module, help_text) in VERBS.items():
        if name != verb:
            sub.add_parser(name, help=help_text)
            continue
        mod = importlib.import_module(f"trilemma.stages.{module}")
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--profile", default=None,
                       help="profile name: config/profiles/<name>.yaml composed over its defaults (default: toy)")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def keep_freed_memory() -> None:
    """Let glibc keep freed blocks of up to 32 MiB (its maximum) instead of unmapping them.

    A sampler step allocates activations of a few MiB (10,000 rows x 128 floats on the toy); glibc
    serves blocks that large with mmap and returns them on free, so every step page-faults them in
    again.  Measured on the toy's 1000-step DDPM bank (2-core sandbox): 30.6 s wall of which 7.3 s
    system time, 25.2 s and 1.0 s with this.  Results are unchanged; a C library other than glibc
    is left alone."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3   # <malloc.h>
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 1 << 30)


def quick_exit(code: int) -> None:
    """End the command without the interpreter's teardown of its modules, after the ``atexit``
    handlers (logging's flush among them) and a flush of stdout and stderr.

    Tearing down the thousands of modules and objects that ``import torch`` creates costs about
    0.4 CPU-s per process (2-core sandbox, ``import torch`` alone: 1.57 CPU-s, 1.17 with this),
    paid by each of the ~280 jobs of ``make run``.  Every output is written and renamed into place
    before this point.  Not under torchrun (``WORLD_SIZE`` set): the ranks end as torch expects."""
    import atexit

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if os.environ.get("WORLD_SIZE") or run_exitfuncs is None:
        return
    run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """``argv`` None: the ``trilemma`` command, run by the job server's worker when a local Snakemake
    run has one (``trilemma/jobserver.py``), else here; it ends through :func:`quick_exit`.  A list:
    a call from Python (tests), which returns."""
    if argv is None:
        if os.environ.get("TRILEMMA_JOBSERVER"):
            from trilemma import jobserver
            code = jobserver.delegate(sys.argv[1:])
            if code is not None:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        return command(sys.argv[1:])
    return _main(argv, as_command=False)


def command(argv: list[str]) -> int:
    """``trilemma *argv`` as a command: ends the process (:func:`quick_exit`) once the verb is done."""
    return _main(argv, as_command=True)


def _main(argv: list[str], as_command: bool) -> int:
    from trilemma.config import ConfigError
    from trilemma.errors import ArtifactError   # not trilemma.artifacts: that imports torch

    verb = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(verb if verb in VERBS else None).parse_args(argv)
    keep_freed_memory()
    clock = JobClock(args.verb)
    clock.started()
    try:
        result = args._run(args)
    except (ConfigError, ArtifactError, FloatingPointError) as exc:  # FloatingPointError: training diverged
        print(f"trilemma {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    clock.report()   # one line in the job's log: start-up vs compute (bench/toy_budget.py)
    if as_command:
        quick_exit(int(result or 0))
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
