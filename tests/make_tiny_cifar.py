"""Write ``tests/data/tiny-cifar-10-python.tar.gz``: a tiny archive in CIFAR-10's official format
(pickled batches of uint8 3x32x32 images) for the `ci_images` profile and the tests.  Images of
class k are a coloured square on a smooth background, at a random place, so a classifier can learn
them and the archive compresses well.  Run: python tests/make_tiny_cifar.py; put the printed md5
into config/profiles/ci_images.yaml."""
from pathlib import Path

import numpy as np

from trilemma.data.cifar10 import write_archive

OUT = Path(__file__).parent / "data" / "tiny-cifar-10-python.tar.gz"


def tiny_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    palette = (np.stack([np.arange(10) * 25, 255 - np.arange(10) * 25, (np.arange(10) * 77) % 256], 1))
    ys, xs = np.mgrid[0:32, 0:32]
    x = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for i, k in enumerate(labels):
        img = np.broadcast_to((ys * 4)[None], (3, 32, 32)).astype(np.int64) // 2
        top, left = rng.integers(4, 14, 2)
        img[:, top:top + 14, left:left + 14] = palette[k][:, None, None]
        x[i] = np.clip(img, 0, 255)
    return x, labels


if __name__ == "__main__":
    md5 = write_archive(OUT, tiny_images(200, 0), tiny_images(100, 1))
    print(f"{OUT}: {OUT.stat().st_size} bytes, md5 {md5}")
