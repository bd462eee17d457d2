"""Config audit (issue 16): run jobs of the `ci` profile under a recording config and hold the keys
each one reads against the keys its DAG job declares (``Job.params``), which DVC tracks.  A key read
and not declared is a change neither tool sees: the job's output goes stale.

What counts as covered:
- a declared key covers itself and everything below it (``report`` covers ``report.dpi``);
- keys read while building the DAG (``dag.jobs``) are structure: a change to one changes the jobs'
  commands, inputs or outputs, which both tools see;
- ``resources`` (cluster requests) and ``profile`` (the command's own argument) change no output.

The jobs run in-process in a copy of the repository: data, the exact denoiser (``oracle``, cheap), its
one bank and the floor are real; every other bank's metrics are the oracle bank's, relabelled, so that
``collect`` and ``report`` run on the whole grid without training anything; the deck studies' tables,
which the report embeds as text, are stand-ins."""
from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from trilemma import config, dag, paths
from trilemma.stages.sample import parse_spec

EXEMPT = ("resources", "profile")


class RecordingConfig(dict):
    """A config that records the dotted key of every item read through it (missing ones too: a job
    that reads an absent key depends on its absence).  A Mapping (a dict holding the raw values, so
    that ``json.dumps`` of a section works: it reads the raw items, and the section counts as read
    whole, as nothing below it is recorded)."""

    def __init__(self, data: Mapping, reads: set[str] | None = None, prefix: str = ""):
        super().__init__(data)
        self._prefix = prefix
        self.reads = set() if reads is None else reads

    def __getitem__(self, key):
        dotted = f"{self._prefix}{key}"
        self.reads.add(dotted)
        value = super().__getitem__(key)
        return RecordingConfig(value, self.reads, dotted + ".") if isinstance(value, Mapping) else value

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        self.reads.add(f"{self._prefix}{key}")
        return super().__contains__(key)

    def items(self):
        return [(k, self[k]) for k in self]

    def values(self):
        return [self[k] for k in self]

    def keys_read(self) -> set[str]:
        """The deepest keys read (a section read only to reach a key below it is not a read of it)."""
        return {k for k in self.reads if not any(o.startswith(k + ".") for o in self.reads)}


_STATE: dict[int, tuple[set, str]] = {}   # a recording section's (reads, dotted prefix), by id


def _wrap(value, reads: set, dotted: str):
    """``value`` of the key ``dotted``, recording what is read below it (sections and mappings)."""
    from pydantic import BaseModel
    if isinstance(value, BaseModel):
        return recording(value, reads, dotted + ".")
    if isinstance(value, Mapping):
        return RecordingConfig(value, reads, dotted + ".")
    return value


@functools.cache
def _recording_class(cls):
    """A subclass of a config model whose field reads are recorded (the stages read typed sections;
    a subclass keeps ``type(section).model_fields`` and the models' own methods, whose reads of
    ``self`` are recorded too)."""
    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if name in cls.model_fields:
            reads, prefix = _STATE[id(self)]
            reads.add(prefix + name)
            return _wrap(value, reads, prefix + name)
        if name == "plain":   # the plain values, still recording the keys read below
            reads, prefix = _STATE[id(self)]
            return lambda: RecordingConfig(value(), reads, prefix)
        return value
    return type(f"Recording{cls.__name__}", (cls,), {"__getattribute__": __getattribute__})


def recording(model, reads: set, prefix: str = ""):
    """A copy of the typed section ``model`` that records the dotted key of every field read."""
    fields = type(model).model_fields
    copy = _recording_class(type(model)).model_construct(
        _fields_set=set(model.model_fields_set), **{k: getattr(model, k) for k in fields})
    _STATE[id(copy)] = (reads, prefix)
    return copy


def covered(key: str, declared) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


def run_job(job: dag.Job, monkeypatch) -> set[str]:
    """Run a job's command in-process with ``config.load`` and ``config.load_typed`` recording; the
    keys it read."""
    from trilemma.cli import build_parser
    recorders = []
    real_load, real_typed = config.load, config.load_typed

    def load(profile=None, root="."):
        rec = RecordingConfig(real_load(profile, root))
        recorders.append(rec)
        return rec

    def load_typed(profile=None, root="."):
        rec = RecordingConfig({})
        recorders.append(rec)
        return recording(real_typed(profile, root), rec.reads)
    monkeypatch.setattr(config, "load", load)
    monkeypatch.setattr(config, "load_typed", load_typed)
    args = build_parser(job.argv[1]).parse_args(list(job.argv[1:]))
    args._run(args)
    monkeypatch.setattr(config, "load", real_load)
    monkeypatch.setattr(config, "load_typed", real_typed)
    return set().union(*(r.keys_read() for r in recorders))


def fake_metrics(real: dict, bank: str) -> dict:
    """The oracle bank's metrics relabelled as ``bank``'s (its spec's fields, label and NFE)."""
    b = paths.Bank.parse(bank)
    model, spec = b.model, b.spec
    row = {**real, "model": model, "spec": spec, "train_seed": 0, "round": None}
    if model == dag.FLOOR:
        return {**row, "method": "data", "sampler": "fresh draw of the data"}
    s = parse_spec(spec)
    return {**row, **dataclasses.asdict(s), "sampler": s.label, "nfe": s.steps or 100, "class_consistency": 0.5,
            "class_consistency_ci": 0.01, "fd_to_teacher": 0.1}


@pytest.fixture
def ci_workspace(repo_copy, monkeypatch):
    monkeypatch.chdir(repo_copy)
    return repo_copy


def test_every_job_declares_the_keys_it_reads(ci_workspace, monkeypatch):
    cfg = config.load("ci")
    structure = RecordingConfig(cfg)
    jobs = {j.name: j for j in dag.jobs(structure)}
    structure_keys = structure.reads
    oracle_bank = f"{dag.oracle.ORACLE}/{dag.oracle.oracle_specs(cfg)[0]}"
    floor_bank = dag.floor_bank_ids(cfg)[0]
    run = ["fetch_data-" + cfg["data"]["name"], f"train-{dag.oracle.ORACLE}",
           f"sample-{oracle_bank.replace('/', '-')}", f"evaluate-{oracle_bank.replace('/', '-')}",
           f"sample-{floor_bank.replace('/', '-')}", f"evaluate-{floor_bank.replace('/', '-')}"]
    reads = {name: run_job(jobs[name], monkeypatch) for name in run}
    p = cfg["profile"]
    real = json.loads(Path(jobs[run[3]].outs[0]).read_text())
    oracle_file = jobs[run[2]].outs[0]
    for bank in dag.bank_ids(cfg):
        out = Path(paths.Bank.parse(bank).path(paths.BANK_METRICS, p))
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(fake_metrics(real, bank)))
    for bank in cfg["report"]["sample_panels"]:
        target = Path(paths.Bank.parse(bank).path(paths.BANK, p))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(oracle_file, target)
    # the deck studies' tables (issue 19) are text the report embeds: stand-ins here (the studies need
    # trained models; their own jobs are audited through their declared keys by test_deck's DAG test)
    for job in jobs.values():
        if job.stage == "deck":
            for out in job.committed:
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                Path(out).write_text("stand-in\n")
    for name in ("collect", "report"):
        reads[name] = run_job(jobs[name], monkeypatch)
    stale = {}
    for name, keys in reads.items():
        missing = sorted(k for k in keys if not covered(k, jobs[name].params)
                         and k not in structure_keys and not covered(k, EXEMPT))
        if missing:
            stale[name] = missing
    assert all(reads[name] for name in run[1:]), reads   # the recording sees the stages' typed reads
    assert not stale, "jobs read config keys they do not declare (Job.params):\n" + "\n".join(
        f"  {name}: {keys}" for name, keys in stale.items())
