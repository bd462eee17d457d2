"""The one naming scheme for artifacts, used by the Snakemake rules, the DVC stages, the verbs,
the tests and the report.  A committed name never changes meaning; a new meaning gets a new name.

Everything lands under ``results/<profile>/``.  Checkpoints, sample banks and per-bank metrics are
DVC-cached and gitignored; ``metrics.csv``, ``tables/``, ``figures/`` and ``report.md`` are committed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = "results/{profile}"
DATA = ROOT + "/data/{dataset}.safetensors"
MODEL = ROOT + "/models/{model}/model.safetensors"
MODEL_CONFIG = ROOT + "/models/{model}/model.json"
TRAIN_LOG = ROOT + "/models/{model}/train_log.jsonl"
BANK = ROOT + "/samples/{model}/{spec}.safetensors"
BANK_METRICS = ROOT + "/metrics/{model}/{spec}.json"
METRICS_CSV = ROOT + "/metrics.csv"
HEADLINE = ROOT + "/headline.json"   # DVC's metrics file: the headline banks' numbers (stages/collect.py)
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


# ----------------------------------------------------------------------------- sample-bank ids
@dataclass(frozen=True)
class Bank:
    """A sample bank: a model and one of its sampler spec ids (``sampling/registry.py``), written
    ``<model>/<spec>`` (metrics.csv's model and spec columns, the config's panel lists).  The one place
    that builds (:attr:`id`) and splits (:meth:`parse`) that string."""
    model: str
    spec: str

    @property
    def id(self) -> str:
        return f"{self.model}/{self.spec}"

    @classmethod
    def parse(cls, bank_id: str) -> "Bank":
        model, sep, spec = bank_id.partition("/")
        if not (sep and model and spec) or "/" in spec:
            raise ValueError(f"not a bank id <model>/<spec>: {bank_id!r}")
        return cls(model, spec)

    def path(self, pattern: str, profile: str) -> str:
        """``BANK`` or ``BANK_METRICS`` of this bank."""
        return fmt(pattern, profile=profile, model=self.model, spec=self.spec)


# ----------------------------------------------------------------------------- GAN model ids
# Denoising Diffusion GAN with T steps and the one-shot GAN baselines, one model per training seed:
# ddgan_t<T>_seed<S>, gan_seed<S>, wgan_gp_seed<S>.
GAN_METHODS = ("ddgan", "gan", "wgan_gp")
_GAN_MODEL = re.compile(r"^(?:(ddgan)_t(\d+)|(gan|wgan_gp))_seed(\d+)$")


def gan_model(method: str, seed: int, steps: int | None = None) -> str:
    return f"ddgan_t{steps}_seed{seed}" if method == "ddgan" else f"{method}_seed{seed}"


def parse_gan_model(name: str) -> tuple[str, int, int] | None:
    """``(method, steps, seed)`` of a GAN model id (steps = 1 for the one-shot baselines), else None."""
    m = _GAN_MODEL.match(name)
    if not m:
        return None
    return (m[1], int(m[2]), int(m[4])) if m[1] else (m[3], 1, int(m[4]))
