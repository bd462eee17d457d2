"""The two front-ends describe one DAG: same stages, same outputs, same commands."""
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, run_cmd
from dagtools import dvc_front_end, dvc_stages, snakemake_plan
from trilemma import config, dag, paths
from trilemma.stages import collect, dvc_yaml

PROFILES = dvc_yaml.profiles(REPO)


def test_every_profile_has_a_dvc_front_end_generated_from_the_dag():
    assert PROFILES == ["toy", "ci", "ci_images", "cifar10", "fashion", "fashion_small"]
    for profile in PROFILES:
        for path, text in dvc_yaml.render_profile(profile, REPO).items():
            assert (REPO / path).read_text() == text, f"{path} drifted: run `make dvc.yaml`"
    assert len((REPO / "dvc.yaml").read_text().splitlines()) < 400   # issue 17: a dvc.yaml a reviewer can read


def test_dvc_stages_are_the_dag_jobs():
    """DVC's own reading of every front-end (templates resolved over the grid) gives each job of the
    DAG: its command, outputs, config keys, and inputs (data, the job's code file, the profile file)."""
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        parsed = list(repo.index.stages)
    for profile in PROFILES:
        cfg = config.load(profile, root=REPO)
        files = [config.params_file(profile)]
        front_end = dvc_front_end(profile)
        stages = {s.addressing.split(":")[-1]: s for s in parsed if s.path_in_repo == front_end}
        code = stages.pop("code")
        assert code.cmd == f"trilemma dvc-code --profile {profile} --out results/{profile}/code"
        by_outs = {tuple(sorted(o.def_path for o in s.outs)): s for s in stages.values()}
        jobs = dag.jobs(cfg)
        assert len(jobs) == len(stages)
        for job in jobs:
            stage = by_outs[tuple(sorted(job.outs + job.committed))]
            assert stage.cmd == job.shell
            params = [k for d in stage.deps if hasattr(d, "params") for k in d.params]
            assert sorted(params) == sorted(job.params) and all(d.def_path == files[0] for d in stage.deps
                                                                if hasattr(d, "params"))
            for key in params:
                config.section(cfg, key)  # raises KeyError if the key does not exist
            deps = [d.def_path for d in stage.deps if not hasattr(d, "params")]
            inputs = [d for d in job.deps if not d.startswith(dag.PKG)]
            if job.stage == "collect":   # every bank's metrics: the directory of them
                assert {str(Path(d).parent.parent) for d in inputs} == {f"results/{profile}/metrics"}
                inputs = [f"results/{profile}/metrics"]
            assert deps == inputs + [f"results/{profile}/code/{job.name}.md5"] + files[1:], job.name
            assert stage.addressing.split(":")[-1].split("@")[0].split("-")[0] == job.stage
    report = next(s for s in parsed if s.addressing == "report")
    assert [k for d in report.deps if hasattr(d, "params") for k in d.params] == list(dag.REPORT_PARAMS)


def test_code_files_list_each_jobs_own_modules(tmp_path):
    """The DVC stage of a job depends on the job's code file, which lists the md5 of its modules only."""
    from trilemma.stages import dvc_code

    jobs = {j.name: j for j in dag.jobs(config.load(root=REPO))}
    ddim = dvc_code.stamp(jobs["sample-teacher_ddpm-ddim-eta0-uniform-s10"])
    assert "src/trilemma/sampling/ddim.py" in ddim and "src/trilemma/sampling/ddpm.py" not in ddim
    assert all(len(line.split("  ")[0]) == 32 for line in ddim.splitlines())


@pytest.mark.parametrize("profile", PROFILES)
def test_snakemake_and_dvc_plan_the_same_jobs(repo_copy, profile):
    """Every profile, GPU ones included, at dry-run level: each Snakemake job is one DVC stage of the
    profile's front-end, with the same outputs and command (DVC has one more stage: ``code``)."""
    run_cmd(["git", "init", "-q"], cwd=repo_copy)
    # --forceall: the whole DAG whatever the copy's file times (the toy's committed tables and report may be
    # newer than its code, and Snakemake then plans nothing for their missing, gitignored inputs)
    counts, sm_jobs = snakemake_plan(repo_copy, "--forceall", profile=profile)
    stages = [s for s in dvc_stages(repo_copy, dvc_front_end(profile)) if s[0] != "code"]
    sm = [(rule, tuple(sorted(outs)), shell) for rule, outs, shell in sm_jobs if rule != "all"]
    assert len(sm) == len(stages) == sum(counts.values()) - 1
    by_outs = {outs: (name, cmd) for name, cmd, outs in stages}
    for rule, outs, shell in sm:
        assert outs in by_outs, f"snakemake job {rule} {outs} has no DVC stage"
        name, cmd = by_outs[outs]
        assert name.split("@")[0].split("-")[0] == rule
        assert cmd in shell, f"{rule}: DVC runs `{cmd}`, snakemake `{shell}`"
    if profile == "ci":   # distill: the 2 PD rounds, the guided round and consistency distillation (cd, issue 18)
        assert counts == {"fetch_data": 1, "train": 8, "distill": 4, "guided_stage1": 1, "sample": 20, "evaluate": 20,
                          "collect": 1, "deck": 4, "report": 1, "all": 1}


def test_dvc_metrics_and_plots_diff_between_two_commits(repo_copy):
    """`dvc metrics diff HEAD~1` prints the changed headline numbers (headline.json, written by
    `trilemma collect`) and `dvc plots diff` draws FD against time from both commits' metrics.csv."""
    cfg = config.load("ci", root=REPO)
    rows = [{"model": paths.Bank.parse(b).model, "spec": paths.Bank.parse(b).spec, "fd": 0.5, "fd_ci": 0.01, "precision": 0.9,
             "recall": 0.8, "modes": 25, "hq": 0.7, "nfe": 10, "time_per_100_s": 0.02}
            for b in cfg["report"]["fast_sampling"]]
    out = repo_copy / "results/ci"
    out.mkdir(parents=True, exist_ok=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run_cmd(["git", "init", "-q"], cwd=repo_copy)
    run_cmd(["dvc", "init", "-q", "-f"], cwd=repo_copy)
    for fd in (0.5, 0.25):
        rows[0]["fd"] = fd
        df = pd.DataFrame(rows)
        df.to_csv(out / "metrics.csv", index=False)
        (out / "headline.json").write_text(json.dumps(collect.headline(cfg["report"]["fast_sampling"], df)))
        run_cmd(["git", "add", "-A"], cwd=repo_copy)
        run_cmd([*git, "commit", "-qm", f"fd {fd}"], cwd=repo_copy)
    bank = cfg["report"]["fast_sampling"][0]
    diff = run_cmd(["dvc", "metrics", "diff", "HEAD~1"], cwd=repo_copy).stdout
    line = next(line for line in diff.splitlines() if f"{bank}.fd " in line)
    assert line.split()[-3:] == ["0.5", "0.25", "-0.25"], diff
    assert f"{bank}.hq" not in diff   # unchanged numbers are not listed
    show = run_cmd(["dvc", "metrics", "show", "--json"], cwd=repo_copy).stdout
    assert f'"{bank}": {{"fd": 0.25' in show.replace("\n", "") or '"fd": 0.25' in show
    plots = json.loads(run_cmd(["dvc", "plots", "diff", "HEAD~1", "--json"], cwd=repo_copy).stdout)
    fd_vs_time = plots["data"]["pipelines/ci/dvc.yaml::fd_vs_time"][0]
    assert sorted(fd_vs_time["revisions"]) == ["HEAD~1", "workspace"]
    points = fd_vs_time["content"]["data"]["values"]
    assert {(p["rev"], float(p["fd"])) for p in points} >= {("HEAD~1", 0.5), ("workspace", 0.25)}


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


@pytest.mark.parametrize("profile", ["toy", "ci", "ci_images", "cifar10"])
def test_ids_round_trip_through_their_one_parse(profile):
    """Issue 16: a bank id <model>/<spec> and a student id <chain prefix>_s<N> are built and split in one
    place each (paths.Bank, dag_base.student / parse_student); every id of a profile's grid round-trips."""
    cfg = config.load(profile, root=REPO)
    for bank_id in dag.bank_ids(cfg) + list(cfg["report"]["sample_panels"]):
        bank = paths.Bank.parse(bank_id)
        assert bank.id == bank_id and paths.Bank(bank.model, bank.spec) == bank
    for chain in dag.CHAIN_PREFIX:
        for n in dag.student_steps(cfg, chain):
            assert dag.parse_student(dag.student(n, chain)) == (chain, n)
    for other in (dag.TEACHER, dag.PD_TEACHER, "pd_s", "pd_sx", "guided_w", "ddgan_t4_seed0", "xpd_s4"):
        assert dag.parse_student(other) is None, other
    for bad in ("teacher_ddpm", "a/b/c", "/ddim", "teacher_ddpm/"):
        with pytest.raises(ValueError):
            paths.Bank.parse(bad)


def test_dvc_exp_run_on_a_grid_key_stops_until_the_front_end_is_regenerated(repo_copy):
    """A new DDIM step count is a new job: DVC templates cannot derive it (README, "DVC"), so
    `dvc exp run -S` on a grid key stops at the `code` stage, before any job runs, and says what to run;
    after `make dvc.yaml` (trilemma dvc-yaml --all) the grid holds the new jobs."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run_cmd(["git", "init", "-q"], cwd=repo_copy)
    run_cmd(["dvc", "init", "-q", "-f"], cwd=repo_copy)
    run_cmd(["git", "add", "-A"], cwd=repo_copy)
    run_cmd([*git, "commit", "-qm", "base"], cwd=repo_copy)
    steps = "sampling.ddim.steps=[10,20,50,100,200,1000]"
    exp = run_cmd(["dvc", "exp", "run", "-S", steps], cwd=repo_copy, check=False)
    assert exp.returncode != 0
    assert "Running stage 'code'" in exp.stdout and "Running stage 'fetch_data" not in exp.stdout
    assert "Run `make dvc.yaml`" in exp.stdout + exp.stderr
    cfg = config.load(root=repo_copy)   # the -S value is in the workspace's params.yaml
    assert cfg["sampling"]["ddim"]["steps"] == [10, 20, 50, 100, 200, 1000]
    run_cmd(["trilemma", "dvc-yaml", "--all"], cwd=repo_copy)
    grid = (repo_copy / "pipelines/toy/grid.yaml").read_text()
    assert "teacher_ddpm-ddim-eta0-uniform-s200:" in grid and "oracle-ddim-eta0-uniform-s200:" in grid
    assert (repo_copy / "dvc.yaml").read_text() == (REPO / "dvc.yaml").read_text()   # only the grid grew
