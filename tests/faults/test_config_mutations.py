"""Config mutations (issue 20): every leaf key of the resolved ``toy`` and ``cifar10`` configurations,
found by walking the configuration beside the schema (``mutations.py``), gets a value of the wrong type,
a value just outside each bound the schema sets, and (where the schema requires it) is deleted.  Each
mutation must be rejected by the validation that runs before any job (``config.validate``; Snakemake's
start and ``trilemma check-config`` call it) with a ConfigError naming the key; no other exception."""
import collections

import pytest
import yaml

from conftest import run_cmd
from mutations import Mutation, mutations
from trilemma import config

PROFILES = ("toy", "cifar10")


def named(m: Mutation) -> str:
    """What the message must name: the dotted key (a deletion: the parent's path and the key)."""
    return m.path[-1] if m.kind == "delete_required" else m.key


@pytest.mark.parametrize("profile", PROFILES)
def test_every_leaf_mutation_is_rejected_naming_the_key(profile):
    cfg = config.load(profile)
    found = mutations(cfg, config.schema())
    silent, wrong_error, unnamed = [], [], []
    for m in found:
        try:
            config.validate(m.apply(cfg))
            silent.append(m)
        except config.ConfigError as exc:
            if named(m) not in str(exc) or (m.kind == "delete_required" and ".".join(m.path[:-1]) not in str(exc)):
                unnamed.append((m, str(exc)))
        except Exception as exc:  # noqa: BLE001 - any other exception is a traceback for the user
            wrong_error.append((m, repr(exc)))
    counts = collections.Counter(m.kind for m in found)
    print(f"{profile}: {len(found)} mutations of {len({m.path for m in found})} leaf keys {dict(counts)}; "
          f"silent passes {len(silent)}, other exceptions {len(wrong_error)}, key not named {len(unnamed)}")
    assert counts["wrong_type"] > 200 and counts["out_of_range"] > 100 and counts["delete_required"] > 100
    assert silent == [] and wrong_error == [] and unnamed == []


def test_a_key_read_without_default_is_required():
    """evaluation.bootstrap was optional in the schema but read as ev["bootstrap"] by every evaluate job:
    deleting it passed validation and failed later with a KeyError traceback inside a job."""
    m = Mutation("delete_required", ("evaluation", "bootstrap"))
    with pytest.raises(config.ConfigError, match="evaluation: 'bootstrap' is a required property"):
        config.validate(m.apply(config.load("toy")))


def test_a_key_inside_a_one_of_is_named():
    """A per-round value under a oneOf (number, or a mapping of rounds) names the round's key, not its parent."""
    cfg = config.load("toy")
    m = Mutation("wrong_type", ("guidance", "rounds", "lr", "s8"), "many")
    with pytest.raises(config.ConfigError, match=r"guidance\.rounds\.lr\.s8: 'many' is not of type 'number'"):
        config.validate(m.apply(cfg))


def cli_cases():
    """Per profile, the deepest key of each mutation kind."""
    cases = []
    for profile in PROFILES:
        by_kind = {}
        for m in mutations(config.load(profile), config.schema()):
            if len(m.path) > len(by_kind.get(m.kind, Mutation("", ())).path):
                by_kind[m.kind] = m
        cases += [(profile, m) for m in by_kind.values()]
    return cases


@pytest.mark.slow
def test_mutations_stop_the_cli_and_snakemake_before_any_job_without_traceback(repo_copy):
    """A handful through the real entry points: the mutated configuration as the toy's profile file
    (a whole configuration, no defaults);
    ``trilemma check-config`` and Snakemake's start (a dry run) both refuse with the key named."""
    cases = cli_cases()
    for i, (profile, m) in enumerate(cases):
        mutated = {**m.apply(config.load(profile)), "profile": "toy"}
        (repo_copy / "config/profiles/toy.yaml").write_text(yaml.safe_dump(mutated, sort_keys=False))
        commands = [["trilemma", "check-config"]] + ([["snakemake", "-n", "--cores", "1"]] if i % 3 == 0 else [])
        for cmd in commands:
            proc = run_cmd(cmd, cwd=repo_copy, check=False, timeout=120)
            out = proc.stdout + proc.stderr
            assert proc.returncode != 0 and named(m) in out and "invalid configuration" in out, (cmd, m, out)
            assert "Traceback" not in out and 'File "' not in out, (cmd, m, out)
            assert not (repo_copy / "results" / "toy" / "data").exists()   # no job ran
    print(f"{len(cases)} mutations through check-config, {len(cases[::3])} through Snakemake's start")
