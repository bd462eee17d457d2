"""Divergence (issue 20): a NaN or inf injected into the loss at a chosen step (the test-only hook
``TRILEMMA_FAULT_NONFINITE``, training/loop.py) of a toy teacher, a progressive-distillation round and
a GAN.  The job stops with one message naming the model, the step and the last good checkpoint,
publishes nothing, keeps the last good resume state and exits non-zero; under Snakemake
``--keep-going`` the rest of the DAG still finishes."""
import time

import pytest
import torch

from conftest import run_cmd
from pipeline import built_copy, snakemake_cmd
from trilemma import config, dag
from trilemma.artifacts import load_state, load_tensors
from trilemma.training.loop import FAULT_ENV

ENV = {"OMP_NUM_THREADS": "1"}
# (DAG job, fault spec, what the message says, the step of the last good checkpoint); ci profile
CASES = [
    ("train-teacher_ddpm", "teacher_ddpm@120", "[train teacher_ddpm] diverged: nan denoise loss at step 120", 100),
    ("distill-pd_s4", "pd_s4@25=inf", "[distill pd_s4] diverged: inf distill loss at step 25", 20),
    ("train-gan_seed0", "gan_seed0@17:G=-inf", "[train gan_seed0] diverged: -inf G loss at step 17", 10),
]


def job(name):
    return next(j for j in dag.jobs(config.load("ci")) if j.name == name)


@pytest.mark.slow
def test_injected_non_finite_loss_stops_the_job_with_one_message(built, tmp_path):
    repo = built_copy(built, tmp_path)
    for name, spec, message, saved in CASES:
        j = job(name)
        out = repo / j.outs[0]
        model = j.outs[0].split("/")[-2]
        out.unlink()
        out.with_name("model.json").unlink()
        proc = run_cmd(list(j.argv) + ["--no-progress"], cwd=repo, check=False, env={**ENV, FAULT_ENV: spec})
        errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
        assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
        state = f"results/ci/.resume/{model}/state.pt"
        assert errors[0] == (f"trilemma {j.argv[1]}: error: {message}; nothing published; the last good checkpoint "
                             f"is step {saved}, kept in {state} (a re-run resumes from it)")
        assert not out.exists() and not out.with_name("model.json").exists()
        kept = load_state(repo / state)
        assert kept["step"] == saved
        assert all(torch.isfinite(v).all() for m in kept["modules"].values() for v in m.values())
    print(f"NaN/inf injected into {len(CASES)} job kinds: {', '.join(c[0] for c in CASES)}")

    # the kept state is the last good one: without the fault, a re-run resumes from it and publishes
    # the weights of the uninterrupted run
    j = job("train-teacher_ddpm")
    resumed = run_cmd(list(j.argv) + ["--no-progress"], cwd=repo, env=ENV)
    assert "resuming from step 100" in resumed.stderr
    (a, _), (b, _) = (load_tensors(root / j.outs[0]) for root in (repo, built))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def outputs(j) -> set[str]:
    return set(j.outs) | set(j.committed)


def downstream(cfg, name: str) -> set[str]:
    """The DAG jobs that depend on job ``name`` (directly or not), itself included."""
    jobs = dag.jobs(cfg)
    down, outs = {name}, outputs(next(j for j in jobs if j.name == name))
    changed = True
    while changed:
        changed = False
        for j in jobs:
            if j.name not in down and outs & set(j.deps):
                down.add(j.name)
                outs |= outputs(j)
                changed = True
    return down


@pytest.mark.faults_long
def test_keep_going_finishes_the_rest_of_the_dag(built, tmp_path):
    """The PD teacher re-trained (``--forcerun``) on a copy of the session's build, with the second
    distillation round (8 -> 4 steps) diverging: Snakemake reports that job, and every job downstream of
    the teacher that does not depend on the round (the first round, the teacher's and the first round's
    banks) is rebuilt; the round's dependants are left as they were, and the round publishes nothing."""
    repo = built_copy(built, tmp_path)
    start = time.time()
    time.sleep(1.1)   # mtimes below are compared with ``start``
    proc = run_cmd([*snakemake_cmd(), "--keep-going", "--forcerun", "results/ci/models/teacher_pd/model.safetensors"],
                   cwd=repo, check=False, timeout=1800, env={**ENV, FAULT_ENV: "pd_s4@25"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "[distill pd_s4] diverged: nan distill loss at step 25" in out
    cfg = config.load("ci", root=repo)
    jobs = {j.name: j for j in dag.jobs(cfg)}
    blocked = downstream(cfg, "distill-pd_s4")
    rest = downstream(cfg, "train-teacher_pd") - blocked
    assert {"train-teacher_pd", "distill-pd_s8", "evaluate-pd_s8-pd-s8"} <= rest
    rebuilt = {name for name in rest if all((repo / o).stat().st_mtime > start for o in outputs(jobs[name]))}
    assert rebuilt == rest
    assert not any((repo / o).exists() for o in outputs(jobs["distill-pd_s4"]))
    assert all((repo / o).stat().st_mtime < start for name in blocked - {"distill-pd_s4"} for o in outputs(jobs[name]))
    print(f"--keep-going: {len(rest)} jobs rebuilt beside the diverged round; {len(blocked) - 1} depend on it, left as they were")
