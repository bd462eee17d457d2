"""Artifacts are data, not pickles: tensors in safetensors, configuration in JSON, written
atomically (temporary name, then rename) so a killed job never leaves a half-written output.

Loading never executes code: safetensors for weights and sample banks, ``torch.load(weights_only=True)``
for the training loop's resume state.  A truncated or foreign file raises :class:`ArtifactError`
naming the file and the command that rebuilds it (:func:`rebuild_hint`).

Safetensors has no checksum, so a flipped byte in a tensor would load as a silently wrong value:
every file carries the SHA-256 of its tensors (names, dtypes, shapes, bytes) and its meta in its
header (``sha256``), checked on every load.  A SIGKILL between writing a temporary file and its
rename leaves the temporary behind; the next write of the same path removes it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from trilemma.errors import ArtifactError  # defined torch-free, for cli.main


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):   # left by a killed writer
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def rebuild_hint(path) -> str:
    """The command that rebuilds ``path``: Snakemake's re-run of the job that writes it (and what
    depends on it) for a file under ``results/<profile>/``; ``dvc repro`` sees the change by itself."""
    parts = Path(path).parts
    if "results" in parts and parts.index("results") + 2 < len(parts):
        i = parts.index("results")
        rel = Path(*parts[i:]).as_posix()
        return (f"rebuild it with `snakemake --cores all --config profile={parts[i + 1]} --forcerun {rel}` "
                f"(or `dvc repro` for the toy profile)")
    return "re-run the stage that produces it"


def tensors_digest(tensors: dict[str, torch.Tensor], meta_json: str) -> str:
    """SHA-256 of the tensors' names, dtypes, shapes and bytes (sorted by name) and of the meta JSON."""
    h = hashlib.sha256(meta_json.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_tensors(path, tensors: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> None:
    """Write tensors (made contiguous, on CPU) and a JSON ``meta`` dict into one safetensors file,
    with their digest (:func:`tensors_digest`) in the header."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    raw = json.dumps(meta or {}, sort_keys=True)
    metadata = {"trilemma": raw, "sha256": tensors_digest(tensors, raw)}
    _atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and meta of a file :func:`save_tensors` wrote; :class:`ArtifactError` (naming the
    file and the command that rebuilds it) if it is missing, unreadable, foreign or damaged."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found; {rebuild_hint(path)}")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open
        with safe_open(str(path), "pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: not a readable safetensors file ({exc}); it is truncated, "
                            f"damaged or foreign; {rebuild_hint(path)}") from None
    raw = header.get("trilemma")
    if raw is None:
        raise ArtifactError(f"{path}: a safetensors file, but not one written by trilemma "
                            f"(no 'trilemma' metadata); {rebuild_hint(path)}")
    if "sha256" not in header:
        raise ArtifactError(f"{path}: no content digest (written by a trilemma older than digests); "
                            f"{rebuild_hint(path)}")
    if header["sha256"] != tensors_digest(tensors, raw):
        raise ArtifactError(f"{path}: damaged (its content does not match the SHA-256 recorded when it "
                            f"was written); {rebuild_hint(path)}")
    try:
        return tensors, json.loads(raw)
    except json.JSONDecodeError:
        raise ArtifactError(f"{path}: damaged metadata; {rebuild_hint(path)}") from None


def save_json(path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def load_json(path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: file not found; {rebuild_hint(path)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc}); {rebuild_hint(path)}") from None


def save_state(path, state: dict) -> None:
    """Resume state (tensors, numbers, strings only), loadable with ``weights_only=True``."""
    _atomic(path, lambda tmp: torch.save(state, tmp))


def load_state(path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable resume state is reported the same way
        raise ArtifactError(f"{path}: unreadable resume state ({exc}); delete it to start over") from None


# ----------------------------------------------------------------------------- models
def save_model(weights_path, state_dict: dict[str, torch.Tensor], model_json: dict) -> None:
    """``model.safetensors`` (EMA weights) and, beside it, ``model.json`` (what rebuilds and samples it)."""
    weights_path = Path(weights_path)
    save_tensors(weights_path, state_dict, {"kind": "model"})
    save_json(weights_path.with_name("model.json"), model_json)


def load_network(model_dir):
    """The network of a model directory, weights loaded, in eval mode, and its model.json.  The
    output width is ``out_dim`` when model.json has one (the guidance classifier: one logit per
    class), else the data dimension times the parameterization's outputs."""
    from trilemma.diffusion.denoiser import OUTPUTS
    from trilemma.models.registry import build_model

    model_dir = Path(model_dir)
    info = load_json(model_dir / "model.json")
    state, meta = load_tensors(model_dir / "model.safetensors")
    if meta.get("kind") != "model":
        raise ArtifactError(f"{model_dir / 'model.safetensors'}: not a model file (kind={meta.get('kind')!r})")
    dim = info["data_dim"]  # an int for 2-D points, [C, H, W] for images
    out_dim = dim * OUTPUTS[info["parameterization"]] if isinstance(dim, int) and info["parameterization"] in OUTPUTS else None
    net = build_model(info["model"], dim, info.get("out_dim", out_dim))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ArtifactError(f"{model_dir / 'model.safetensors'}: weights do not match model.json "
                            f"({str(exc).splitlines()[0]}); re-run training") from None
    return net.eval().requires_grad_(False), info


def load_model(model_dir):
    """Rebuild a trained model as a :class:`~trilemma.diffusion.denoiser.Denoiser` from its directory
    (DDGAN generators too: x0-prediction with the latent z as ``cond``; GANs as a one-shot wrapper)."""
    from trilemma.diffusion.denoiser import Denoiser
    from trilemma.diffusion.schedules import schedule_from_config

    net, info = load_network(model_dir)
    if info["schedule"] is None:  # a one-shot generator (the GAN baselines): no diffusion process
        from trilemma.models.gan import OneShot
        return OneShot(net), info
    schedule = schedule_from_config(info["schedule"])
    return Denoiser(net, schedule, info["parameterization"]), info
