"""The image profiles' floor and ceilings (stages/floor.py) and the area resize (data/images.py)."""
import pytest
import torch

from trilemma import dag
from trilemma.data.images import area_resize
from trilemma.stages.floor import blur, image_floor, shuffle_pixels


def test_floor_spec_round_trip():
    for kind in dag.FLOOR_KINDS:
        assert dag.parse_floor_spec(dag.floor_spec(5000, kind)) == (kind, 5000)
    assert dag.floor_method("fresh-n10") == dag.FLOOR
    with pytest.raises(ValueError):
        dag.parse_floor_spec("fresh-10")
    with pytest.raises(ValueError):
        dag.floor_spec(10, "noisy")


def test_shuffled_pixels_keep_each_pixels_values_and_lose_the_images():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8, generator=g)
    s = shuffle_pixels(x, torch.Generator().manual_seed(1))
    # per pixel position: the same multiset of values (the marginal distribution is kept exactly)
    assert torch.equal(x.reshape(50, -1).sort(0).values, s.reshape(50, -1).sort(0).values)
    # but the images are not the images: almost no image survives whole
    assert sum(bool((s == x[i]).all((1, 2, 3)).any()) for i in range(50)) <= 1


def test_blur_keeps_a_constant_image_and_the_mean_of_a_smooth_one():
    flat = torch.full((2, 1, 16, 16), 77, dtype=torch.uint8)
    assert torch.equal(blur(flat), flat)
    edge = torch.zeros(1, 1, 16, 16, dtype=torch.uint8)
    edge[..., 8:] = 255
    b = blur(edge)
    assert b[0, 0, 8, 7] > 0 and b[0, 0, 8, 8] < 255            # the edge is softened
    assert torch.equal(b[..., 0, :], b[..., 15, :])               # every row sees the same edge


def test_image_floor_uses_the_test_split_in_order():
    data = {"eval": torch.arange(6 * 4, dtype=torch.uint8).reshape(6, 1, 2, 2), "eval_labels": torch.arange(6)}
    x, y = image_floor(data, "fresh", 4, torch.Generator().manual_seed(0))
    assert torch.equal(x, data["eval"][:4]) and torch.equal(y, torch.arange(4))
    with pytest.raises(Exception, match="held-out"):
        image_floor(data, "fresh", 7, torch.Generator())


def _window_means(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area interpolation by its definition (adaptive average pooling): output pixel i averages the
    input rows floor(i H / h) .. ceil((i + 1) H / h) - 1, and the same for columns."""
    H = x.shape[-1]
    lo = [(i * H) // size for i in range(size)]
    hi = [-(-(i + 1) * H // size) for i in range(size)]
    out = torch.empty((*x.shape[:-2], size, size), dtype=torch.float64)
    for i in range(size):
        for j in range(size):
            out[..., i, j] = x[..., lo[i]:hi[i], lo[j]:hi[j]].double().mean((-2, -1))
    return out


def test_area_resize_is_the_block_mean_at_an_integer_factor():
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    exact = x.double().reshape(3, 1, 14, 2, 14, 2).mean((3, 5)).round().to(torch.uint8)
    assert torch.equal(area_resize(x, 14), exact)
    assert area_resize(x, None) is x
    # 28 -> 16: a constant image stays constant, and the mean is kept to rounding
    assert torch.equal(area_resize(torch.full((1, 1, 28, 28), 200, dtype=torch.uint8), 16),
                       torch.full((1, 1, 16, 16), 200, dtype=torch.uint8))
    # 28 -> 16: each output pixel is the mean of its (overlapping) window, rounded (a rounding tie may
    # fall either way between float32 and float64: at most 1 apart)
    diff = area_resize(x, 16).int() - _window_means(x, 16).round().int()
    assert diff.abs().max() <= 1 and (diff == 0).double().mean() > 0.99
    with pytest.raises(ValueError):
        area_resize(x, 32)
