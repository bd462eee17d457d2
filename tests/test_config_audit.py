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


def covered(key: str, declared) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


def run_job(job: dag.Job, monkeypatch) -> set[str]:
    """Run a job's command in-process with ``config.load`` recording; the keys it read."""
    from trilemma.cli import build_parser
    recorders = []
    real_load = config.load.__wrapped__ if hasattr(config.load, "__wrapped__") else config.load

    def load(profile=None, root="."):
        rec = RecordingConfig(real_load(profile, root))
        recorders.append(rec)
        return rec
    load.__wrapped__ = real_load
    monkeypatch.setattr(config, "load", load)
    args = build_parser(job.argv[1]).parse_args(list(job.argv[1:]))
    args._run(args)
    monkeypatch.setattr(config, "load", real_load)
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
    assert not stale, "jobs read config keys they do not declare (Job.params):\n" + "\n".join(
        f"  {name}: {keys}" for name, keys in stale.items())
