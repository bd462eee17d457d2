"""Divergence (issue 20): a NaN or inf injected into the loss at a chosen step (the test-only hook
``TRILEMMA_FAULT_NONFINITE``, training/loop.py) of a toy teacher, a progressive-distillation round and
a GAN.  The job stops with one message naming the model, the step and the last good checkpoint,
publishes nothing, keeps the last good resume state and exits non-zero; under Snakemake
``--keep-going`` the rest of the DAG still finishes."""
import pytest
import torch

from conftest import run_cmd
from dagtools import snakemake_plan
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


def downstream(cfg, name: str) -> set[str]:
    """The DAG jobs that depend on job ``name`` (directly or not), itself included."""
    jobs = dag.jobs(cfg)
    down, outs = {name}, set(next(j for j in jobs if j.name == name).outs)
    changed = True
    while changed:
        changed = False
        for j in jobs:
            if j.name not in down and outs & set(j.deps):
                down.add(j.name)
                outs |= set(j.outs)
                changed = True
    return down


@pytest.mark.faults_long
def test_keep_going_finishes_the_rest_of_the_dag(built, tmp_path):
    """The PD teacher re-trained (``--forcerun``) on a copy of the session's build, with the 8-step round
    diverging: Snakemake reports that job and finishes every job that does not depend on it (the
    teacher, the 16-step round, their banks); the dry run afterwards plans only the round's dependants."""
    repo = built_copy(built, tmp_path)
    proc = run_cmd([*snakemake_cmd(), "--keep-going", "--forcerun", "results/ci/models/teacher_pd/model.safetensors"],
                   cwd=repo, check=False, timeout=1800, env={**ENV, FAULT_ENV: "pd_s8@15"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "[distill pd_s8] diverged: nan distill loss at step 15" in out
    cfg = config.load("ci", root=repo)
    _, planned = snakemake_plan(repo, profile="ci")
    by_out = {o: j.name for j in dag.jobs(cfg) for o in j.outs}
    planned_jobs = {by_out[outs[0]] for rule, outs, _ in planned if outs and outs[0] in by_out}
    assert planned_jobs == downstream(cfg, "distill-pd_s8")
    rerun = downstream(cfg, "train-teacher_pd") - planned_jobs
    assert {"train-teacher_pd", "distill-pd_s16"} <= rerun
    print(f"--keep-going: {len(rerun)} jobs finished beside the diverged round; {len(planned_jobs)} depend on it")
