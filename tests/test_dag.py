"""The two front-ends describe one DAG: same stages, same outputs, same commands."""
import yaml

from conftest import REPO, run_cmd
from dagtools import dvc_stages, snakemake_plan, use_profile_as_params
from trilemma import config, dag
from trilemma.stages.dvc_yaml import render


def test_committed_dvc_yaml_is_generated_from_the_dag():
    expected = render(config.load(root=REPO), ["params.yaml"])
    assert (REPO / "dvc.yaml").read_text() == expected, "dvc.yaml drifted: run `make dvc.yaml`"


def test_snakemake_and_dvc_plan_the_same_jobs(repo_copy):
    use_profile_as_params(repo_copy, "ci")
    run_cmd(["git", "init", "-q"], cwd=repo_copy)
    counts, sm_jobs = snakemake_plan(repo_copy)
    stages = dvc_stages(repo_copy)
    sm = [(rule, tuple(sorted(outs)), shell) for rule, outs, shell in sm_jobs if rule != "all"]
    assert len(sm) == len(stages) == sum(counts.values()) - 1
    by_outs = {outs: (name, cmd) for name, cmd, outs in stages}
    for rule, outs, shell in sm:
        assert outs in by_outs, f"snakemake job {rule} {outs} has no DVC stage"
        name, cmd = by_outs[outs]
        assert name.split("-")[0] == rule
        assert cmd in shell, f"{rule}: DVC runs `{cmd}`, snakemake `{shell}`"
    assert counts == {"fetch_data": 1, "train": 2, "distill": 2, "sample": 14, "evaluate": 14, "collect": 1,
                      "report": 1, "all": 1}


def test_dvc_params_point_at_config_keys():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    cfg = config.load(root=REPO)
    for name, stage in stages.items():
        for group in stage.get("params", []):
            for key in group["params.yaml"]:
                config.section(cfg, key)  # raises KeyError if the key does not exist
    assert stages["report"]["params"] == [{"params.yaml": ["report"]}]
    assert "sampling.ddim.eta" not in str(stages)  # the grid is in commands, not per-job params


def test_code_is_a_dependency_at_the_right_grain():
    jobs = {j.name: j for j in dag.jobs(config.load(root=REPO))}
    train = jobs["train-teacher_ddpm"].deps
    ddim = jobs["sample-teacher_ddpm-ddim-eta0-uniform-s10"].deps
    ddpm = jobs["sample-teacher_ddpm-ddpm-beta-s10"].deps
    report = jobs["report"].deps
    assert "src/trilemma/models/mlp.py" in train and "src/trilemma/sampling/ddim.py" not in train
    assert "src/trilemma/sampling/ddim.py" in ddim and "src/trilemma/sampling/ddim.py" not in ddpm
    assert "src/trilemma/reporting/figures.py" in report and "src/trilemma/reporting/figures.py" not in ddim
    for job in jobs.values():
        for dep in job.deps:
            if dep.startswith("src/"):
                assert (REPO / dep).is_file(), f"{job.name}: code dependency {dep} does not exist"
