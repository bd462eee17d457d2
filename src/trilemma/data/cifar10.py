"""CIFAR-10 (Krizhevsky 2009) from the official python archive ``cifar-10-python.tar.gz``, offline.

The archive comes from a path in the config and is md5-checked before anything is read (the
official md5 is c58f30108f718f92721af3b95e74349a; a profile may name another archive and its md5,
as the tests do with a generated one).  Members are read from the tar stream in memory, never
extracted.  The batches are Python pickles; they are unpickled only after the md5 matched, and
with an unpickler that resolves nothing but numpy's array reconstruction, so even a file with the
right checksum cannot run code.  When the archive is missing and ``data.cifar10.download`` is true,
it is downloaded first from the official URL (torchvision's ``CIFAR10.url``, or ``url``) to the
configured path, md5-checked; without that flag nothing is downloaded (there may be no network).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from trilemma.data.images import DataSourceError

OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
HOW_TO = ("put the official archive cifar-10-python.tar.gz (md5 {md5}, from "
          "https://www.cs.toronto.edu/~kriz/cifar.html) at {path}, or point data.cifar10.archive at it "
          "(or set data.cifar10.download: true where there is a network)")

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise DataSourceError(f"CIFAR-10 batch refers to {module}.{name}: not a CIFAR-10 batch")
        return super().find_class(module, name)


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _batch(raw: bytes, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    d = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    data, labels = np.asarray(d[b"data"], dtype=np.uint8), np.asarray(d[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataSourceError(f"CIFAR-10 batch {name}: data {data.shape}, {len(labels)} labels")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def load_source(src) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``load(src.archive, src.md5)`` (the typed ``data.cifar10``), downloading the archive first when
    it is missing and ``src.download`` is true."""
    archive = Path(src.archive)
    if src.download and not archive.is_file():
        from torchvision.datasets import CIFAR10

        from trilemma.data.download import download
        download(src.url or CIFAR10.url, archive, src.md5, HOW_TO.format(md5=src.md5, path=archive))
    return load(archive, src.md5)


def load(archive, md5: str = OFFICIAL_MD5) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train': (uint8 (50000, 3, 32, 32), labels), 'test': (uint8 (10000, 3, 32, 32), labels)}."""
    archive = Path(archive)
    if not archive.is_file():
        raise DataSourceError(f"CIFAR-10: {archive} not found; " + HOW_TO.format(md5=md5, path=archive))
    actual = md5sum(archive)
    if actual != md5:
        raise DataSourceError(f"CIFAR-10: {archive} has md5 {actual}, expected {md5} (corrupted or not "
                              f"CIFAR-10); " + HOW_TO.format(md5=md5, path=archive))
    raws = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.split("/")[-1]
            if member.isfile() and name in TRAIN_BATCHES + [TEST_BATCH]:
                raws[name] = tar.extractfile(member).read()
    missing = [n for n in TRAIN_BATCHES + [TEST_BATCH] if n not in raws]
    if missing:
        raise DataSourceError(f"CIFAR-10: {archive} lacks {missing}; " + HOW_TO.format(md5=md5, path=archive))
    train = [_batch(raws[n], n) for n in TRAIN_BATCHES]
    return {"train": (torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])),
            "test": _batch(raws[TEST_BATCH], TEST_BATCH)}


def write_archive(path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> str:
    """Write images in the official archive's format (for tests and local mirrors); return its md5.

    ``train``/``test``: (uint8 (N, 3, 32, 32), int labels).  The bytes are deterministic (fixed tar
    and gzip metadata), so a generated archive has a stable md5 for a given numpy version."""
    x_tr, y_tr = train
    parts = np.array_split(np.arange(len(x_tr)), len(TRAIN_BATCHES))
    members = {n: (x_tr[idx], y_tr[idx]) for n, idx in zip(TRAIN_BATCHES, parts)}
    members[TEST_BATCH] = test
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, (x, y) in members.items():
            d = {b"batch_label": name.encode(), b"labels": [int(v) for v in y],
                 b"data": np.ascontiguousarray(x, dtype=np.uint8).reshape(len(x), -1)}
            raw = pickle.dumps(d, protocol=2)
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size, info.mtime, info.mode = len(raw), 0, 0o644
            tar.addfile(info, io.BytesIO(raw))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return md5sum(path)
