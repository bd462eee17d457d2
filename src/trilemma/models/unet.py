"""The DDPM U-Net (Ho et al. 2020, App. B; a PixelCNN++-style backbone with self-attention), after the
official TF code (``diffusion_tf/models/unet.py``) and its PyTorch port in DDIM (``models/diffusion.py``).

- Res blocks: GroupNorm, swish, 3x3 conv, + projected time embedding, GroupNorm, swish, dropout,
  3x3 conv (zero-initialised, as the TF code's ``init_scale=0``), 1x1 shortcut when widths differ.
- Self-attention (single head) at the resolutions in ``attn_resolutions`` (16x16 for CIFAR-10),
  through ``torch.nn.functional.scaled_dot_product_attention``; output projection zero-initialised.
- Time: the Transformer sinusoidal embedding of t, a 2-layer MLP to 4 * ch, added in every res block.
- Optional class conditioning (an embedding with one extra *null* label, index ``num_classes``, for
  classifier-free guidance, Ho & Salimans 2022) and optional guidance-strength ``w`` conditioning
  (Meng et al. 2023, Sec. 3.1: w enters like t, through its own embedding), both added to the time
  embedding.  The w embedding's last layer starts at zero, so a w-conditioned copy of a CFG teacher
  equals the teacher's conditional model at initialisation (guided distillation's stage one).  ``cond`` is a label tensor or a dict ``{"y": labels, "w": w}``.
- On CUDA only: bf16 autocast and channels-last memory format (config flags); ``torch.compile`` of
  the forward pass as an option.  CPU always runs in float32.

The ``cifar10`` preset is the paper's 35.7M-parameter configuration (ch 128, ch_mult (1,2,2,2),
2 res blocks per level, attention at 16x16, dropout 0.1).  ``pd_cifar10`` is progressive
distillation's CIFAR-10 teacher (Salimans & Ho 2022, reference ``config/cifar_base.py``: ch 256,
ch_mult (1,1,1), 3 res blocks, attention at 16 and 8, dropout 0.2; our res blocks resample with plain
convolutions, not BigGAN-style, and attention has one head as the reference's).

``build_unet`` builds the U-Net of ``kind: unet`` in model.json; ``models/registry.build_model`` sends
``kind: unet, arch: ddgan_generator`` to the Denoising Diffusion GAN's image generator
(``models/ddgan_images.py``, which builds on this module's blocks) instead.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from trilemma.models.embedding import sinusoidal_embedding

PRESETS = {
    "cifar10": {"ch": 128, "ch_mult": [1, 2, 2, 2], "num_res_blocks": 2, "attn_resolutions": [16], "dropout": 0.1},
    "fashion": {"ch": 64, "ch_mult": [1, 2, 2], "num_res_blocks": 2, "attn_resolutions": [14], "dropout": 0.1},
    "pd_cifar10": {"ch": 256, "ch_mult": [1, 1, 1], "num_res_blocks": 3, "attn_resolutions": [16, 8], "dropout": 0.2},
    "tiny": {"ch": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [4], "dropout": 0.0},
}
ARCH_KEYS = ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout")


def resolve(unet_cfg: dict) -> dict:
    """The preset's architecture with the config's explicit keys on top."""
    out = dict(PRESETS[unet_cfg.get("preset") or "tiny"])
    out.update({k: v for k, v in unet_cfg.items() if k != "preset" and v is not None})
    return out


def norm_groups(ch: int) -> int:
    """32 groups as in DDPM (every channel count of its networks is a multiple of 128: 4 channels per
    group), but never fewer than 4 channels per group: with one channel per group GroupNorm subtracts
    each channel's own mean, which removes the per-channel time/label embedding that the res block
    adds before ``norm2`` (the ``tiny`` preset's ch 16 would ignore t and y entirely)."""
    return math.gcd(32, max(1, ch // 4))


def group_norm(ch: int, affine: bool = True) -> nn.GroupNorm:
    return nn.GroupNorm(norm_groups(ch), ch, affine=affine, eps=1e-6)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, temb: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_proj = nn.Linear(temb, c_out)
        self.norm2, self.dropout = group_norm(c_out), nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.shortcut(x) + h


class AttnBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.norm, self.qkv = group_norm(ch), nn.Conv2d(ch, 3 * ch, 1)
        self.proj_out = _zero(nn.Conv2d(ch, ch, 1))

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, 1, c, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)          # (b, 1, hw, c), scale 1/sqrt(c)
        return x + self.proj_out(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))               # TF "SAME" padding for stride 2


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, size):
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class UNet(nn.Module):
    def __init__(self, in_ch: int = 3, resolution: int = 32, *, ch: int = 128, ch_mult=(1, 2, 2, 2),
                 num_res_blocks: int = 2, attn_resolutions=(16,), dropout: float = 0.1, num_classes: int = 0,
                 w_cond: bool = False, bf16: bool = True, channels_last: bool = True, compile: bool = False):
        super().__init__()
        self.ch, self.num_classes, self.w_cond = ch, num_classes, w_cond
        self.bf16, self.channels_last, self.compile = bf16, channels_last, compile
        temb = 4 * ch
        self.temb = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.label_emb = nn.Embedding(num_classes + 1, temb) if num_classes else None
        self.w_emb = nn.Sequential(nn.Linear(ch, temb), nn.SiLU(), _zero(nn.Linear(temb, temb))) if w_cond else None
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.down, chans, c, res = nn.ModuleList(), [ch], ch, resolution
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(nn.ModuleList([ResBlock(c, ch * mult, temb, dropout)]
                                               + ([AttnBlock(ch * mult)] if res in attn_resolutions else [])))
                c = ch * mult
                chans.append(c)
            if level != len(ch_mult) - 1:
                self.down.append(nn.ModuleList([Downsample(c)]))
                chans.append(c)
                res = (res + 1) // 2
        self.mid = nn.ModuleList([ResBlock(c, c, temb, dropout), AttnBlock(c), ResBlock(c, c, temb, dropout)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(nn.ModuleList([ResBlock(c + chans.pop(), ch * mult, temb, dropout)]
                                             + ([AttnBlock(ch * mult)] if res in attn_resolutions else [])))
                c = ch * mult
            if level != 0:
                self.up.append(nn.ModuleList([Upsample(c)]))
                res = res * 2
        self.norm_out, self.conv_out = group_norm(c), _zero(nn.Conv2d(c, in_ch, 3, padding=1))
        self._compiled = None

    def embed(self, t, cond, batch: int, device) -> torch.Tensor:
        emb = self.temb(sinusoidal_embedding(t.reshape(-1).expand(batch), self.ch))
        y, w = (cond.get("y"), cond.get("w")) if isinstance(cond, dict) else (cond, None)
        if self.label_emb is not None:
            y = torch.full((batch,), self.num_classes, device=device) if y is None else y.long()
            emb = emb + self.label_emb(y)
        if self.w_emb is not None:
            w = torch.zeros(batch, device=device) if w is None else torch.as_tensor(w, device=device)
            emb = emb + self.w_emb(sinusoidal_embedding(w.float().reshape(-1).expand(batch) * 1000.0, self.ch))
        return emb

    def _forward(self, x, t, cond=None):
        emb = self.embed(t, cond, x.shape[0], x.device)
        hs = [self.conv_in(x)]
        for blocks in self.down:
            h = hs[-1]
            if isinstance(blocks[0], Downsample):
                hs.append(blocks[0](h))
                continue
            for block in blocks:
                h = block(h, emb) if isinstance(block, ResBlock) else block(h)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](hs[-1], emb)), emb)
        for blocks in self.up:
            if isinstance(blocks[0], Upsample):
                h = blocks[0](h, hs[-1].shape[-2:])
                continue
            h = torch.cat([h, hs.pop()], dim=1)
            for block in blocks:
                h = block(h, emb) if isinstance(block, ResBlock) else block(h)
        return self.conv_out(F.silu(self.norm_out(h)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        fn = self._forward
        if self.compile:
            if self._compiled is None:
                self._compiled = torch.compile(self._forward)
            fn = self._compiled
        return cuda_forward(self, fn, x, t, cond)

    def __deepcopy__(self, memo):
        """EMA copies: everything but the compiled function (recompiled lazily by the copy)."""
        clone = nn.Module.__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update({k: None if k == "_compiled" else copy.deepcopy(v, memo)
                               for k, v in self.__dict__.items()})
        return clone


def cuda_forward(module: nn.Module, fn, x: torch.Tensor, *args) -> torch.Tensor:
    """``fn(x, *args)``; on CUDA in channels-last memory format and under bf16 autocast when the
    module's flags say so, returning float32.  CPU always runs in float32."""
    if not x.is_cuda:
        return fn(x, *args)
    if module.channels_last:
        if not module.conv_in.weight.is_contiguous(memory_format=torch.channels_last):
            module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=module.bf16):
        out = fn(x, *args)
    return out.float().contiguous()


def build_unet(model_cfg: dict, data_dim) -> nn.Module:
    """``model_cfg["unet"]``: preset name + overrides; ``data_dim``: [C, H, W] of the dataset."""
    u = model_cfg.get("unet") or {}
    arch = resolve(u)
    c, h, _ = data_dim
    return UNet(c, h, **{k: arch[k] for k in ARCH_KEYS}, num_classes=u.get("num_classes", 0),
                w_cond=u.get("w_cond", False), bf16=u.get("bf16", True),
                channels_last=u.get("channels_last", True), compile=u.get("compile", False))
