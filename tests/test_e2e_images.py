"""The image DAG end to end on the tiny `ci_images` profile (a generated archive in CIFAR-10's format,
8x8 crops, a few updates) through Snakemake, and the same jobs planned by DVC."""
import json

import pandas as pd
import pytest

from conftest import copy_repo, run_cmd
from dagtools import dvc_stages, snakemake_plan, use_profile_as_params

pytestmark = pytest.mark.slow
ONE_THREAD = ["--set-threads", "train=1", "feature_net=1", "reference_stats=1"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dst = copy_repo(tmp_path_factory.mktemp("e2e_images") / "repo")
    run_cmd(["snakemake", "--cores", "2", *ONE_THREAD, "--config", "profile=ci_images"], cwd=dst)
    return dst


def test_image_outputs_and_metrics(built):
    out = built / "results/ci_images"
    for rel in ["metrics.csv", "report.md", "tables/ddim.md", "tables/fast_sampling.md", "figures/fid_vs_time.png",
                "figures/samples.png", "feature_net.json", "reference/cifar10-feature_net.safetensors"]:
        assert (out / rel).stat().st_size > 0, rel
    df = pd.read_csv(out / "metrics.csv")
    assert len(df) == 3 and set(df["method"]) == {"ddpm", "ddim"}
    assert (df["feature_space"] == "feature_net classifier, penultimate layer").all()
    assert df[["fd", "isc", "kid", "precision", "recall"]].notna().all().all()
    assert ((df["isc"] >= 1.0) & (df["isc"] <= 10.0)).all()          # IS over 10 classes lies in [1, 10]
    assert 0.0 <= json.loads((out / "feature_net.json").read_text())["test_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    assert "Feature space of every number below: feature_net classifier" in report and "13.36" in report


def test_image_bank_is_uint8_with_the_profiles_shape(built):
    from trilemma.artifacts import load_tensors
    bank, meta = load_tensors(built / "results/ci_images/samples/teacher_ddpm/ddim-eta0-uniform-s10.safetensors")
    assert bank["samples"].dtype.is_floating_point is False and tuple(bank["samples"].shape) == (64, 3, 8, 8)
    assert meta["nfe"] == 10


def test_second_run_does_nothing_and_metric_settings_rerun_only_evaluation(built):
    assert snakemake_plan(built, profile="ci_images")[0] == {}
    from dagtools import edit_yaml
    prof = built / "config/profiles/ci_images.yaml"
    edit_yaml(prof, lambda c: c["evaluation"]["images"].update(kid_subsets=11))
    counts, _ = snakemake_plan(built, profile="ci_images")
    edit_yaml(prof, lambda c: c["evaluation"]["images"].update(kid_subsets=10))
    assert counts == {"reference_stats": 1, "evaluate": 3, "collect": 1, "report": 1, "all": 1}


def test_snakemake_and_dvc_plan_the_same_image_jobs(repo_copy):
    use_profile_as_params(repo_copy, "ci_images")
    run_cmd(["git", "init", "-q"], cwd=repo_copy)
    counts, sm_jobs = snakemake_plan(repo_copy)
    by_outs = {outs: cmd for _, cmd, outs in dvc_stages(repo_copy)}
    for rule, outs, shell in sm_jobs:
        if rule != "all":
            assert tuple(sorted(outs)) in by_outs and by_outs[tuple(sorted(outs))] in shell, rule
    assert counts == {"fetch_data": 1, "feature_net": 1, "reference_stats": 1, "train": 1, "sample": 3,
                      "evaluate": 3, "collect": 1, "report": 1, "all": 1}
