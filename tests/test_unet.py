"""The DDPM U-Net: the paper's size, its attention against a plain softmax reference, conditioning
hooks, odd resolutions, and (with CUDA) bf16 + channels-last close to the float32 result."""
import copy
import math

import pytest
import torch

from trilemma.models.registry import build_model
from trilemma.models.unet import AttnBlock, UNet, build_unet


def _perturbed(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net


def test_cifar10_preset_is_the_papers_35_7m_network():
    net = build_model({"kind": "unet", "unet": {"preset": "cifar10"}}, [3, 32, 32])
    n = sum(p.numel() for p in net.parameters())
    assert round(n / 1e6, 1) == 35.7                                  # Ho et al. App. B
    assert sum(isinstance(m, AttnBlock) for m in net.modules()) == 2 + 3 + 1   # 16x16: 2 down blocks, 3 up blocks; mid


def test_attention_matches_softmax_reference():
    torch.manual_seed(0)
    block = _perturbed(AttnBlock(32))
    x = torch.randn(2, 32, 5, 6)
    h = block.norm(x)
    q, k, v = block.qkv(h).chunk(3, dim=1)
    q, k, v = (t.flatten(2) for t in (q, k, v))                       # (b, c, hw)
    w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(32), dim=-1)
    ref = x + block.proj_out(torch.einsum("bij,bcj->bci", w, v).reshape(x.shape))
    assert torch.allclose(block(x), ref, atol=1e-5)


def test_output_starts_at_zero_and_odd_sizes_work():
    net = build_unet({"unet": {"preset": "fashion"}}, [1, 28, 28])    # 28 -> 14 -> 7
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([0.0, 999.0])
    assert torch.equal(net(x, t), torch.zeros_like(x))               # zero-initialised conv_out (TF init_scale 0)
    out = _perturbed(net)(x, t)
    assert out.shape == x.shape and out.abs().sum() > 0


def test_class_and_w_conditioning():
    net = _perturbed(build_unet({"unet": {"preset": "tiny", "num_classes": 10, "w_cond": True}}, [3, 8, 8]))
    net.eval()
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([10.0, 500.0])
    null = torch.tensor([10, 10])
    assert torch.equal(net(x, t), net(x, t, {"y": null, "w": torch.zeros(2)}))   # no cond = null label, w = 0
    assert not torch.allclose(net(x, t, torch.tensor([1, 2])), net(x, t, torch.tensor([3, 4])))
    assert not torch.allclose(net(x, t, {"y": null, "w": torch.tensor([0.0, 0.0])}),
                              net(x, t, {"y": null, "w": torch.tensor([2.0, 2.0])}))


def test_ema_copy_and_state_dict_round_trip():
    net = build_unet({"unet": {"preset": "tiny", "compile": True}}, [3, 8, 8])
    clone = copy.deepcopy(net)
    assert clone._compiled is None and clone.compile
    fresh = UNet(3, 8, ch=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), dropout=0.0)
    fresh.load_state_dict(_perturbed(net).state_dict())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_channels_last_on_cuda_close_to_fp32():
    net = _perturbed(build_unet({"unet": {"preset": "tiny"}}, [3, 16, 16])).cuda().eval()
    ref = copy.deepcopy(net)
    ref.bf16 = ref.channels_last = False
    x, t = torch.randn(4, 3, 16, 16, device="cuda"), torch.tensor([3.0, 30.0, 300.0, 900.0], device="cuda")
    out = net(x, t)
    assert out.dtype == torch.float32 and net.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, ref(x, t), atol=5e-2, rtol=5e-2)
