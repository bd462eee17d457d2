"""Artifacts are data, not pickles: tensors in safetensors, configuration in JSON, written
atomically (temporary name, then rename) so a killed job never leaves a half-written output.

Loading never executes code: safetensors for weights and sample banks, ``torch.load(weights_only=True)``
for the training loop's resume state.  A truncated or foreign file raises :class:`ArtifactError`
naming the file and what to do.
"""
from __future__ import annotations

import json
import os
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_tensors(path, tensors: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> None:
    """Write tensors (made contiguous, on CPU) and a JSON ``meta`` dict into one safetensors file."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    metadata = {"trilemma": json.dumps(meta or {}, sort_keys=True)}
    _atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found (run the stage that produces it)")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open
        with safe_open(str(path), "pt") as f:
            raw = (f.metadata() or {}).get("trilemma")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: not a readable safetensors file ({exc}); it is truncated or "
                            f"foreign: delete it and re-run the stage that produces it") from None
    if raw is None:
        raise ArtifactError(f"{path}: a safetensors file, but not one written by trilemma "
                            f"(no 'trilemma' metadata); re-run the stage that produces it")
    return tensors, json.loads(raw)


def save_json(path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    _atomic(path, lambda tmp: Path(tmp).write_text(text))


def load_json(path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: file not found (run the stage that produces it)") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc}); re-run the stage that produces it") from None


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
