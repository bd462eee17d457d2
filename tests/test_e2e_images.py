"""The image DAG end to end on the tiny `ci_images` profile (a generated archive in CIFAR-10's format,
8x8 crops, a few updates: the DDPM teacher's samplers, a distillation teacher with two rounds 8 -> 4 ->
2 steps, a DDGAN with T = 2, a CFG teacher -> guided stage one -> one stage-two round 4 -> 2 at w = 1)
through Snakemake, and the same jobs planned by DVC."""
import json

import pandas as pd
import pytest
import torch

from conftest import copy_repo, run_cmd
from dagtools import dvc_stages, snakemake_plan

pytestmark = pytest.mark.slow
ONE_THREAD = ["--set-threads", "train=1", "feature_net=1", "reference_stats=1"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dst = copy_repo(tmp_path_factory.mktemp("e2e_images") / "repo")
    run_cmd(["snakemake", "--cores", "2", *ONE_THREAD, "--config", "profile=ci_images"], cwd=dst)
    return dst


def test_image_outputs_and_metrics(built):
    out = built / "results/ci_images"
    for rel in ["metrics.csv", "report.md", "tables/ddim.md", "tables/fast_sampling.md", "tables/distillation.md",
                "tables/ddgan.md", "tables/guidance.md", "figures/fid_vs_time.png", "figures/fid_vs_steps.png", "figures/samples.png",
                "figures/distillation_cost.png", "feature_net.json", "reference/cifar10-feature_net.safetensors",
                *[f"{kind}/deck_{study}.{ext}" for study in ("inversion", "consistency", "interpolation")
                  for kind, ext in (("tables", "md"), ("figures", "png"))]]:
        assert (out / rel).stat().st_size > 0, rel
    assert "## DDIM inversion (DDIM Table 2 layout)" in (out / "report.md").read_text()   # issue 19 on images
    df = pd.read_csv(out / "metrics.csv")
    assert len(df) == 14 and set(df["method"]) == {"ddpm", "ddim", "pd", "ddgan", "cfg", "guided_pd", "cd",
                                                   "data", "shuffled_pixels", "blurred_data"}
    # the floor (held-out images) scores far below the shuffled-pixel ceiling, through the same metric
    ref = df[df["model"] == "data"].set_index("method")
    assert ref.loc["data", "fd"] < ref.loc["shuffled_pixels", "fd"] and ref.loc["data", "precision"] > 0.5
    assert "Held-out real images (floor)" in (out / "tables/references.md").read_text()
    assert df["class_min_share"].between(0, 1).all()      # the profile's classifier: every bank's class shares
    pd_rows = df[df["method"] == "pd"].set_index("model")
    assert pd_rows["nfe"].to_dict() == {"pd_s4": 4, "pd_s2": 2} and pd_rows["round"].to_dict() == {"pd_s4": 1, "pd_s2": 2}
    assert set(df[df["model"] == "teacher_pd"]["spec"]) == {"ddim-eta0-uniform-s2"}
    gan = df[df["method"] == "ddgan"].iloc[0]
    assert (gan["model"], gan["steps"], gan["nfe"]) == ("ddgan_t2_seed0", 2, 2)
    assert (df["feature_space"] == "feature_net classifier, penultimate layer").all()
    assert df[["fd", "isc", "kid", "precision", "recall"]].notna().all().all()
    assert ((df["isc"] >= 1.0) & (df["isc"] <= 10.0)).all()          # IS over 10 classes lies in [1, 10]
    assert 0.0 <= json.loads((out / "feature_net.json").read_text())["test_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    assert "Feature space of every number below: feature_net classifier" in report and "13.36" in report
    assert "## Progressive distillation" in report and "## Denoising Diffusion GAN" in report
    assert "4.08" in (out / "tables/ddgan.md").read_text()              # the paper's T = 2 FID beside ours
    assert "4.51" in (out / "tables/distillation.md").read_text()       # the paper's 2-step FID beside ours
    # consistency distillation on the U-Net (pseudo-Huber), 2 steps beside PD's 2-step student, with its bill
    cd = df[df["method"] == "cd"].iloc[0]
    assert (cd["model"], cd["nfe"], cd["train_teacher_evals"], cd["train_updates"]) == ("cd", 2, 5 * 16, 5)
    assert "2.93" in (out / "tables/distillation.md").read_text()       # the CM paper's 2-step CD FID beside ours


def test_guidance_rows_and_table_on_images(built):
    out = built / "results/ci_images"
    df = pd.read_csv(out / "metrics.csv")
    g = df[df["method"].isin(["cfg", "guided_pd"])].set_index("spec")
    # the CFG teacher at its reference steps and at the student's steps (2 NFE per step), the student at 1
    assert g["model"].to_dict() == {"cfg-w1-s8": "teacher_cfg", "cfg-w1-s2": "teacher_cfg", "gpd-w1-s2": "guided_s2"}
    assert g["nfe"].to_dict() == {"cfg-w1-s8": 16, "cfg-w1-s2": 4, "gpd-w1-s2": 2}
    assert (g["w"] == 1.0).all() and g[["fd", "isc", "kid", "precision", "recall"]].notna().all().all()
    assert g["fd_to_teacher"].isna().all()   # 2-D profiles only
    # the requested class under the profile's classifier (evaluation/classes.py)
    assert g[["class_consistency", "class_confidence"]].apply(lambda c: c.between(0, 1)).all().all()
    table = (out / "tables/guidance.md").read_text()
    assert "CFG teacher at 8 steps, guided student at 2 steps" in table and "**FID, w × steps**" in table
    assert f"{g.loc['gpd-w1-s2', 'fd']:.4g}" in table
    assert "## Classifier-free guidance and guided distillation" in (out / "report.md").read_text()
    from trilemma.artifacts import load_model
    _, info = load_model(built / "results/ci_images/models/guided_s2")
    assert info["method"] == "guided_pd" and info["model"]["unet"]["w_cond"] and info["model"]["num_classes"] == 10


@pytest.mark.parametrize("bank, nfe", [("teacher_ddpm/ddim-eta0-uniform-s10", 10), ("pd_s2/pd-s2", 2),
                                       ("ddgan_t2_seed0/ddgan-s2", 2), ("guided_s2/gpd-w1-s2", 2)])
def test_image_bank_is_uint8_with_the_profiles_shape(built, bank, nfe):
    from trilemma.artifacts import load_tensors
    samples, meta = load_tensors(built / f"results/ci_images/samples/{bank}.safetensors")
    assert samples["samples"].dtype == torch.uint8 and tuple(samples["samples"].shape) == (64, 3, 8, 8)
    assert meta["nfe"] == nfe


def test_second_run_does_nothing_and_metric_settings_rerun_only_evaluation(built):
    assert snakemake_plan(built, profile="ci_images")[0] == {}
    from dagtools import edit_yaml
    prof = built / "config/profiles/ci_images.yaml"
    edit_yaml(prof, lambda c: c["evaluation"]["images"].update(kid_subsets=11))
    counts, _ = snakemake_plan(built, profile="ci_images")
    edit_yaml(prof, lambda c: c["evaluation"]["images"].update(kid_subsets=10))
    assert counts == {"reference_stats": 1, "evaluate": 14, "collect": 1, "guidance_table": 1, "report": 1, "all": 1}


def test_snakemake_and_dvc_plan_the_same_image_jobs(repo_copy):
    run_cmd(["git", "init", "-q"], cwd=repo_copy)
    counts, sm_jobs = snakemake_plan(repo_copy, profile="ci_images")
    by_outs = {outs: cmd for _, cmd, outs in dvc_stages(repo_copy, "pipelines/ci_images/dvc.yaml")}
    for rule, outs, shell in sm_jobs:
        if rule != "all":
            assert tuple(sorted(outs)) in by_outs and by_outs[tuple(sorted(outs))] in shell, rule
    assert counts == {"fetch_data": 1, "feature_net": 1, "reference_stats": 1, "train": 4, "distill": 4,
                      "guided_stage1": 1, "sample": 14, "evaluate": 14, "collect": 1, "guidance_table": 1,
                      "deck": 3, "report": 1, "all": 1}
