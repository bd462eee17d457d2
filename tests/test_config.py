"""The one config: validation errors name the key and what is allowed, before any job starts."""
import copy

import pytest
import yaml

from conftest import REPO, run_cmd
from trilemma import config, dag


def base():
    return config.load(root=REPO)


def test_base_and_ci_profiles_validate():
    assert base()["profile"] == "toy"
    ci = config.load("ci", root=REPO)
    assert ci["profile"] == "ci" and ci["sampling"]["num_samples"] == 500
    assert ci["teacher"]["schedule"] == base()["teacher"]["schedule"]  # deep merge keeps the rest


def expect_error(mutate, *fragments):
    cfg = copy.deepcopy(base())
    mutate(cfg)
    with pytest.raises(config.ConfigError) as err:
        config.validate(cfg)
    for f in fragments:
        assert f in str(err.value), str(err.value)


def test_unknown_key_names_key_and_allowed():
    expect_error(lambda c: c["teacher"]["train"].update(lr_warmup=3), "teacher.train", "lr_warmup", "batch_size")


def test_negative_step_count():
    expect_error(lambda c: c["sampling"]["ddim"].update(steps=[10, -5]), "sampling.ddim.steps.1", "too small")


def test_unknown_sampler():
    expect_error(lambda c: c["sampling"].update(dpm_solver={"steps": [10]}), "sampling", "dpm_solver", "ddim")


def test_missing_dataset():
    expect_error(lambda c: c["data"].update(name="mnist"), "data.name", "mnist", "gauss25")


def test_steps_beyond_T_and_unknown_panel():
    expect_error(lambda c: c["sampling"]["ddpm"].update(steps=[2000]), "exceed teacher.schedule.num_steps")
    expect_error(lambda c: c["report"].update(sample_panels=["teacher_ddpm/ddim-eta0.3-uniform-s7"]),
                 "report.sample_panels", "not a sample bank")


def test_unknown_profile(tmp_path):
    with pytest.raises(config.ConfigError, match="unknown profile 'nope'"):
        config.load("nope", root=REPO)


def test_cli_reports_bad_config_without_traceback(repo_copy):
    cfg = yaml.safe_load((repo_copy / "config/profiles/toy.yaml").read_text())
    cfg["sampling"]["ddim"]["steps"] = [-3]
    (repo_copy / "config/profiles/toy.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_cmd(["trilemma", "check-config"], cwd=repo_copy, check=False)
    assert proc.returncode == 2
    assert "sampling.ddim.steps.0" in proc.stderr and "Traceback" not in proc.stderr
    # Snakemake stops at parse time, before any job starts.
    proc = run_cmd(["snakemake", "-n", "--cores", "1"], cwd=repo_copy, check=False)
    assert proc.returncode != 0
    assert "sampling.ddim.steps.0" in proc.stdout + proc.stderr
    assert not (repo_copy / "results/toy/data").exists()  # no job started


def test_bank_ids_follow_the_grid():
    ids = dag.bank_ids(config.load("ci", root=REPO))
    assert "teacher_ddpm/ddim-eta0-uniform-s10" in ids and "teacher_ddpm/pf_ode-heun-s10" in ids
    assert len(ids) == len(set(ids)) == 1 + 2 + 1 + 1 + 4 + 1 + 3 + 4 + 1 + 2   # cd-s4 (issue 18), one oracle bank (issue 24), 2 floors
    # the floor: a fresh draw of the data at each bank size (sampling 500; distillation and guidance 300)
    assert {"data/fresh-n500", "data/fresh-n300"} <= set(ids)
    # guidance: the CFG teacher's reference, the 2-step student, its 4-step stochastic sampler on the
    # 2-step student, classifier guidance
    assert {"teacher_cfg/cfg-w2-s4", "guided_s2/gpd-w2-s2", "guided_s2/gstoch-w2-s4", "teacher_pd/cg-w2-s4"} <= set(ids)
    assert "ddgan_t2_seed0/ddgan-s2" in ids and "gan_seed0/gan" in ids and "wgan_gp_seed0/wgan_gp" in ids
    # the chain 16 -> 8 -> 4: both students, DDIM and the stochastic sampler on the teacher at N <= 4
    assert {"pd_s8/pd-s8", "pd_s4/pd-s4", "teacher_pd/ddim-eta0-uniform-s4", "teacher_pd/stoch-v0.3-s4"} <= set(ids)
    assert "teacher_pd/ddim-eta0-uniform-s8" not in ids


def test_distill_chain_config_checks():
    cfg = config.load("ci", root=REPO)
    assert dag.student_steps(cfg) == [8, 4]
    assert dag.round_updates_key(cfg, 4) == "distill.rounds.updates.s4"
    assert dag.round_updates_key(cfg, 8) == "distill.rounds.updates.s8"
    assert dag.round_updates_key(cfg, 32) == "distill.rounds.updates.default"
    # the peak LR is per round too, and a round's job depends on its own LR key only
    cfg["distill"]["rounds"]["lr"] = {"default": 5e-4, "s4": 2e-3}
    assert dag.round_key(cfg, "lr", 4) == "distill.rounds.lr.s4"
    assert dag.round_key(cfg, "lr", 8) == "distill.rounds.lr.default"
    jobs = {j.name: j for j in dag.jobs(cfg)}
    assert "distill.rounds.lr.s4" in jobs["distill-pd_s4"].params
    assert "distill.rounds.lr.default" in jobs["distill-pd_s8"].params
    assert not any(k.startswith("distill.rounds.lr.s") for k in jobs["distill-pd_s8"].params)
    toy = config.load(root=REPO)  # students above distill.eval.student_max_steps get no bank
    ids = dag.distill_bank_ids(toy)
    assert "pd_s4096/pd-s4096" not in ids and "pd_s1024/pd-s1024" in ids and "pd_s1/pd-s1" in ids
    bad = config.deep_merge(cfg, {"distill": {"start_steps": 12, "final_steps": 16}})
    with pytest.raises(config.ConfigError, match="start_steps: 12 is not a power of two"):
        config.validate(bad)


def test_ddgan_coverage_steps_must_be_in_the_ablation(tmp_path):
    cfg = config.load(root=REPO)
    cfg["ddgan"]["coverage_steps"] = 3
    with pytest.raises(config.ConfigError, match="ddgan.coverage_steps = 3 must be one of"):
        config.validate(cfg)


@pytest.mark.parametrize("profile", ["fashion", "cifar10"])
def test_paper_profiles_round_budgets_are_their_own(profile):
    """A profile's per-round mapping (``<chain>.rounds.updates`` / ``.lr``) was once deep-merged over
    the toy's, so a key it omitted kept the toy's value (the guided s16 round got the toy's 400
    updates instead of the profile's 2000 / 50000). Every round of the paper profiles must read the
    value their own file states."""
    raw = yaml.safe_load((REPO / "config" / "profiles" / f"{profile}.yaml").read_text())
    cfg = config.load(profile, root=REPO)
    for chain in ("distill", "guidance"):
        for field in ("updates", "lr"):
            mine = raw[chain]["rounds"][field]
            for n in dag.student_steps(cfg, chain):
                value = config.section(cfg, dag.round_key(cfg, field, n, chain))
                expected = mine.get(f"s{n}", mine["default"]) if isinstance(mine, dict) else mine
                assert value == expected, f"{profile}: {chain} round s{n} {field} = {value}, the profile says {expected}"


def _leaves(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


@pytest.mark.parametrize("profile", ["fashion", "cifar10", "ci_images"])
def test_paper_profiles_inherit_no_toy_tuning(profile):
    """Profiles compose from config/base.yaml, not from the toy (issue 17): every resolved key is the
    profile's own or the base's. Toy-tuned choices leaked through the old deep merge over params.yaml
    (guided distillation's w_ends 0.2 and last_step 0.25, the guided s16 round's 400 updates)."""
    own = set(_leaves(yaml.safe_load((REPO / "config" / "profiles" / f"{profile}.yaml").read_text())))
    shared = set(_leaves(yaml.safe_load((REPO / "config" / "base.yaml").read_text())))
    inherited = [k for k in _leaves(config.load(profile, root=REPO)) if k not in own | shared | {"profile"}]
    assert inherited == [], f"{profile} gets {inherited} from neither its file nor the base"
