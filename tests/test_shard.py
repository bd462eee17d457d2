"""Sampling and image evaluation sharded across ranks (issue 7): 2 gloo ranks under torchrun draw the
ci bank the 1-rank run draws (the same tensors, the same metadata but the clock) and compute the
same image metrics JSON as 1 rank, each writing once; ``batch_slice`` cuts whole batches in order."""
import json
import sys

import pytest
import torch

from conftest import copy_repo, needs_unshare, run_cmd, torchrun_cmd
from trilemma import config, paths
from trilemma.artifacts import load_tensors, save_model, save_tensors
from trilemma.training.distributed import Context

ENV = {"OMP_NUM_THREADS": "1"}
CLOCK = ("timing", "time_per_100_s")


@pytest.mark.parametrize("n,bs", [(1, 4), (250, 100), (500, 250), (300, 250), (7, 1)])
@pytest.mark.parametrize("world", [1, 2, 3])   # more ranks than batches: the last ones get none
def test_batch_slices_cover_the_bank_in_order_with_whole_batches(n, bs, world):
    cuts = [Context(r, world).batch_slice(n, bs) for r in range(world)]
    assert cuts[0].start == 0 and cuts[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(cuts, cuts[1:]))
    assert all(c.start % bs == 0 or c.start == c.stop == n for c in cuts)  # whole batches, or none
    batches = [-(-(c.stop - c.start) // bs) for c in cuts]
    assert max(batches) - min(batches) <= 1


def random_model(repo, name: str, section: dict, data_dim) -> str:
    """A model directory with the profile's architecture and random weights: the banks and features
    are compared, not judged, so nothing needs training."""
    from trilemma.models.registry import build_model
    torch.manual_seed(0)
    out = repo / "models" / name
    save_model(out / "model.safetensors", build_model(section["model"], data_dim).state_dict(),
               {"name": name, "method": "ddpm", "model": section["model"], "schedule": section["schedule"],
                "parameterization": "eps", "data_dim": data_dim, "dataset": "gauss25", "seed": 0})
    return str(out)


def one_and_two(repo, argv, out_of):
    """``argv`` (a trilemma verb writing ``out_of(tag)``) run by one process and by two ranks."""
    one = run_cmd([sys.executable, "-m", "trilemma", *argv, "--out", out_of("one")], cwd=repo, env=ENV)
    two = run_cmd(torchrun_cmd(["-m", "trilemma", *argv, "--out", out_of("two")]), cwd=repo, env=ENV)
    assert one.stdout.count("wrote ") == 1 and two.stdout.count("wrote ") == 1, two.stdout  # rank 0 alone writes
    return one, two


@pytest.mark.slow
@needs_unshare
def test_two_ranks_draw_the_one_rank_bank(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    cfg = config.load("ci", root=repo)
    assert -(-cfg["sampling"]["num_samples"] // cfg["sampling"]["batch_size"]) >= 2  # each rank draws
    model = random_model(repo, "teacher_ddpm", cfg["teacher"], 2)
    one_and_two(repo, ["sample", "--profile", "ci", "--model-dir", model, "--spec", "ddpm-beta-s10", "--no-progress"],
                lambda tag: f"{tag}.safetensors")
    (one, one_meta), (two, two_meta) = (load_tensors(repo / f"{t}.safetensors") for t in ("one", "two"))
    assert one["samples"].shape == (cfg["sampling"]["num_samples"], 2)
    assert torch.equal(one["samples"], two["samples"])       # ancestral sampling: noise per batch too
    assert {k: v for k, v in one_meta.items() if k not in CLOCK} == {k: v for k, v in two_meta.items() if k not in CLOCK}


@pytest.mark.slow
@needs_unshare
def test_two_ranks_compute_the_one_rank_image_metrics(tmp_path, monkeypatch):
    """ci_images: a random feature net, the reference statistics, a bank of 250 random images (3
    evaluation batches of 100: rank 0 extracts two, rank 1 one).  The data and the reference are
    made in this process (``cli.main``): the compared runs pay the process starts."""
    from trilemma.cli import main
    from trilemma.models.classifier import build_classifier
    repo = copy_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    cfg = config.load("ci_images", root=repo)
    data = paths.fmt(paths.DATA, profile="ci_images", dataset="cifar10")
    assert main(["fetch-data", "--profile", "ci_images", "--dataset", "cifar10", "--out", data]) == 0
    torch.manual_seed(0)
    net_cfg = cfg["feature_net"]["model"]
    save_model(repo / paths.fmt(paths.FEATURE_NET, profile="ci_images"), build_classifier(net_cfg, 3, 10).state_dict(),
               {"name": "feature_net", "method": "classifier", "model": net_cfg, "data_dim": [3, 8, 8], "num_classes": 10})
    reference = "reference.safetensors"
    assert main(["reference-stats", "--profile", "ci_images", "--data", data, "--out", reference]) == 0
    bank = (torch.rand(250, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    save_tensors(repo / "bank.safetensors", {"samples": bank}, {"kind": "bank", "model": "random", "spec": "none"})
    assert cfg["evaluation"]["images"]["batch_size"] == 100
    one_and_two(repo, ["evaluate", "--profile", "ci_images", "--bank", "bank.safetensors", "--data", data,
                       "--reference", reference], lambda tag: f"{tag}.json")
    one, two = (json.loads((repo / f"{t}.json").read_text()) for t in ("one", "two"))
    assert one == two and one["fd"] > 0
