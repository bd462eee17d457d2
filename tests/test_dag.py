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
    # distill: the 2 PD rounds, the guided round and consistency distillation (cd, issue 18)
    assert counts == {"fetch_data": 1, "train": 8, "distill": 4, "guided_stage1": 1, "sample": 20, "evaluate": 20,
                      "collect": 1, "deck": 4, "report": 1, "all": 1}


def test_dvc_params_point_at_config_keys():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    cfg = config.load(root=REPO)
    for name, stage in stages.items():
        for group in stage.get("params", []):
            for key in group["params.yaml"]:
                config.section(cfg, key)  # raises KeyError if the key does not exist
    assert stages["report"]["params"] == [{"params.yaml": list(dag.REPORT_PARAMS)}]   # tests/test_config_audit.py
    assert "sampling.ddim.eta" not in str(stages)  # the grid is in commands, not per-job params


def test_code_is_a_dependency_at_the_right_grain():
    jobs = {j.name: j for j in dag.jobs(config.load(root=REPO))}
    train = jobs["train-teacher_ddpm"].deps
    ddim = jobs["sample-teacher_ddpm-ddim-eta0-uniform-s10"].deps
    ddpm = jobs["sample-teacher_ddpm-ddpm-beta-s100"].deps
    report = jobs["report"].deps
    assert "src/trilemma/models/mlp.py" in train and "src/trilemma/sampling/ddim.py" not in train
    assert "src/trilemma/sampling/ddim.py" in ddim and "src/trilemma/sampling/ddim.py" not in ddpm
    assert "src/trilemma/reporting/figures.py" in report and "src/trilemma/reporting/figures.py" not in ddim
    for job in jobs.values():
        for dep in job.deps:
            if dep.startswith("src/"):
                assert (REPO / dep).is_file(), f"{job.name}: code dependency {dep} does not exist"


def test_gan_jobs_one_per_T_and_seed_with_code_at_the_right_grain():
    cfg = config.load(root=REPO)
    jobs = {j.name: j for j in dag.jobs(cfg)}
    teachers = ("train-teacher_ddpm", "train-teacher_pd", "train-teacher_cfg", "train-classifier_cg", "train-oracle")
    trains = sorted(n for n in jobs if n.startswith("train-") and n not in teachers)
    # the T ablation with ablation_seeds (3) seeds each (issue 15: one GAN seed carries no conclusion)
    assert trains == sorted([f"train-ddgan_t{t}_seed{s}" for t in (1, 2, 4, 8) for s in (0, 1, 2)] + [
                             "train-gan_seed0", "train-gan_seed1", "train-gan_seed2",
                             "train-wgan_gp_seed0", "train-wgan_gp_seed1", "train-wgan_gp_seed2"])
    teacher, ddgan = jobs["train-teacher_ddpm"].deps, jobs["train-ddgan_t4_seed0"].deps
    assert "src/trilemma/training/tasks/gan.py" in ddgan and "src/trilemma/training/tasks/gan.py" not in teacher
    assert "src/trilemma/models/gan.py" not in teacher
    assert "ddgan.train" in jobs["train-gan_seed1"].params and "seed" not in jobs["train-gan_seed1"].params
    assert "ddgan.baselines.wgan_gp" in jobs["train-wgan_gp_seed0"].params
    assert "ddgan.baselines.wgan_gp" not in jobs["train-ddgan_t4_seed0"].params
    dd_sample, gan_sample = jobs["sample-ddgan_t4_seed0-ddgan-s4"].deps, jobs["sample-gan_seed0-gan"].deps
    assert "src/trilemma/sampling/ddgan.py" in dd_sample and "src/trilemma/sampling/ddgan.py" not in gan_sample
    assert "src/trilemma/sampling/gan.py" in gan_sample
    assert "src/trilemma/sampling/ddgan.py" not in jobs["sample-teacher_ddpm-ddpm-beta-s100"].deps
    for bank in dag.gan_bank_ids(cfg):
        assert f"results/toy/metrics/{bank}.json" in jobs["collect"].deps
    assert "results/toy/tables/ddgan.md" in jobs["report"].committed
