"""The one naming scheme for artifacts, used by the Snakemake rules, the DVC stages, the verbs,
the tests and the report.  A committed name never changes meaning; a new meaning gets a new name.

Everything lands under ``results/<profile>/``.  Checkpoints, sample banks and per-bank metrics are
DVC-cached and gitignored; ``metrics.csv``, ``tables/``, ``figures/`` and ``report.md`` are committed.
"""
from __future__ import annotations

from pathlib import Path

ROOT = "results/{profile}"
DATA = ROOT + "/data/{dataset}.safetensors"
MODEL = ROOT + "/models/{model}/model.safetensors"
MODEL_CONFIG = ROOT + "/models/{model}/model.json"
TRAIN_LOG = ROOT + "/models/{model}/train_log.jsonl"
BANK = ROOT + "/samples/{model}/{spec}.safetensors"
BANK_METRICS = ROOT + "/metrics/{model}/{spec}.json"
METRICS_CSV = ROOT + "/metrics.csv"
TABLE = ROOT + "/tables/{table}.md"
FIGURE = ROOT + "/figures/{figure}.png"
REPORT = ROOT + "/report.md"
# Image profiles: the feature-space classifier and the cached real-side statistics of the metrics.
FEATURE_NET_DIR = ROOT + "/feature_net"
FEATURE_NET = FEATURE_NET_DIR + "/model.safetensors"
FEATURE_NET_CONFIG = FEATURE_NET_DIR + "/model.json"
FEATURE_NET_LOG = FEATURE_NET_DIR + "/train_log.jsonl"
FEATURE_NET_SUMMARY = ROOT + "/feature_net.json"
REFERENCE = ROOT + "/reference/{dataset}-{extractor}.safetensors"
# Resume state lives outside the declared outputs: both DAG tools delete declared outputs before
# re-running a job, and a killed job must find its last checkpoint again.
RESUME_DIR = ROOT + "/.resume/{model}"


def fmt(pattern: str, **wildcards) -> str:
    return pattern.format(**wildcards)


def resume_dir(profile: str, model: str) -> Path:
    return Path(RESUME_DIR.format(profile=profile, model=model))
