"""Data parallelism in the image training verbs (issue 7).  With ``resources.<rule>.gpu: 2`` in the
ci_images profile, ``trilemma train`` (the PD teacher's U-Net; a DDGAN, generator and
discriminator with an optimizer each) and ``trilemma distill`` (a PD round) re-launch
themselves as two gloo ranks under torchrun and reach the weights of the 1-rank run with the same
global batch; each rank's networks see half of every global batch (``rank_batches/sitecustomize.py``
records it) and draw dropout masks from their own seed, and rank 0 alone writes.  And every training job of the ci and ci_images DAGs passes the
GPU count of the rule that runs it to ``launch``.

Tolerance: Adam divides each gradient component by its running RMS, so a float-rounding difference
(the ranks sum their halves' gradients in another order than one process sums the whole batch) in a
component that is nearly zero can move that weight by up to one learning rate per step.  Measured on
this machine: at most 0.03 lr (PD teacher), 0.004 lr (PD round) and 0.24 lr (DDGAN's G); the bound is
one learning rate of the published module's optimizer, absolute.  The breakages the test is there to
catch were measured by breaking the code and running these tests (then reverting): gradients not
averaged, 17 / 5.7 / 21 lr (teacher / round / DDGAN); D's gradients alone not averaged, 16 lr on G;
each rank drawing its own batches, 17 lr (teacher); the official strided minibatch-stddev groups,
3.4 lr (DDGAN).  A rank computing the whole batch instead of its slice (the DDGAN task unsharded)
reaches the same weights and is caught by the batch sizes its networks see."""
import json
import os
import sys
from pathlib import Path

import pytest

from conftest import REPO, copy_repo, needs_unshare, private_namespace, run_cmd
from dagtools import edit_yaml
from trilemma import cli, config, dag, paths
from trilemma.artifacts import load_tensors

PROFILE = "ci_images"
DATA = paths.fmt(paths.DATA, profile=PROFILE, dataset="cifar10")
PROBE = REPO / "tests" / "rank_batches"   # its sitecustomize records the batch sizes each rank's networks see


def verb(repo: Path, argv: list[str], out: str, ranks: int, rule: str):
    """``trilemma <argv> --out <out>/model.safetensors`` with ``resources.<rule>.gpu: ranks`` in the
    profile: one process, or (ranks 2) the verb re-launching itself under torchrun in a private
    network namespace.  Returns (weights, {rank: {module: batch sizes seen}}, the process)."""
    def gpus(cfg):
        cfg["resources"] = {rule: {"gpu": ranks, "runtime": 30, "mem_mb": 2000, "threads": 1}}
    edit_yaml(repo / "config/profiles" / f"{PROFILE}.yaml", gpus)
    probe = repo / f"{out}-batches"
    cmd = [sys.executable, "-m", "trilemma", *argv, "--profile", PROFILE, "--out", f"{out}/model.safetensors"]
    env = {"OMP_NUM_THREADS": "1", "RANK_BATCHES_DIR": str(probe),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROBE), os.environ.get("PYTHONPATH")]))}
    proc = run_cmd(private_namespace(cmd) if ranks > 1 else cmd, cwd=repo, env=env, timeout=300)
    assert proc.stdout.count("wrote ") == 1 and f"wrote {out}/model.safetensors" in proc.stdout, proc.stdout
    seen = {int(f.stem.removeprefix("rank")): json.loads(f.read_text()) for f in probe.glob("rank*.json")}
    return load_tensors(repo / out / "model.safetensors")[0], seen, proc


def compare(one: dict, two: dict, lr: float) -> float:
    """max |one - two| over all weights, in learning rates; at most 1 (see the module's docstring)."""
    assert one.keys() == two.keys()
    ratios = {k: (one[k] - two[k]).abs().max().item() / lr for k in one}
    worst = max(ratios, key=ratios.get)
    assert ratios[worst] <= 1.0, (worst, ratios[worst])
    return ratios[worst]


def one_and_two(repo, argv, name, rule, batch):
    """The 1-rank and the 2-rank run of ``argv``; checks the batch each rank's networks saw."""
    one, seen_one, _ = verb(repo, argv, f"one/{name}", 1, rule)
    two, seen_two, proc = verb(repo, argv, f"two/{name}", 2, rule)
    assert set(seen_one) == {0}
    assert all(sizes == [batch] for sizes in seen_one[0]["batches"].values()), seen_one
    # each rank's networks see its half of every global batch, never the whole batch
    assert set(seen_two) == {0, 1}
    assert all(seen_two[r]["batches"] == {m: [batch // 2] for m in seen_one[0]["batches"]} for r in (0, 1)), seen_two
    # dropout masks: rank 0 keeps the 1-rank seed, rank 1 draws its own (not the same masks twice)
    assert seen_two[0]["torch_seed"] == seen_one[0]["torch_seed"] != seen_two[1]["torch_seed"], (seen_one, seen_two)
    return one, two


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A repository copy with the ci_images data."""
    repo = copy_repo(tmp_path_factory.mktemp("ddp-images") / "repo")
    run_cmd(["trilemma", "fetch-data", "--profile", PROFILE, "--dataset", "cifar10", "--out", DATA], cwd=repo)
    return repo


@pytest.fixture(scope="module")
def pd_teacher(repo):
    """The PD teacher (rule ``train``, 30 updates of 32 images) by 1 and by 2 ranks."""
    cfg = config.load(PROFILE, root=repo)
    argv = ["train", "--model", "teacher_pd", "--data", DATA, "--no-progress"]
    return cfg, *one_and_two(repo, argv, "teacher_pd", "train", cfg["distill"]["teacher"]["train"]["batch_size"])


@pytest.mark.slow
@needs_unshare
def test_two_ranks_train_the_one_rank_pd_teacher(repo, pd_teacher):
    cfg, one, two = pd_teacher
    print("teacher_pd: max |diff| / lr", compare(one, two, cfg["distill"]["teacher"]["train"]["lr"]))
    log = (repo / "two/teacher_pd/train_log.jsonl").read_text().splitlines()
    assert '"samples_seen": 960' in log[-1]      # the global batch, not 2x


@pytest.mark.slow
@needs_unshare
def test_two_ranks_train_the_one_rank_pd_round(repo, pd_teacher):
    """A PD round 8 -> 4 steps (rule ``distill``, 5 updates of 16) from the 1-rank teacher."""
    cfg = pd_teacher[0]
    argv = ["distill", "--chain", "distill", "--teacher-dir", "one/teacher_pd", "--steps", "4",
            "--data", DATA, "--no-progress"]
    one, two = one_and_two(repo, argv, "pd_s4", "distill", cfg["distill"]["rounds"]["batch_size"])
    print("pd_s4: max |diff| / lr", compare(one, two, config.section(cfg, dag.round_key(cfg, "lr", 4, "distill"))))


@pytest.mark.slow
@needs_unshare
def test_two_ranks_train_the_one_rank_ddgan(repo):
    """The DDGAN T = 2 on images (20 steps of 32 images; D and G each with its optimizer, both
    averaged; minibatch-stddev groups within a rank's half)."""
    cfg = config.load(PROFILE, root=repo)
    argv = ["train", "--model", "ddgan_t2_seed0", "--data", DATA, "--no-progress"]
    one, two = one_and_two(repo, argv, "ddgan", "train", cfg["ddgan"]["train"]["batch_size"])
    print("ddgan: max |diff| / lr", compare(one, two, cfg["ddgan"]["train"]["lr_g"]))   # the weights are G's


class Launched(Exception):
    pass


RULES = {"train": 2, "distill": 3, "guided_stage1": 4}


@pytest.mark.parametrize("profile", ["ci", PROFILE])
def test_every_training_job_launches_with_the_gpus_of_its_rule(profile, monkeypatch):
    """Each training job of the DAG (Job.stage is the Snakemake rule that runs it) asks ``launch``
    for ``resources.<rule>.gpu`` with its own command line, before it reads any data.  The toy's GAN
    baselines and DDGANs train in one process (``stages/train_gan.py``)."""
    import importlib
    load, load_typed = config.load, config.load_typed

    def with_gpus(name=None, root="."):
        cfg = load_typed(name, root=REPO).plain()
        cfg["resources"] = {"default": cfg["resources"]["default"],
                            **{r: {**cfg["resources"]["default"], "gpu": n} for r, n in RULES.items()}}
        return cfg

    def launch(gpus, argv):
        raise Launched(gpus, argv)

    monkeypatch.setattr(config, "load_typed", lambda name=None, root=".": config.typed(with_gpus(name, root)))
    for module in ("train", "train_gan", "distill", "guided_stage1", "consistency"):
        monkeypatch.setattr(importlib.import_module(f"trilemma.stages.{module}"), "launch", launch)
    cfg = load(profile, root=REPO)
    jobs = [j for j in dag.jobs(cfg) if j.stage in RULES
            and not (dag.is_2d(cfg) and paths.parse_gan_model(Path(j.outs[0]).parent.name))
            and j.argv[1] != "oracle"]   # the toy's exact denoiser (issue 24) is written, not trained
    assert {j.stage for j in jobs} == set(RULES) and len(jobs) >= 6
    verbs = set()
    for job in jobs:
        monkeypatch.setattr(sys, "argv", list(job.argv))
        with pytest.raises(Launched) as launched:
            cli.main(list(job.argv[1:]))
        assert launched.value.args == (RULES[job.stage], list(job.argv[1:])), job.name
        verbs.add(job.argv[1])
    assert verbs == {"train", "distill", "guided-stage1", "consistency-distill"}   # one verb per method (issue 16)
