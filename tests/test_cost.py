"""bench/cost.py: the GPU-hour projection of a profile, from throughput JSONs (issue 7's cost.md)."""
import importlib.util
import json

import pandas as pd
import pytest

from conftest import REPO
from trilemma import config

spec = importlib.util.spec_from_file_location("cost", REPO / "bench" / "cost.py")
cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cost)


def test_nfe_rule_matches_the_counted_nfe_of_every_toy_bank():
    """The closed-form NFE per spec against the NFE that ``trilemma sample`` counted (CountNFE) for
    every bank of the committed toy results; adaptive solvers are the one exception."""
    m = pd.read_csv(REPO / "results" / "toy" / "metrics.csv")
    m = m[m["method"] != "data"].drop_duplicates("spec")   # the floor is a fresh draw, not a sampler
    fixed = m[~m["spec"].str.startswith("pf_ode-rk")]
    assert len(fixed) > 60 and {"cfg", "pf_ode", "gpd", "ddgan", "pd"} <= {s.split("-")[0] for s in fixed["spec"]}
    got = fixed["spec"].map(cost.nfe)
    assert (got == fixed["nfe"]).all(), fixed[got != fixed["nfe"]][["spec", "nfe"]]
    assert cost.nfe("pf_ode-rk45") == cost.RK45_NFE


def fake_inputs(tmp_path, device="H100 (fake)", smoke=False):
    """Round rates, so each row's GPU-hours is closed-form."""
    files = {
        "images": {"device": device, "smoke": smoke, "throughput": {"fp32_eager": 400.0, "bf16_channels_last": 1000.0}},
        "methods": {"device": device, "profile": "cifar10", "teacher_pd_steps_per_s": 5.0,
                    "pd_round_steps_per_s": 4.0, "ddgan_t4_steps_per_s": 2.0},
        "sampling": {"device": device, "sampling": [
            {"preset": p, "batch": b, "compile": False, "seconds_per_step": b / rate}
            for p, rate in (("cifar10", 1000.0), ("pd_cifar10", 500.0)) for b in (256, 1024)]},
    }
    paths = {}
    for k, v in files.items():
        paths[k] = tmp_path / f"{k}.json"
        paths[k].write_text(json.dumps(v))
    return files, paths


def test_cifar10_projection_is_work_over_measured_rate(tmp_path):
    files, _ = fake_inputs(tmp_path)
    cfg = config.load("cifar10", root=REPO)
    rows = {r["stage"]: r for r in cost.project(cfg, files["images"], files["methods"], files["sampling"])}
    hours = {k.split(":")[0].split(" (")[0]: r["hours"] for k, r in rows.items()}
    assert hours["train teacher_ddpm"] == pytest.approx(800_000 * 128 / 1000 / 3600)       # 28.4 h
    assert hours["train teacher_pd"] == hours["train teacher_cfg"] == pytest.approx(800_000 / 5 / 3600)
    assert hours["train DDGAN"] == pytest.approx(4 * 60_000_000 / 256 / 2 / 3600)        # T = 1, 2, 4, 8
    # 11 rounds 8192 -> 4 at 50k updates; 8 guided rounds 1024 -> 4 at 50k; stage one 50k
    assert rows["progressive distillation: 11 rounds 8192 -> 4"]["jobs"] == 11
    assert hours["progressive distillation"] == pytest.approx(11 * 50_000 / 4 / 3600)
    assert hours["guided distillation, stage two"] == pytest.approx(8 * 50_000 / 4 / 3600)
    assert hours["guided distillation, stage one"] == pytest.approx(50_000 / 4 / 3600)
    # banks: sum over specs of NFE x samples / forwards per second of the model's U-Net
    ddim = 50_000 * (10 + 20 + 50 + 100 + 1000)            # one DDPM/DDIM curve of the cifar10 grid
    teacher_forwards = (7 * ddim + 50_000 * cost.RK45_NFE + 50_000 * (1 + 2 + 4 + 8)   # + DDGAN generators
                        + 50_000 * (5 + 10 + 20))                                       # + DPM-Solver++(2M)
    assert rows["sample banks on the cifar10 U-Net"]["hours"] == pytest.approx(teacher_forwards / 1000 / 3600)
    pd_forwards = 50_000 * (2 * sum(2 ** k for k in range(2, 11)))      # students + DDIM on the teacher, 4..1024
    cfg_forwards = 50_000 * (5 * 2 * 1024 + 3 * 2 * (4 + 8 + 16))         # CFG teacher: 2 NFE per step
    guided_forwards = 50_000 * (5 * 4 + 3 * (8 + 16) + 3 * 8)              # guided students + stochastic 8 steps
    cd_forwards = 50_000 * (1 + 2 + 4)                                     # consistency model, 1/2/4 steps
    assert rows["sample banks on the pd_cifar10 U-Net"]["hours"] == pytest.approx(
        (pd_forwards + cfg_forwards + guided_forwards + cd_forwards) / 500 / 3600)
    cd = config.load("cifar10", root=REPO)["consistency"]["train"]                  # 800k updates x 512 (CD's CIFAR-10 code)
    assert hours["consistency distillation"] == pytest.approx(cd["updates"] * cd["batch_size"] / 128 / 4 / 3600)


def test_cli_writes_cost_md_and_refuses_mixed_or_smoke_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    _, paths = fake_inputs(tmp_path)
    out = tmp_path / "cost.md"
    argv = ["cost.py", "--images", str(paths["images"]), "--methods", str(paths["methods"]),
            "--sampling", str(paths["sampling"]), "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    cost.main()
    text = out.read_text()
    assert "H100 (fake)" in text and "| **total** |" in text and "RK45 at NFE 140 (assumed)" in text
    smoke_dir = tmp_path / "smoke"
    smoke_dir.mkdir()
    _, smoke = fake_inputs(smoke_dir, smoke=True)
    monkeypatch.setattr("sys.argv", [*argv[:2], str(smoke["images"]), *argv[3:]])
    with pytest.raises(SystemExit, match="--smoke"):
        cost.main()
    other = tmp_path / "other"
    other.mkdir()
    _, mixed = fake_inputs(other, device="H200 (fake)")
    monkeypatch.setattr("sys.argv", [*argv[:2], str(mixed["images"]), *argv[3:]])
    with pytest.raises(SystemExit, match="different devices"):
        cost.main()
