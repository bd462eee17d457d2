"""The one training-stage runner (issue 16; ``training/runner.py``): every training job of the ci and
ci_images DAGs goes through it, and under torchrun only rank 0 publishes.

Each training job of the DAG runs in-process with the loop replaced by a stub that returns the
networks' initial weights (the runner's bookkeeping is what is tested, not the training): first as
rank 0, in DAG order, which publishes each model (the teachers the next jobs read), then again as a
fake rank 1 into fresh paths, which must write nothing: no weights, no model.json, no training log,
no feature_net summary.  On the code before the runner the GAN stage (``stages/train_gan.py``) and
the feature net (``stages/feature_net.py``) saved their models without the rank check; this test
fails there on gan_seed0, wgan_gp_seed0, ddgan_t*_seed* and feature_net."""
from pathlib import Path

import pytest

from conftest import copy_repo
from trilemma import cli, config, dag
from trilemma.training import runner
from trilemma.training.bill import BILL_KEYS
from trilemma.training.distributed import Context

TRAINING_RULES = ("train", "distill", "guided_stage1", "feature_net")
PROFILES = ("ci", "ci_images")


def untrained(task, loop_cfg, *, seed, resume_dir, fingerprint, progress, desc):
    """The loop's stand-in: the networks' initial weights; a distillation bill of zeros."""
    if getattr(task, "bill", None) is not None:
        task.bill.update({k: 0 for k in BILL_KEYS})
    return {name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in task.modules.items()}


def training_jobs(profile: str) -> list[dag.Job]:
    return [j for j in dag.jobs(config.load(profile)) if j.stage in TRAINING_RULES and j.argv[1] != "oracle"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A repository copy with the data of both profiles and every training job published by rank 0
    (through the stub loop), in DAG order."""
    repo = copy_repo(tmp_path_factory.mktemp("runner") / "repo")
    mp = pytest.MonkeyPatch()
    mp.chdir(repo)
    mp.setattr(runner, "train", untrained)
    published = {}
    for profile in PROFILES:
        cfg = config.load(profile)
        fetch = next(j for j in dag.jobs(cfg) if j.stage == "fetch_data")
        assert cli.main(list(fetch.argv[1:])) == 0
        for job in training_jobs(profile):
            assert cli.main(list(job.argv[1:])) == 0, job.name
            published[(profile, job.name)] = all(Path(o).exists() for o in job.outs + job.committed)
    yield repo, published
    mp.undo()


def job_ids():
    return [(p, j.name) for p in PROFILES for j in training_jobs(p)]


def test_every_training_verb_is_covered():
    verbs = {j.argv[1] for p in PROFILES for j in training_jobs(p)}
    assert verbs == {"train", "distill", "guided-stage1", "consistency-distill", "feature-net"}
    models = {j.name for j in training_jobs("ci")}
    assert {"train-teacher_ddpm", "train-teacher_pd", "train-teacher_cfg", "train-classifier_cg", "train-gan_seed0",
            "train-wgan_gp_seed0", "train-ddgan_t2_seed0", "distill-cd", "guided_stage1-guided_w"} <= models


@pytest.mark.parametrize("profile,name", job_ids(), ids=[f"{p}-{n}" for p, n in job_ids()])
def test_only_rank_zero_publishes(workspace, monkeypatch, profile, name):
    repo, published = workspace
    assert published[(profile, name)], f"rank 0 did not publish {name}"
    monkeypatch.chdir(repo)
    monkeypatch.setattr(runner, "train", untrained)
    monkeypatch.setattr(runner, "context", lambda: Context(rank=1, world=2))
    calls = []
    publish = runner.publish
    monkeypatch.setattr(runner, "publish", lambda *a: calls.append(a[0]) or publish(*a))
    job = next(j for j in training_jobs(profile) if j.name == name)
    argv, fresh = list(job.argv[1:]), []
    for flag in ("--out", "--summary"):   # fresh output paths: rank 1 must leave them empty
        if flag in argv:
            i = argv.index(flag) + 1
            argv[i] = str(Path("rank1", name, Path(argv[i]).name))
            fresh.append(Path(argv[i]))
    assert cli.main(argv) == 0
    assert calls == [argv[argv.index("--out") + 1]]            # the job went through the runner's publish
    assert not Path("rank1", name).exists() or not any(Path("rank1", name).iterdir()), list(Path("rank1", name).iterdir())
    assert not any(f.exists() for f in fresh)
