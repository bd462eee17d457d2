"""The real DAG end to end on the tiny `ci` profile, through Snakemake and through DVC, with the
incremental-rebuild promises checked by each tool's own dry run / status."""
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import TIMING_FIELDS, run_cmd, tool_env, signal_when_ready, slurm_ci_targets, slurm_usable
from dagtools import edit_yaml, snakemake_plan

pytestmark = pytest.mark.slow

COLUMNS = ["method", "model", "sampler", "steps", "nfe", "time_per_100_s", "fd", "precision", "recall", "modes", "hq"]


def test_outputs_and_metrics(built):
    out = built / "results/ci"
    for rel in ["metrics.csv", "report.md", "tables/ddim.md", "tables/fast_sampling.md", "tables/ddgan.md",
                "tables/guidance.md", "figures/fid_vs_time.png", "figures/samples.png", "figures/guidance_tradeoff.png",
                "figures/trilemma.png", "tables/error_split.md", "figures/error_split.png", "figures/distillation_cost.png",
                *[f"{kind}/deck_{study}.{ext}" for study in ("inversion", "consistency", "interpolation", "denoising")
                  for kind, ext in (("tables", "md"), ("figures", "png"))]]:
        assert (out / rel).stat().st_size > 0, rel
    df = pd.read_csv(out / "metrics.csv")
    assert list(df.columns[:len(COLUMNS)]) == COLUMNS
    assert set(df["method"]) == {"ddpm", "ddim", "pf_ode", "pd", "stochastic", "ddgan", "gan", "wgan_gp",
                                 "cfg", "classifier_guidance", "guided_pd", "data", "cd"}
    assert len(df) == 20
    assert df[df["model"] == "oracle"]["spec"].tolist() == ["ddim-eta0-uniform-s10"]   # the exact denoiser (issue 24)
    assert "**Solver error: the oracle" in (out / "tables/error_split.md").read_text()
    assert "## DDIM inversion (DDIM Table 2 layout)" in (out / "report.md").read_text()   # issue 19 (dag_deck.py)
    # the floor (a fresh draw of the data) at each bank size, and every metric's 95% interval
    assert sorted(df[df["method"] == "data"]["num_samples"]) == [300, 500]
    assert df[["fd_ci", "hq_ci", "nll_ci", "coverage_jsd_ci", "precision_ci"]].notna().all().all()
    assert df["feature_space"].str.startswith("random Fourier features").all()
    pd_rows = df[df["method"] == "pd"].sort_values("steps")
    assert pd_rows["steps"].tolist() == [4, 8] and pd_rows["round"].tolist() == [2, 1]
    assert (pd_rows["nfe"] == pd_rows["steps"]).all()
    assert set(df[df["model"] == "teacher_pd"]["steps"]) == {4}
    gans = df[df["method"].isin(["ddgan", "gan", "wgan_gp"])].set_index("method")
    assert gans.loc["ddgan", "nfe"] == gans.loc["ddgan", "steps"] == 2
    assert (gans.loc[["gan", "wgan_gp"], "nfe"] == 1).all() and (gans["train_seed"] == 0).all()
    assert "paper FID (CIFAR-10)" in (out / "tables/ddgan.md").read_text()
    ddim10 = df[(df["method"] == "ddim") & (df["steps"] == 10)]
    assert (ddim10["nfe"] == 10).all()
    heun = df[df["spec"] == "pf_ode-heun-s10"]
    assert int(heun["nfe"].iloc[0]) == 21
    sampled = df[df["method"] != "data"]   # the floor is drawn, not sampled: no clock
    assert (sampled["time_per_100_s"] > 0).all() and sampled["device"].str.startswith("cpu").all()
    report = (out / "report.md").read_text()
    assert "DDIM Table 1" in report and "13.36" in report  # the paper's numbers, in their own table
    dist = (out / "tables/distillation.md").read_text()
    assert "paper PD FID (CIFAR-10)" in dist and "2.57" in dist and "Headline, 4 steps" in dist
    assert (out / "figures/fid_vs_steps.png").stat().st_size > 0
    # consistency distillation beside PD at 4 steps, and the distillation bill (issue 18)
    cd = df[df["method"] == "cd"].iloc[0]
    assert cd["spec"] == "cd-s4" and cd["nfe"] == 4 and cd["num_samples"] == 300
    assert cd["train_teacher_evals"] == 20 * 100 and cd["train_updates"] == 20   # one teacher pass per example
    pd4, pd8 = (df[df["model"] == m].iloc[0] for m in ("pd_s4", "pd_s8"))
    assert pd8["train_teacher_evals"] == 2 * 20 * 100 and pd4["train_teacher_evals"] == 2 * 30 * 100
    assert pd4["train_cumulative_teacher_evals"] == 2 * 50 * 100 and pd4["train_cumulative_updates"] == 50
    model_json = json.loads((out / "models/cd/model.json").read_text())
    assert model_json["bill"]["teacher_evals"] == 2000 and model_json["bill"]["wall_s"] > 0
    assert "### The distillation bill" in dist and "CD vs PD (fd)" in dist and "| guided_s2 " in dist


def test_second_run_does_nothing(built):
    counts, _ = snakemake_plan(built, profile="ci")
    assert counts == {}


def test_report_setting_reruns_only_the_report(built):
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["report"].update(dpi=61))
    counts, _ = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["report"].update(dpi=60))
    assert counts == {"report": 1, "deck": 4, "all": 1}   # the deck studies draw their figures at report.dpi


def test_sample_count_reruns_sampling_not_training(built):
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["sampling"].update(num_samples=400))
    counts, _ = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["sampling"].update(num_samples=500))
    assert counts == {"sample": 10, "evaluate": 10, "collect": 1, "report": 1, "all": 1}  # 8 banks, the oracle's, 1 floor


def test_feature_bandwidth_reruns_only_evaluation_and_report(built):
    """The headline feature map is part of the evaluation's cache key, and of nothing upstream."""
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c.setdefault("evaluation", {}).update(features={"bandwidth": 3.0}))
    counts, _ = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["evaluation"].pop("features"))
    # every bank's evaluation (19), and the denoising study (its distance is the headline one)
    assert counts == {"evaluate": 20, "deck": 1, "collect": 1, "report": 1, "all": 1}


def test_gan_training_setting_retrains_only_the_gans(built):
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["ddgan"]["train"].update(samples=5000))
    counts, jobs = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["ddgan"]["train"].update(samples=6000))
    # the DDGAN, the 2 baselines, their banks, and the denoising study (it reads the DDGAN generator)
    assert counts == {"train": 3, "sample": 3, "evaluate": 3, "deck": 1, "collect": 1, "report": 1, "all": 1}
    assert not any("teacher_ddpm" in outs[0] for rule, outs, _ in jobs if rule != "all")


def test_cd_setting_reruns_cd_and_its_banks_only(built):
    """A consistency-distillation hyperparameter re-trains cd and re-draws its bank; a re-noising time re-draws it."""
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["consistency"]["train"].update(lr=2e-3))
    counts, jobs = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["consistency"]["train"].pop("lr"))
    assert counts == {"distill": 1, "sample": 1, "evaluate": 1, "collect": 1, "report": 1, "all": 1}
    assert all("/cd/" in outs[0] or "/cd-" in outs[0] for rule, outs, _ in jobs if rule in ("distill", "sample", "evaluate"))
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["sampling"]["cd"].update(tau={"s4": [0.6, 0.4, 0.2]}))
    counts, _ = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["sampling"]["cd"].pop("tau"))
    assert counts == {"sample": 1, "evaluate": 1, "collect": 1, "report": 1, "all": 1}


def test_new_ddgan_T_runs_only_its_jobs(built):
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["ddgan"].update(steps=[1, 2]))
    counts, jobs = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["ddgan"].update(steps=[2]))
    assert counts == {"train": 1, "sample": 1, "evaluate": 1, "collect": 1, "report": 1, "all": 1}
    assert all("ddgan_t1_seed0" in outs[0] for rule, outs, _ in jobs if rule in ("train", "sample", "evaluate"))


def test_new_ddim_step_runs_only_new_jobs(built):
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["sampling"]["ddim"].update(steps=[10, 50]))
    counts, jobs = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["sampling"]["ddim"].update(steps=[10]))
    assert counts == {"sample": 3, "evaluate": 3, "collect": 1, "report": 1, "all": 1}   # 2 teacher banks, 1 oracle
    assert all("-s50" in outs[0] for rule, outs, _ in jobs if rule in ("sample", "evaluate"))


@pytest.mark.parametrize("path,expected", [
    ("src/trilemma/reporting/figures.py", {"report": 1, "all": 1}),
    ("src/trilemma/sampling/ddim.py", {"distill": 4, "sample": 11, "evaluate": 11, "collect": 1, "deck": 3, "report": 1,
                                      "all": 1}),
    ("src/trilemma/models/mlp.py", {"train": 4, "distill": 4, "guided_stage1": 1, "sample": 18, "evaluate": 18,
                                    "collect": 1, "deck": 4, "report": 1, "all": 1}),
    ("src/trilemma/training/tasks/distill.py", {"distill": 3, "sample": 4, "evaluate": 4, "collect": 1,
                                                "deck": 1, "report": 1, "all": 1}),
    ("src/trilemma/sampling/ddgan.py", {"train": 1, "sample": 1, "evaluate": 1, "collect": 1, "deck": 1, "report": 1,
                                       "all": 1}),
    ("src/trilemma/diffusion/consistency.py", {"distill": 1, "sample": 1, "evaluate": 1, "collect": 1, "report": 1,
                                               "all": 1}),
    ("src/trilemma/models/gan.py", {"train": 3, "sample": 3, "evaluate": 3, "collect": 1, "deck": 1, "report": 1, "all": 1}),
])
def test_code_edits_rerun_what_they_affect(built, path, expected):
    f = built / path
    original = f.read_text()
    f.write_text(original + "\n# an edit\n")
    try:
        counts, _ = snakemake_plan(built, profile="ci")
    finally:
        f.write_text(original)
    assert counts == expected


def runners(logs: Path) -> set[str]:
    """How the jobs whose logs are under ``logs`` ran (their timing lines' ``runner``)."""
    from trilemma.jobclock import parse
    found = [parse(f.read_text(errors="replace")) for f in logs.rglob("*.log")]
    return {t.get("runner", "process") for t in found if t is not None}


def test_dvc_repro_builds_the_same_artifacts_and_tracks_changes(built, repo_copy):
    """`dvc repro` of one bank's chain (data -> teacher -> sample -> evaluate) through the ci profile's
    DVC front-end (pipelines/ci/dvc.yaml) on a fresh copy builds the same artifacts as Snakemake did,
    byte for byte up to the timing, and DVC then tracks param changes at the stage grain.  DVC runs
    stages one at a time, so the whole DAG is left to the plan-equality test (tests/test_dag.py),
    which checks that both tools run the same commands for every profile."""
    from trilemma.artifacts import load_tensors
    run_cmd(["git", "init", "-q"], cwd=repo_copy)
    run_cmd(["dvc", "init", "-q", "-f"], cwd=repo_copy)
    bank = "teacher_ddpm/ddim-eta0-uniform-s10"
    front, name = "pipelines/ci/dvc.yaml", "evaluate@" + bank.replace("/", "-")
    target = f"{front}:{name}"
    run_cmd(["dvc", "repro", "-q", target], cwd=repo_copy, timeout=1200)
    # Snakemake's local jobs ran in job-server workers (trilemma/jobserver.py), DVC's as plain processes:
    # the byte-for-byte comparison below is also the server's against a fresh process
    assert runners(built / "results/ci/logs") == {"jobserver"} and "TRILEMMA_JOBSERVER" not in tool_env()
    for rel in ["models/teacher_ddpm/model.safetensors", f"samples/{bank}.safetensors"]:
        (a, meta_a), (b, meta_b) = load_tensors(built / "results/ci" / rel), load_tensors(repo_copy / "results/ci" / rel)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), rel
    timing = TIMING_FIELDS
    metrics = [json.loads((root / f"results/ci/metrics/{bank}.json").read_text()) for root in (built, repo_copy)]
    assert [{k: v for k, v in m.items() if k not in timing} for m in metrics] == [
        {k: v for k, v in metrics[0].items() if k not in timing}] * 2

    def changed():   # the stages `dvc status` lists, less `code` (it reads the whole config: cheap, outputs unchanged)
        out = json.loads(run_cmd(["dvc", "status", "--json", "--with-deps", target], cwd=repo_copy).stdout)
        return {k.split(":")[-1] for k in out} - {"code"}
    assert changed() == set()
    assert f"Stage '{target}' didn't change" in run_cmd(["dvc", "repro", target], cwd=repo_copy).stdout
    params = repo_copy / "pipelines/ci/params.yaml"   # the ci profile's resolved values, which DVC reads
    generated = params.read_text()
    edit_yaml(params, lambda c: c["evaluation"].update(hq_num_std=2.5))
    assert changed() == {name}
    params.write_text(generated)
    edit_yaml(params, lambda c: c["sampling"].update(num_samples=400))
    assert changed() == {"sample@" + bank.replace("/", "-")}  # evaluate follows once the bank changes
    params.write_text(generated)

    # README's way to change a hyperparameter: `dvc exp run -S key=value` re-runs only what reads it
    run_cmd(["git", "add", "-A"], cwd=repo_copy)
    run_cmd(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], cwd=repo_copy)
    assert changed() == set()
    exp = run_cmd(["dvc", "exp", "run", "-S", "pipelines/ci/params.yaml:evaluation.hq_num_std=2.0", target],
                  cwd=repo_copy).stdout
    assert f"Running stage '{target}'" in exp and f"Running stage '{front}:sample" not in exp
    assert f"Running stage '{front}:train" not in exp
    after = json.loads((repo_copy / f"results/ci/metrics/{bank}.json").read_text())
    assert after["hq"] <= metrics[1]["hq"] and after["fd"] == metrics[1]["fd"]


@pytest.mark.skipif(not slurm_usable(), reason="needs root, unshare, slurm-wlm and munge (.ci/run installs them)")
def test_slurm_executor_reproduces_the_local_results(built, slurm_ci_run):
    """A slice of the ci DAG (``conftest.slurm_ci_targets``: a teacher and its banks, a distillation
    chain and its students' banks) through a real one-node Slurm (tests/slurm/onenode.sh) and
    Snakemake's Slurm executor plugin, started at session start: every metric equal to the local
    run's, up to the timing fields."""
    out = slurm_ci_run.wait(timeout=1500)
    assert out.count("SLURM jobid") >= 3  # the jobs really went through sbatch
    assert runners(slurm_ci_run.cwd / "results/ci/logs") == {"process"}   # no job server off the local executor
    targets = slurm_ci_targets()
    assert len(targets) >= 5
    timing = TIMING_FIELDS
    for rel in targets:
        local, slurm = (json.loads((root / rel).read_text()) for root in (built, slurm_ci_run.cwd))
        assert {k: v for k, v in slurm.items() if k not in timing} == {k: v for k, v in local.items() if k not in timing}, rel


# ----------------------------------------------------------------------------- progressive distillation
def test_last_round_updates_rerun_only_that_round(built):
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["distill"]["rounds"]["updates"].update(s4=31))
    counts, jobs = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["distill"]["rounds"]["updates"].update(s4=30))
    # the round, its student's bank, and the inversion study (it inverts the students)
    assert counts == {"distill": 1, "sample": 1, "evaluate": 1, "deck": 1, "collect": 1, "report": 1, "all": 1}
    assert [outs[0] for rule, outs, _ in jobs if rule == "distill"] == ["results/ci/models/pd_s4/model.safetensors"]


def test_final_steps_4_to_2_adds_one_round_and_its_evaluation(built):
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["distill"].update(final_steps=2))
    counts, jobs = snakemake_plan(built, profile="ci")
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["distill"].update(final_steps=4))
    # the new round, its student bank and the DDIM + stochastic baselines at 2 steps
    assert counts == {"distill": 1, "sample": 3, "evaluate": 3, "collect": 1, "report": 1, "all": 1}
    assert all("s2" in outs[0] for rule, outs, _ in jobs if rule in ("distill", "sample", "evaluate"))


def test_killed_round_resumes(built):
    edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["distill"]["rounds"]["updates"].update(s4=800))
    cmd = ["trilemma", "distill", "--profile", "ci", "--teacher-dir", "results/ci/models/pd_s8", "--steps", "4",
           "--data", "results/ci/data/gauss25.safetensors", "--out", "killed/model.safetensors", "--no-progress"]
    state = built / "results/ci/.resume/pd_s4/state.pt"
    try:
        signal_when_ready(cmd, built, state.exists, env={"OMP_NUM_THREADS": "1"})
        assert state.exists() and not (built / "killed/model.safetensors").exists()
        resumed = run_cmd(cmd, cwd=built, env={"OMP_NUM_THREADS": "1"})
    finally:
        edit_yaml(built / "config/profiles/ci.yaml", lambda c: c["distill"]["rounds"]["updates"].update(s4=30))
    assert "resuming from step" in resumed.stderr
    assert int(resumed.stderr.split("resuming from step ")[1].split()[0]) > 0
    log = (built / "killed/train_log.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["step"] == 800 and not state.exists()
    assert json.loads((built / "killed/model.json").read_text())["round"] == 2
