"""Whole-pipeline kills (issue 20): the laptop sleeps or the Slurm allocation ends in the middle of
a run.  The whole process group (the DAG tool and every job it started) is SIGKILLed at seeded random
moments; after each kill the run is started again the documented way (Snakemake: ``snakemake --unlock``,
then the same command with ``--rerun-incomplete``; DVC: ``dvc repro`` again), and once the kills are spent it runs to
completion.  The results must equal the session's uninterrupted build (``built``) up to the timing
fields, and every artifact must load (no half-written file was kept or consumed).

Short (``make test``): a slice of the ci DAG (the data, the DDPM teacher, two of its banks and their metrics:
6 jobs) killed 5 times.  Long (``make test-faults``): the whole
ci DAG killed 30 times, metrics.csv compared, and ``dvc repro`` of a bank's chain killed 3 times."""
import pytest

from conftest import copy_repo, run_cmd, slurm_ci_targets
from pipeline import artifact_count, integrity_problems, run_with_kills, same_bank_metrics, same_metrics, snakemake_cmd, snakemake_unlock
from trilemma import config
from trilemma.stages import dvc_yaml

ENV = {"OMP_NUM_THREADS": "1"}


# the slice of the short version: two of the teacher's banks' metrics, and what a whole run of it writes
# (the data, the teacher's model, model.json and train_log.jsonl, two banks, two metrics files)
SLICE, SLICE_ARTIFACTS = 2, 8


@pytest.mark.parametrize("kills, whole", [
    pytest.param(5, False, marks=pytest.mark.slow, id="short-slice-5"),
    pytest.param(30, True, marks=pytest.mark.faults_long, id="long-whole-30"),
])
def test_snakemake_survives_kills_of_the_whole_process_group(built, tmp_path, kills, whole):
    repo = copy_repo(tmp_path / "repo")
    targets = [] if whole else [t for t in slurm_ci_targets() if "/teacher_ddpm/" in t][:SLICE]
    total = artifact_count(built / "results/ci") if whole else SLICE_ARTIFACTS
    log = run_with_kills(snakemake_cmd(*targets), repo, kills=kills, seed=20, results=repo / "results/ci", total=total,
                         recover=[snakemake_unlock()], env=ENV, max_pause=2.0 if whole else 0.3)
    print(f"snakemake ({'whole ci DAG' if whole else f'{len(targets)} ci targets'}): {log.summary()}")
    assert len(log.at) == kills and any(log.running_jobs)
    assert "Nothing to be done" in run_cmd(["snakemake", *targets, "-n", "--cores", "2", "--config",
                                            "profile=ci"], cwd=repo).stdout
    assert integrity_problems(repo / "results/ci") == []
    if whole:
        same_metrics(repo / "results/ci/metrics.csv", built / "results/ci/metrics.csv")
    for rel in targets:
        same_bank_metrics(repo / rel, built / rel)


@pytest.mark.parametrize("kills", [pytest.param(3, marks=pytest.mark.faults_long, id="long-3")])
def test_dvc_repro_survives_kills(built, repo_copy, kills):
    """`dvc repro` of one bank's chain (data -> teacher -> bank -> metrics), killed ``kills`` times;
    DVC releases its lock with the process (nothing to unlock) and re-runs the stages whose
    outputs are missing or not in dvc.lock."""
    run_cmd(["git", "init", "-q"], cwd=repo_copy)
    run_cmd(["dvc", "init", "-q", "-f"], cwd=repo_copy)
    bank = "teacher_ddpm/ddim-eta0-uniform-s10"
    target = dvc_yaml.stage_address(config.load("ci", root=repo_copy), "evaluate-" + bank.replace("/", "-"))
    log = run_with_kills(["dvc", "repro", "-q", target], repo_copy, kills=kills, seed=3,
                         results=repo_copy / "results/ci", total=6, env=ENV)   # data, model (3 files), bank, metrics
    print(f"dvc repro: {log.summary()}")
    assert integrity_problems(repo_copy / "results/ci") == []
    same_bank_metrics(repo_copy / f"results/ci/metrics/{bank}.json", built / f"results/ci/metrics/{bank}.json")
    assert run_cmd(["dvc", "status", "-q", "--with-deps", target], cwd=repo_copy, check=False).returncode == 0
