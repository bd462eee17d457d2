"""Train the profile's feature-space classifier (``feature_net``) on the labelled training images with
the shared loop, measure its test accuracy on the held-out split, and publish its EMA weights and a
summary (``results/<profile>/feature_net.json``: ``test_accuracy``).  The evaluation of image banks
uses it as a torch-fidelity feature extractor when the profile has no Inception weights.  The stage
fails when the accuracy is below ``feature_net.min_test_accuracy``: a weak classifier is a poor
feature space, and its FIDs would mean little."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from trilemma import config, paths
from trilemma.artifacts import ArtifactError, load_json, load_tensors, save_json, save_model
from trilemma.models.classifier import build_classifier
from trilemma.training.loop import LoopConfig, finish, train
from trilemma.training.tasks.classifier import ClassifierTask, accuracy

NAME = "feature_net"


def add_arguments(p):
    p.add_argument("--data", required=True, help="image dataset .safetensors from fetch-data")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json beside it)")
    p.add_argument("--summary", required=True, help="output summary .json (test accuracy; committed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_classifier(model_dir):
    """The trained classifier (eval mode, frozen) and its model.json."""
    model_dir = Path(model_dir)
    info = load_json(model_dir / "model.json")
    state, meta = load_tensors(model_dir / "model.safetensors")
    if meta.get("kind") != "model" or info.get("method") != "classifier":
        raise ArtifactError(f"{model_dir}: not a feature_net classifier")
    net = build_classifier(info["model"], info["data_dim"][0], info["num_classes"])
    net.load_state_dict(state)
    return net.eval().requires_grad_(False), info


def run(args):
    cfg = config.load(args.profile)
    section = cfg.get("feature_net")
    if section is None:
        raise config.ConfigError("feature_net: missing section (the classifier of the image profiles)")
    tensors, meta = load_tensors(args.data)
    torch.manual_seed(cfg["seed"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = build_classifier(section["model"], meta["data_dim"][0], meta["num_classes"]).to(device)
    task = ClassifierTask(net, tensors["train"], tensors["train_labels"], section["train"])
    fingerprint = hashlib.sha256(json.dumps({"model": NAME, "seed": cfg["seed"], "section": section,
                                             "data": meta}, sort_keys=True).encode()).hexdigest()
    resume = paths.resume_dir(cfg["profile"], NAME)
    final = train(task, LoopConfig.from_config(section["train"]), seed=cfg["seed"], resume_dir=resume,
                  fingerprint=fingerprint, progress=not args.no_progress, desc=f"train {NAME}")
    net.load_state_dict(final["net"])
    acc = accuracy(net, tensors["eval"], tensors["eval_labels"])
    train_acc = accuracy(net, tensors["train"][:10000], tensors["train_labels"][:10000])
    if acc < section["min_test_accuracy"]:
        raise ArtifactError(f"feature_net: test accuracy {acc:.4f} < feature_net.min_test_accuracy "
                            f"{section['min_test_accuracy']}; train longer (feature_net.train.samples)")
    model_json = {"name": NAME, "method": "classifier", "model": section["model"], "data_dim": meta["data_dim"],
                  "num_classes": meta["num_classes"], "dataset": meta["dataset"], "train": section["train"],
                  "seed": cfg["seed"], "weights": "ema"}
    save_model(args.out, final["net"], model_json)
    log_text = finish(resume)
    Path(args.out).with_name("train_log.jsonl").write_text(log_text)
    summary = {"dataset": meta["dataset"], "test_accuracy": round(acc, 4), "num_test": len(tensors["eval"]),
               "train_accuracy_first_10k": round(train_acc, 4), "min_test_accuracy": section["min_test_accuracy"],
               "model": section["model"], "train_samples": section["train"]["samples"],
               "feature_dim": section["model"]["features"]}
    save_json(args.summary, summary)
    print(f"wrote {args.out} and {args.summary}: test accuracy {acc:.4f}")
