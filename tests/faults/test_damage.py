"""Damaged artifacts (issue 20): bytes flipped in, or the tail cut off, a sample bank, a checkpoint
(a published model) and the reference statistics of the toy (the data file: its ``eval`` split is
what every bank is measured against) after a full ci run.  Every consumer fails with one message
naming the file and the command that rebuilds it; DVC sees the change (``dvc status``) and
``dvc repro`` rebuilds the file as it was."""
import random
import re
import shlex

import pytest
import torch

from conftest import run_cmd
from pipeline import built_copy, integrity_problems, same_bank_metrics
from trilemma import cli, config, dag
from trilemma.stages import dvc_yaml
from trilemma.artifacts import load_tensors

BANK = "results/ci/samples/teacher_ddpm/ddim-eta0-uniform-s10.safetensors"
MODEL = "results/ci/models/teacher_ddpm/model.safetensors"
DATA = "results/ci/data/gauss25.safetensors"
# the damaged file -> the DAG job that consumes it here
CONSUMERS = {BANK: "evaluate-teacher_ddpm-ddim-eta0-uniform-s10", MODEL: "sample-teacher_ddpm-ddim-eta0-uniform-s10",
             DATA: "evaluate-teacher_ddpm-ddim-eta0-uniform-s10"}


def flip_bytes(path, rng, n=3):
    data = bytearray(path.read_bytes())
    for _ in range(n):
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))


def truncate(path, rng):
    data = path.read_bytes()
    path.write_bytes(data[:rng.randrange(len(data))])


DAMAGE = {"flip": flip_bytes, "truncate": truncate}


@pytest.fixture
def damaged_repo(built, tmp_path):
    return built_copy(built, tmp_path)


def consumer(name):
    return next(j for j in dag.jobs(config.load("ci")) if j.name == name)


def fails_naming_file_and_rebuild(argv, rel, capsys) -> str:
    """Run a ``trilemma`` verb in-process: it must return 2 with one error line naming ``rel`` and the
    Snakemake command that rebuilds it (no traceback: ``cli.main`` returned)."""
    assert cli.main(list(argv[1:]) + ["--no-progress"] * (argv[1] == "sample")) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert rel in errors[0] and f"--config profile=ci --forcerun {rel}`" in errors[0], errors[0]
    return errors[0]


@pytest.mark.slow
def test_every_consumer_names_the_damaged_file_and_its_rebuild(damaged_repo, monkeypatch, capsys):
    monkeypatch.chdir(damaged_repo)
    rng, n = random.Random(20), 0
    for rel, job in CONSUMERS.items():
        for kind, damage in DAMAGE.items():
            path = damaged_repo / rel
            good = path.read_bytes()
            for _ in range(5 if kind == "flip" else 2):   # several seeded damages of each kind
                damage(path, rng)
                fails_naming_file_and_rebuild(consumer(job).argv, rel, capsys)
                path.write_bytes(good)
                n += 1
    print(f"{n} damaged files (3 artifacts x flip/truncate), each refused by its consumer with the rebuild command")
    # one through the real entry point: exit status 2, the message, no traceback
    path = damaged_repo / BANK
    flip_bytes(path, rng)
    proc = run_cmd(list(consumer(CONSUMERS[BANK]).argv), cwd=damaged_repo, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1 and f"{BANK}: damaged" in proc.stderr


@pytest.mark.faults_long
def test_dvc_sees_the_damage_and_repro_rebuilds(damaged_repo, built):
    """dvc.lock records the Snakemake build (``dvc commit``, as ``make run`` does); a damaged bank is a
    changed output for ``dvc status``, and ``dvc repro`` rebuilds it, equal to the original."""
    repo = damaged_repo
    front = dvc_yaml.front_end("ci", "toy")[0]
    target = dvc_yaml.stage_address(config.load("ci", root=repo), CONSUMERS[BANK])
    run_cmd(["git", "init", "-q"], cwd=repo)
    run_cmd(["dvc", "init", "-q", "-f"], cwd=repo)
    run_cmd(["dvc", "repro", "-q", "--single-item", f"{front}:code"], cwd=repo)   # as make run does
    run_cmd(["dvc", "commit", "-f", "-q", "--with-deps", target], cwd=repo)

    def status():
        return run_cmd(["dvc", "status", "--with-deps", target], cwd=repo).stdout
    assert "up to date" in status()
    flip_bytes(repo / BANK, random.Random(3))
    assert re.search(r"changed outs:\s+modified:\s+" + re.escape(BANK), status())
    run_cmd(["dvc", "repro", "-q", target], cwd=repo)
    assert "up to date" in status()
    (a, _), (b, _) = load_tensors(repo / BANK), load_tensors(built / BANK)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.faults_long
def test_the_named_snakemake_command_rebuilds(damaged_repo, built, capsys, monkeypatch):
    """The command the message names, run as written, rebuilds the damaged bank and what depends on it."""
    monkeypatch.chdir(damaged_repo)
    truncate(damaged_repo / BANK, random.Random(1))
    line = fails_naming_file_and_rebuild(consumer(CONSUMERS[BANK]).argv, BANK, capsys)
    command = shlex.split(re.search(r"`(snakemake [^`]*)`", line)[1].replace("--cores all", "--cores 2"))
    run_cmd(command, cwd=damaged_repo, env={"OMP_NUM_THREADS": "1"})
    assert integrity_problems(damaged_repo / "results/ci") == []
    rel = "results/ci/metrics/teacher_ddpm/ddim-eta0-uniform-s10.json"
    same_bank_metrics(damaged_repo / rel, built / rel)
