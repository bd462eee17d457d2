"""Two runs at once (issue 20): a second Snakemake run on the same directory while one is running
refuses clearly (Snakemake's lock, .snakemake/locks) and does not disturb the first, which finishes
with the same results as the session's build."""
import subprocess
import time

import pytest

from conftest import run_cmd, tool_env
from pipeline import built_copy, integrity_problems, same_metrics, snakemake_cmd

BANK = "results/ci/samples/teacher_ddpm/ddpm-beta-s10.safetensors"


@pytest.mark.slow
def test_second_run_refuses_and_the_first_finishes(built, tmp_path):
    repo = built_copy(built, tmp_path)
    first_cmd = [*snakemake_cmd(), "--forcerun", BANK]   # the bank, its metrics, the tables and report
    log = tmp_path / "first.log"
    with open(log, "w") as fh:
        first = subprocess.Popen(first_cmd, cwd=repo, env=tool_env({"OMP_NUM_THREADS": "1"}), stdout=fh,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    locks = repo / ".snakemake/locks"
    deadline = time.time() + 120
    while not (locks.is_dir() and any(locks.iterdir())) and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert first.poll() is None, "the first run ended before the second could start"
    second = run_cmd(snakemake_cmd(), cwd=repo, check=False, timeout=120)
    assert first.poll() is None, "the first run ended before the second was refused: make it longer"
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    assert first.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert "Nothing to be done" in run_cmd(["snakemake", "-n", "--cores", "2", "--config", "profile=ci"], cwd=repo).stdout
    assert integrity_problems(repo / "results/ci") == []
    same_metrics(repo / "results/ci/metrics.csv", built / "results/ci/metrics.csv")
