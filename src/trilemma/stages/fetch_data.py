"""Make the dataset artifact of a profile: generate a 2-D dataset deterministically from the config's
seed, or read an image dataset from its source (Fashion-MNIST's IDX files, CIFAR-10's python archive:
local files, or the official download where ``data.<name>.download`` allows it), checksum-verified,
into uint8 (N, C, H, W) images + labels."""
from __future__ import annotations

from trilemma import config
from trilemma.artifacts import ArtifactError, save_tensors
from trilemma.data.images import DataSourceError, is_image_dataset


def add_arguments(p):
    p.add_argument("--dataset", required=True, help="dataset name (must be data.name of the profile)")
    p.add_argument("--out", required=True, help="output .safetensors path")


def load_images(data_cfg):
    """The image dataset artifact of the typed ``data`` section (its source section is required by
    the config models)."""
    from trilemma.data import cifar10, fashion_mnist
    from trilemma.data.images import build_dataset

    name = data_cfg.name
    src = getattr(data_cfg, name)
    try:
        splits = (fashion_mnist if name == "fashion_mnist" else cifar10).load_source(src)
    except DataSourceError as exc:
        raise ArtifactError(str(exc)) from None
    return build_dataset(name, splits["train"], splits["test"], data_cfg, src.plain())


def run(args):
    cfg = config.load_typed(args.profile)
    if args.dataset != cfg.data.name:
        raise config.ConfigError(f"--dataset {args.dataset} differs from data.name = {cfg.data.name}")
    if is_image_dataset(args.dataset):
        tensors, meta = load_images(cfg.data)
        save_tensors(args.out, tensors, meta)
        print(f"wrote {args.out}: {tuple(tensors['train'].shape)} train / {tuple(tensors['eval'].shape)} "
              f"eval uint8 images")
        return
    from trilemma.data.toy2d import generate
    tensors, meta = generate(cfg.data, cfg.seed)
    save_tensors(args.out, tensors, meta)
    print(f"wrote {args.out}: {tensors['train'].shape[0]} train / {tensors['eval'].shape[0]} eval points")
