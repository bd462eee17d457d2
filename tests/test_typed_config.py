"""Stages read typed sections (issue 17): the typed model of every profile gives back, section by
section, exactly the plain resolved values that the DAG, Snakemake's params, the fingerprints and
the params files use, so moving a stage from dicts to sections cannot change a job."""
import json

import pytest

from trilemma import config


@pytest.mark.parametrize("profile", config.profiles())
def test_typed_sections_are_the_resolved_values(profile):
    plain, typed = config.load(profile), config.load_typed(profile)
    assert json.dumps(typed.plain()) == json.dumps(plain)   # key order included (Snakemake params repr)
    for key, value in plain.items():
        section = getattr(typed, key)
        got = section.plain() if hasattr(section, "plain") else section
        if isinstance(value, dict) and not hasattr(section, "plain"):   # resources: a dict of sections
            got = {k: v.plain() for k, v in section.items()}
        assert json.dumps(got) == json.dumps(value), key


def test_model_defaults_stay_out_of_the_plain_values():
    """hflip is stated by the image profiles only: the toy reads the model's default (False), and its
    plain values (its jobs' params and fingerprints) do not gain the key."""
    toy, small = config.load_typed("toy"), config.load_typed("fashion_small")
    assert "hflip" not in config.load("toy")["teacher"]["train"]
    assert toy.teacher.train.hflip is False and "hflip" not in toy.teacher.train.plain()
    assert small.teacher.train.plain()["hflip"] is False and small.feature_net.train.hflip is True


def test_resource_falls_back_to_default():
    typed = config.load_typed("toy")
    assert typed.resource("no_such_rule") == typed.resources["default"]
