"""The `fashion_small` profile's DAG (issue 22): one network for CFG and PD, the floor and ceilings, no
consistency distillation; and the share-model stage's copy."""
import json

import pytest
import torch

from trilemma import config, dag
from trilemma.artifacts import load_json, load_tensors, save_json, save_tensors
from trilemma.cli import main


@pytest.fixture(scope="module")
def jobs():
    return {j.name: j for j in dag.jobs(config.load("fashion_small"))}


def test_the_pd_teacher_is_the_cfg_teachers_network(jobs):
    share = jobs["train-teacher_pd"]
    assert share.argv[:2] == ("trilemma", "share-model")
    assert "results/fashion_small/models/teacher_cfg/model.safetensors" in share.deps
    assert not any(d.endswith(".safetensors") and "data" in d for d in share.deps)   # no training data: nothing trains
    # every user of teacher_pd waits for the copy
    assert "results/fashion_small/models/teacher_pd/model.safetensors" in jobs["distill-pd_s16"].deps
    # the toy still trains its own distillation teacher
    toy = {j.name: j for j in dag.jobs(config.load("toy"))}
    assert toy["train-teacher_pd"].argv[:2] == ("trilemma", "train")


def test_floor_and_ceilings_at_the_bank_size_and_no_consistency_training(jobs):
    floors = sorted(n for n in jobs if n.startswith("sample-data-"))
    assert floors == ["sample-data-blurred-n5000", "sample-data-fresh-n5000", "sample-data-shuffled-n5000"]
    assert "distill-cd" not in jobs


def test_sharing_needs_the_cfg_teacher():
    cfg = config.load("fashion_small")
    cfg["guidance"]["enabled"] = False
    with pytest.raises(config.ConfigError, match="distill.teacher.shared"):
        config.validate(cfg)


def test_share_model_copies_weights_and_names_the_source(tmp_path):
    src = tmp_path / "teacher_cfg"
    src.mkdir()
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    save_tensors(src / "model.safetensors", weights, {"kind": "model"})
    save_json(src / "model.json", {"name": "teacher_cfg", "method": "cfg_teacher", "p_uncond": 0.2})
    out = tmp_path / "teacher_pd" / "model.safetensors"
    assert main(["share-model", "--from", str(src), "--name", "teacher_pd", "--out", str(out)]) == 0
    copied, meta = load_tensors(out)
    assert torch.equal(copied["w"], weights["w"]) and meta == {"kind": "model"}
    info = load_json(out.with_name("model.json"))
    assert info == {"name": "teacher_pd", "shared_from": "teacher_cfg", "method": "cfg_teacher", "p_uncond": 0.2}
    assert json.loads(out.with_name("train_log.jsonl").read_text())["from"] == "teacher_cfg"
