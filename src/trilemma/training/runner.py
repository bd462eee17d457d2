"""The one training-stage runner (issue 16): every training verb (``train``, its GANs, ``distill``,
``guided-stage1``, ``consistency-distill``, ``feature-net``) builds its task and hands it here, which
wraps the one loop (:mod:`trilemma.training.loop`) with what is the same for all of them:

- the fingerprint of the run (a SHA-256 of the JSON of what defines it), so a re-run resumes from
  ``results/<profile>/.resume/<model>/`` only when nothing that defines it changed;
- the loop itself (seeded, checkpointed, exact resume);
- the model.json, described *after* training (a distillation bill counts the run's teacher calls);
- the publish: weights, model.json and the training log, by rank 0 alone under torchrun.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from trilemma import paths
from trilemma.artifacts import save_model
from trilemma.training.distributed import context, shutdown
from trilemma.training.loop import LoopConfig, finish, train


def fingerprint(what: dict) -> str:
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def file_digest(path) -> str:
    """SHA-256 of a file (a teacher's weights in a student's fingerprint)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_training(profile: str, name: str, task, loop_cfg: LoopConfig, *, seed: int, what: dict, out: str,
                 describe: Callable[[dict], dict], progress: bool = True, desc: str | None = None,
                 weights: str = "net") -> dict | None:
    """Train ``task`` as model ``name`` of ``profile`` (its resume state under
    ``results/<profile>/.resume/``) and publish ``final[weights]`` with ``describe(final)`` as its
    model.json (``describe`` may raise: nothing is published).  ``what`` is the plain data the run's
    fingerprint hashes (config values as ``section.plain()``).  Returns the loop's final state on
    the publishing rank, None on the others."""
    resume = paths.resume_dir(profile, name)
    final = train(task, loop_cfg, seed=seed, resume_dir=resume, fingerprint=fingerprint(what),
                  progress=progress, desc=desc or f"train {name}")
    return final if publish(out, final[weights], describe(final), resume) else None


def publish(out: str, weights: dict, model_json: dict, resume: Path) -> bool:
    """Write the model and its training log, then clear the resume state; rank 0 only under
    torchrun (the other ranks write nothing).  True on the rank that wrote."""
    if not context().is_main:
        shutdown()
        return False
    save_model(out, weights, model_json)
    log_text = finish(resume)
    Path(out).with_name("train_log.jsonl").write_text(log_text)
    print(f"wrote {out}")
    shutdown()
    return True
