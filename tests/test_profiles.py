"""Profiles as siblings over a typed config (issue 17).

Golden files: each profile's resolved configuration is committed as its params file (``params.yaml``
for the default ``toy``, ``pipelines/<profile>/params.yaml`` for the others; DVC reads them) and the
JSON schema as ``src/trilemma/schema/config.schema.json``.  Both are generated; after a deliberate
change regenerate them with ``trilemma config --write`` (``make dvc.yaml`` runs it) and review the diff:
it shows what each profile's resolved values became."""
import pytest
import yaml

from conftest import REPO
from trilemma import config
from trilemma.schema import models
from trilemma.stages import show_config
from trilemma.training.loop import LoopConfig


def test_generated_config_files_are_up_to_date():
    stale = [p for p, text in show_config.generated(REPO).items() if (REPO / p).read_text() != text]
    assert stale == [], f"out of date: {stale}: run `trilemma config --write` (make dvc.yaml) and review the diff"


@pytest.mark.parametrize("profile", config.profiles(REPO))
def test_golden_resolved_config(profile):
    """The committed params file is the profile's resolved configuration, values and key order."""
    golden = yaml.safe_load((REPO / config.params_file(profile)).read_text())
    assert list(golden.items()) == list(config.load(profile, root=REPO).items())


@pytest.mark.parametrize("profile", ["fashion", "cifar10", "ci_images", "fashion_small"])
def test_no_toy_section_reaches_an_image_profile(profile):
    cfg = config.load(profile, root=REPO)
    files = [f.name for f in config.profile_files(profile, REPO)]
    assert files == ["base.yaml", f"{profile}.yaml"]          # composed from the base only
    for where in ("teacher", "distill.teacher", "guidance.teacher"):
        assert set(config.section(cfg, where)["model"]) == {"kind", "unet"}, where
    assert not {"gauss25", "ring8", "swissroll"} & set(cfg["data"])
    assert "oracle" not in cfg and "classifier" not in cfg["guidance"] and "model" not in cfg["ddgan"]


def test_ci_composes_the_toy_explicitly():
    assert [f.name for f in config.profile_files("ci", REPO)] == ["base.yaml", "toy.yaml", "ci.yaml"]


def test_model_kind_is_a_discriminated_union():
    cfg = config.load(root=REPO)
    cfg["teacher"]["model"] = {"kind": "unet", "unet": {"preset": "tiny"}, "hidden": 128}
    with pytest.raises(config.ConfigError, match=r"teacher.model: unknown key\(s\) \['hidden'\]"):
        config.validate(cfg)


def test_every_key_of_the_schema_has_a_description():
    schema = models.json_schema()
    missing = []

    def walk(node, where):
        for key, sub in node.get("properties", {}).items():
            target = schema["$defs"][sub["$ref"].rsplit("/", 1)[1]] if "$ref" in sub else {}
            if "description" not in sub and "description" not in target:   # pydantic drops a field's
                missing.append(f"{where}.{key}")                               # description equal to its model's
            for ref in [sub] + sub.get("anyOf", []) + sub.get("oneOf", []):
                if "$ref" in ref:
                    walk(schema["$defs"][ref["$ref"].rsplit("/", 1)[1]], f"{where}.{key}")

    walk(schema, "")
    assert missing == []


def test_loop_config_rejects_an_unknown_key():
    """LoopConfig.from_config dropped unknown keys silently (a typo in a training block trained with
    the default); it now refuses a key no training block defines."""
    block = dict(config.load(root=REPO)["teacher"]["train"])
    assert LoopConfig.from_config(block).samples == block["samples"]
    with pytest.raises(ValueError, match="lr_warmup"):
        LoopConfig.from_config({**block, "lr_warmup": 3})


def test_defaults_cycle_is_an_error(tmp_path):
    (tmp_path / "config/profiles").mkdir(parents=True)
    (tmp_path / "config/base.yaml").write_text("seed: 0\n")
    (tmp_path / "config/profiles/a.yaml").write_text("defaults: [b]\n")
    (tmp_path / "config/profiles/b.yaml").write_text("defaults: [a]\n")
    with pytest.raises(config.ConfigError, match="includes itself"):
        config.profile_files("a", tmp_path)


def test_params_file_edit_wins_only_over_unchanged_sources(repo_copy):
    """DVC edits params.yaml (`dvc exp run -S`): the verbs use that value while the profile's files are
    unchanged since generation; a stale params.yaml never overrides a newer profile edit; both edited
    is an error."""
    def edit(text):   # sampling.num_samples 10000 -> 400 (the first 10000 after `sampling:`)
        head, tail = text.split("\nsampling:", 1)
        return head + "\nsampling:" + tail.replace("num_samples: 10000", "num_samples: 400", 1)

    params, toy = repo_copy / "params.yaml", repo_copy / "config/profiles/toy.yaml"
    original_params, original_toy = params.read_text(), toy.read_text()
    params.write_text(edit(original_params))
    assert config.load(root=repo_copy)["sampling"]["num_samples"] == 400
    params.write_text(original_params)
    toy.write_text(original_toy.replace("num_samples: 10000   # per sample bank", "num_samples: 300"))
    assert config.load(root=repo_copy)["sampling"]["num_samples"] == 300     # params.yaml is only stale
    params.write_text(edit(original_params))
    with pytest.raises(config.ConfigError, match="both edited"):
        config.load(root=repo_copy)
