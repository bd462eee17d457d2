"""The floor of every metric: a fresh draw of the true data, the size of a sample bank.

A metric's value means something only beside the value of a perfect sampler, and on the toy a perfect
sampler exists: the data generator itself.  ``trilemma floor`` writes a bank of ``n`` fresh points
(with their true labels, so class consistency has a floor too) from a generator seed that neither
the training nor the evaluation draw uses, and the ordinary ``evaluate`` job scores it.  Its rows in
``metrics.csv`` have ``method`` = ``data``; every table prints them and the figures draw them as a
horizontal line.  Spec ids: ``fresh-n<N>`` (one per bank size of the profile: ``dag.floor_bank_ids``).

Image profiles have no generator to draw from, so their floor is ``n`` held-out real images (the test
split; the metrics' reference is the training split), and two ceilings bound the scale from above, so
that a FID can be read as "near real images" or "near a trivially bad generator":
``shuffled-n<N>``, the same images with every pixel position permuted independently across them (each
pixel keeps its marginal distribution, the images lose all structure), and ``blurred-n<N>``, the same
images under a Gaussian blur (``floor.blur_sigma`` pixels; torchvision's ``gaussian_blur``).
"""
from __future__ import annotations

import torch

from trilemma import config
from trilemma.dag import floor_method, parse_floor_spec
from trilemma.artifacts import ArtifactError, load_tensors, save_tensors
from trilemma.data import toy2d

LABEL = "Fresh draw of the data (floor)"
LABELS = {"fresh": "Held-out real images (floor)", "shuffled": "Pixels shuffled across images (ceiling)",
          "blurred": "Real images, Gaussian blur (ceiling)"}
BLUR_SIGMA = 1.0   # pixels: at 16x16 a blur that leaves the garment's outline and removes its texture


def shuffle_pixels(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each pixel position (and channel) permuted independently across the N images of (N, C, H, W)."""
    flat = x.reshape(x.shape[0], -1)
    order = torch.rand(flat.shape, generator=generator).argsort(0)
    return flat.gather(0, order).reshape(x.shape)


def blur(x: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """uint8 images under a Gaussian blur of ``sigma`` pixels (kernel 2 ceil(3 sigma) + 1), back to uint8."""
    from torchvision.transforms.v2.functional import gaussian_blur
    k = 2 * int(-(-3 * sigma // 1)) + 1
    return gaussian_blur(x.float(), [k, k], [sigma, sigma]).round().clamp(0, 255).to(torch.uint8)


def image_floor(data: dict, kind: str, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels): the first ``n`` test images as they are, shuffled or blurred."""
    if n > data["eval"].shape[0]:
        raise ArtifactError(f"the floor needs {n} held-out images; the data artifact has {data['eval'].shape[0]}")
    x, y = data["eval"][:n], data["eval_labels"][:n]
    if kind == "shuffled":
        x = shuffle_pixels(x, generator)
    elif kind == "blurred":
        x = blur(x)
    return x, y

def add_arguments(p):
    p.add_argument("--data", required=True, help="dataset from `trilemma fetch-data` (its generator parameters)")
    p.add_argument("--spec", required=True, help="fresh-n<N>: the bank size")
    p.add_argument("--out", required=True, help="output sample bank (.safetensors)")
    p.add_argument("--no-progress", action="store_true", help="accepted as for `trilemma sample`; no effect")


def run(args):
    cfg = config.load_typed(args.profile)
    kind, n = parse_floor_spec(args.spec)
    data, dmeta = load_tensors(args.data)
    if dmeta.get("kind") != "dataset":
        raise ArtifactError(f"{args.data}: not a dataset artifact")
    g = torch.Generator().manual_seed(cfg.seed * 1000 + 3)   # 1 and 2 are the train and eval draws
    if dmeta.get("image"):
        x, y = image_floor(data, kind, n, g)
    elif kind == "fresh":
        x, y = toy2d.draw(dmeta["dataset"], dmeta["params"], n, g)
    else:
        raise ArtifactError(f"{args.spec}: the 2-D profiles' floor is a fresh draw only")
    method = floor_method(args.spec)
    meta = {"kind": "bank", "model": "data", "model_method": method, "method": method, "spec": args.spec,
            "sampler": LABELS[kind] if dmeta.get("image") else LABEL, "steps": None, "nfe": 0, "num_samples": n, "time_per_100_s": None,
            "device": None, "seed": cfg.seed}
    save_tensors(args.out, {"samples": x, "labels": y}, meta)
    print(f"wrote {args.out}: {n} {kind} {'images' if dmeta.get('image') else 'points'} of {dmeta['dataset']}")
