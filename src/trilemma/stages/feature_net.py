"""Train the profile's feature-space classifier (``feature_net``) on the labelled training images with
the shared loop, measure its test accuracy on the held-out split, and publish its EMA weights and a
summary (``results/<profile>/feature_net.json``: ``test_accuracy``).  The evaluation of image banks
uses it as a torch-fidelity feature extractor when the profile has no Inception weights.  The stage
fails when the accuracy is below ``feature_net.min_test_accuracy``: a weak classifier is a poor
feature space, and its FIDs would mean little."""
from __future__ import annotations

import torch

from trilemma import config, modality
from trilemma.artifacts import ArtifactError, load_tensors, save_json
from trilemma.models.classifier import build_classifier
from trilemma.training.loop import LoopConfig
from trilemma.training.runner import run_training
from trilemma.training.tasks.classifier import ClassifierTask, accuracy

NAME = "feature_net"


def add_arguments(p):
    p.add_argument("--data", required=True, help="image dataset .safetensors from fetch-data")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json beside it)")
    p.add_argument("--summary", required=True, help="output summary .json (test accuracy; committed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    cfg = config.load_typed(args.profile)
    section = cfg.feature_net
    if section is None:
        raise config.ConfigError("feature_net: missing section (the classifier of the image profiles)")
    tensors, meta = load_tensors(args.data)
    torch.manual_seed(cfg.seed)
    mod = modality.of(cfg)
    model = section.model.plain()
    net = mod.place(build_classifier(model, meta["data_dim"][0], meta["num_classes"]))
    task = mod.batches(ClassifierTask(net, tensors["train"], tensors["train_labels"], section.train),
                       section.train.hflip)
    acc = {}

    def describe(final: dict) -> dict:
        """Test accuracy of the trained classifier; below ``min_test_accuracy`` nothing is published."""
        net.load_state_dict(final["net"])
        acc["test"] = accuracy(net, tensors["eval"], tensors["eval_labels"])
        acc["train"] = accuracy(net, tensors["train"][:10000], tensors["train_labels"][:10000])
        if acc["test"] < section.min_test_accuracy:
            raise ArtifactError(f"feature_net: test accuracy {acc['test']:.4f} < feature_net.min_test_accuracy "
                                f"{section.min_test_accuracy}; train longer (feature_net.train.samples)")
        return {"name": NAME, "method": "classifier", "model": model, "data_dim": meta["data_dim"],
                "num_classes": meta["num_classes"], "dataset": meta["dataset"], "train": section.train.plain(),
                "seed": cfg.seed, "weights": "ema"}

    if run_training(cfg.profile, NAME, task, LoopConfig.from_config(section.train), seed=cfg.seed, out=args.out,
                    what={"model": NAME, "seed": cfg.seed, "section": section.plain(), "data": meta},
                    describe=describe, progress=not args.no_progress) is None:
        return
    summary = {"dataset": meta["dataset"], "test_accuracy": round(acc["test"], 4), "num_test": len(tensors["eval"]),
               "train_accuracy_first_10k": round(acc["train"], 4), "min_test_accuracy": section.min_test_accuracy,
               "model": model, "train_samples": section.train.samples, "feature_dim": section.model.features}
    save_json(args.summary, summary)
    print(f"{args.summary}: test accuracy {acc['test']:.4f}")
