"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from its four IDX files.

The files come from a directory in the config (``data.fashion_mnist.source_dir``; Debian's
``dataset-fashion-mnist`` installs them under /usr/share/datasets/fashion-mnist), gzipped or not;
when they are not all there and ``data.fashion_mnist.download`` is true, the four .gz files are
downloaded from the official mirror (torchvision's ``FashionMNIST.mirrors``, or ``mirror``) into
``download_dir`` and read from there.  Debian re-compressed the .gz files, so their md5s differ from
the official ones; what is verified, whatever the source, is the md5 of the *decompressed* IDX
content, which is the same for every correct copy (values from the reference notes, ecosystem §5).
"""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import torch

from trilemma.data.images import DataSourceError

FILES = {  # name -> md5 of the decompressed IDX file
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
HOW_TO = ("install Debian's package (`apt-get install dataset-fashion-mnist`, files in "
          "/usr/share/datasets/fashion-mnist) or put the four files {files} (.gz or not) from "
          "https://github.com/zalandoresearch/fashion-mnist into {dir}, the directory named by "
          "data.fashion_mnist.source_dir (or set data.fashion_mnist.download: true where there is a network)")


def _find(source_dir: Path, name: str) -> Path | None:
    for candidate in (source_dir / f"{name}.gz", source_dir / name):
        if candidate.exists():
            return candidate
    return None


def _read(source_dir: Path, name: str) -> bytes:
    path = _find(source_dir, name)
    if path is None:
        raise DataSourceError(f"Fashion-MNIST: {source_dir / name}[.gz] not found; "
                              + HOW_TO.format(files=", ".join(FILES), dir=source_dir))
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as exc:   # a truncated or foreign .gz
        raise DataSourceError(f"Fashion-MNIST: {path}: cannot read it ({exc}); replace it: "
                              + HOW_TO.format(files=", ".join(FILES), dir=source_dir)) from None


def load_source(src) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``load`` from ``src.source_dir`` (the typed ``data.fashion_mnist``) if all four files are there,
    else (``src.download``) from ``src.download_dir``, downloading the files missing there."""
    source_dir = Path(src.source_dir)
    if not src.download or all(_find(source_dir, name) for name in FILES):
        return load(source_dir)
    from torchvision.datasets import FashionMNIST

    from trilemma.data.download import download
    target = Path(src.download_dir)
    mirror = src.mirror or FashionMNIST.mirrors[0]
    fetched = []
    for name in FILES:
        if _find(target, name) is None:
            fetched.append(download(f"{mirror.rstrip('/')}/{name}.gz", target / f"{name}.gz", None,
                                    HOW_TO.format(files=", ".join(FILES), dir=source_dir)))
    try:
        return load(target)
    except DataSourceError:
        for path in fetched:   # what this call fetched and failed the check is not kept for the next run
            path.unlink(missing_ok=True)
        raise


def parse_idx(raw: bytes) -> np.ndarray:
    """An IDX file (LeCun's MNIST format): magic 0x0000 08 <ndim>, big-endian int32 sizes, uint8 data."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataSourceError("not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataSourceError(f"IDX file holds {data.size} bytes, its header says {tuple(dims)}")
    return data.reshape(tuple(int(d) for d in dims))


def load(source_dir, *, verify: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train': (uint8 (60000, 1, 28, 28), labels), 'test': (uint8 (10000, 1, 28, 28), labels)}."""
    source_dir = Path(source_dir)
    arrays = {}
    for name, md5 in FILES.items():
        raw = _read(source_dir, name)
        if verify and hashlib.md5(raw).hexdigest() != md5:
            raise DataSourceError(
                f"Fashion-MNIST: {source_dir / name}: decompressed md5 {hashlib.md5(raw).hexdigest()} != "
                f"{md5} (corrupted or not Fashion-MNIST); replace it: "
                + HOW_TO.format(files=", ".join(FILES), dir=source_dir))
        arrays[name] = parse_idx(raw)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = torch.from_numpy(arrays[f"{prefix}-images-idx3-ubyte"].copy()).unsqueeze(1)
        y = torch.from_numpy(arrays[f"{prefix}-labels-idx1-ubyte"].astype(np.int64))
        out[split] = (x, y)
    return out
