"""The Denoising Diffusion GAN's image networks (Xiao, Kreis & Vahdat 2022, Sec. 3 and App. C; official
``score_sde/models/ncsnpp_generator_adagn.py`` and ``discriminator.py``), smaller than the paper's.

Generator G(x_t, t, z) -> x0' (the paper's parameterization: G predicts x0 and the posterior
q(x_{t-1} | x_t, x0') is sampled outside, ``sampling/ddgan.py``), a U-Net in the NCSN++ style:

- the latent z ~ N(0, I_nz) goes through a mapping network (PixelNorm, a dense layer nz -> z_emb_dim,
  then ``n_mlp`` dense layers with activation), as the official ``z_transform``;
- every GroupNorm is an adaptive group norm, AdaGN(h, z) = gamma(z) GN(h) + beta(z), gamma initialised
  to 1 and beta to 0 (official ``AdaptiveGroupNorm``);
- BigGAN-style residual blocks with the sinusoidal time embedding (through a 2-layer MLP) added after
  the first convolution and the skip sum rescaled by 1/sqrt(2) (``skip_rescale``); self-attention at
  ``attn_resolutions`` (the DDPM U-Net's block); average-pool down, nearest up (the official code
  uses FIR [1,3,3,1] resampling); tanh output.

Discriminator D(x_{t-1}, x_t, t) -> logit, the official ``Discriminator_small``: x_{t-1} and x_t
concatenated along channels, a 1x1 conv, ``DownConvBlock``s (LeakyReLU(0.2), conv, + dense(t_emb),
LeakyReLU, [down], zero-initialised conv, 1x1 skip, sum / sqrt(2)), minibatch standard deviation
(groups of 4 consecutive examples), a 3x3 conv, LeakyReLU, a spatial sum and a linear layer.

Both take the 0-indexed chain index t (the code's convention, methods.md §4.1) as a float.  On CUDA
the generator runs under bf16 autocast like the U-Net (``unet.cuda_forward``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trilemma.models.embedding import sinusoidal_embedding
from trilemma.models.unet import AttnBlock, _zero, cuda_forward, group_norm

G_KEYS = ("nz", "z_emb_dim", "n_mlp", "ch", "ch_mult", "num_res_blocks", "attn_resolutions", "t_emb_dim")


class PixelNorm(nn.Module):
    def forward(self, z):
        return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class AdaGN(nn.Module):
    """gamma(w) * GroupNorm(h) + beta(w), the style w from the mapping network."""

    def __init__(self, ch: int, style: int):
        super().__init__()
        self.norm = group_norm(ch, affine=False)
        self.style = nn.Linear(style, 2 * ch)
        nn.init.zeros_(self.style.weight)
        self.style.bias.data = torch.cat([torch.ones(ch), torch.zeros(ch)])

    def forward(self, h, w):
        gamma, beta = self.style(w)[:, :, None, None].chunk(2, dim=1)
        return gamma * self.norm(h) + beta


class AdaResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, temb: int, style: int):
        super().__init__()
        self.norm1, self.conv1 = AdaGN(c_in, style), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_proj = nn.Linear(temb, c_out)
        self.norm2, self.conv2 = AdaGN(c_out, style), _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb, w):
        h = self.conv1(F.silu(self.norm1(x, w))) + self.temb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h, w)))
        return (self.skip(x) + h) / math.sqrt(2.0)


class DDGANImageGenerator(nn.Module):
    def __init__(self, in_ch: int, resolution: int, *, nz: int = 100, z_emb_dim: int = 256, n_mlp: int = 4,
                 ch: int = 64, ch_mult=(1, 2, 2), num_res_blocks: int = 2, attn_resolutions=(16,),
                 t_emb_dim: int = 256, bf16: bool = True):
        super().__init__()
        self.nz, self.t_dim, self.bf16, self.channels_last = nz, t_emb_dim, bf16, False
        layers = [PixelNorm(), nn.Linear(nz, z_emb_dim), nn.SiLU()]
        for _ in range(n_mlp):
            layers += [nn.Linear(z_emb_dim, z_emb_dim), nn.SiLU()]
        self.mapping = nn.Sequential(*layers)
        self.temb = nn.Sequential(nn.Linear(t_emb_dim, t_emb_dim), nn.SiLU(), nn.Linear(t_emb_dim, t_emb_dim))
        block = lambda a, b: AdaResBlock(a, b, t_emb_dim, z_emb_dim)  # noqa: E731
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.down, skips, c, res = nn.ModuleList(), [], ch, resolution
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(nn.ModuleList([block(c, ch * mult)] + self._attn(ch * mult, res, attn_resolutions)))
                c = ch * mult
                skips.append(c)
            if level != len(ch_mult) - 1:
                self.down.append(nn.ModuleList([nn.AvgPool2d(2, ceil_mode=True)]))
                res = (res + 1) // 2
        self.mid = nn.ModuleList([block(c, c), AttnBlock(c), block(c, c)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks):
                self.up.append(nn.ModuleList([block(c + skips.pop(), ch * mult)]
                                             + self._attn(ch * mult, res, attn_resolutions)))
                c = ch * mult
            if level != 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest")]))
                res = res * 2
        self.norm_out, self.conv_out = AdaGN(c, z_emb_dim), nn.Conv2d(c, in_ch, 3, padding=1)

    @staticmethod
    def _attn(ch: int, res: int, attn_resolutions) -> list[nn.Module]:
        return [AttnBlock(ch)] if res in attn_resolutions else []

    def _forward(self, x_t, t, z):
        emb = self.temb(sinusoidal_embedding(t.reshape(-1).expand(x_t.shape[0]), self.t_dim))
        w = self.mapping(z)
        h, skips = self.conv_in(x_t), []
        for blocks in self.down:
            if not isinstance(blocks[0], AdaResBlock):   # downsample
                h = blocks[0](h)
                continue
            h = self._run_blocks(blocks, h, emb, w)
            skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb, w)), emb, w)
        for blocks in self.up:
            if not isinstance(blocks[0], AdaResBlock):   # upsample to the matching skip's size
                h = F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest")
                continue
            h = self._run_blocks(blocks, torch.cat([h, skips.pop()], dim=1), emb, w)
        return torch.tanh(self.conv_out(F.silu(self.norm_out(h, w))))

    @staticmethod
    def _run_blocks(blocks, h, emb, w):
        for block in blocks:
            h = block(h, emb, w) if isinstance(block, AdaResBlock) else block(h)
        return h

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return cuda_forward(self, self._forward, x_t, t, z)


class DownConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, temb: int, downsample: bool):
        super().__init__()
        self.conv1, self.dense_t = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Linear(temb, c_out)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.downsample = downsample

    def forward(self, x, emb):
        h = F.leaky_relu(self.conv1(F.leaky_relu(x, 0.2)) + self.dense_t(emb)[:, :, None, None], 0.2)
        if self.downsample:
            h, x = F.avg_pool2d(h, 2, ceil_mode=True), F.avg_pool2d(x, 2, ceil_mode=True)
        return (self.conv2(h) + self.skip(x)) / math.sqrt(2.0)


class DDGANImageDiscriminator(nn.Module):
    def __init__(self, in_ch: int, *, ngf: int = 64, t_emb_dim: int = 128, levels: int = 3):
        super().__init__()
        self.t_dim = t_emb_dim
        self.t_embed = nn.Sequential(nn.Linear(t_emb_dim, t_emb_dim), nn.LeakyReLU(0.2),
                                     nn.Linear(t_emb_dim, t_emb_dim))
        self.start_conv = nn.Conv2d(2 * in_ch, 2 * ngf, 1)
        widths = [2 * ngf] + [ngf * min(8, 4 * 2 ** i) for i in range(levels)]   # 2, 4, 8, 8 x ngf
        self.blocks = nn.ModuleList([DownConvBlock(2 * ngf, 2 * ngf, t_emb_dim, False)] + [
            DownConvBlock(a, b, t_emb_dim, True) for a, b in zip(widths[:-1], widths[1:])])
        self.final_conv = _zero(nn.Conv2d(widths[-1] + 1, widths[-1], 3, padding=1))
        self.end_linear = nn.Linear(widths[-1], 1)

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = F.leaky_relu(self.t_embed(sinusoidal_embedding(t.reshape(-1).expand(x_t.shape[0]), self.t_dim)), 0.2)
        h = self.start_conv(torch.cat([x_prev, x_t], dim=1))
        for block in self.blocks:
            h = block(h, emb)
        h = F.leaky_relu(self.final_conv(minibatch_stddev(h)), 0.2)
        return self.end_linear(h.sum(dim=(2, 3))).squeeze(1)


def minibatch_stddev(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """One extra channel: the std over groups of ``group`` examples, averaged (ProGAN / StyleGAN2).

    The groups are runs of consecutive examples (the official code groups every (b/group)-th
    example; a batch's examples are drawn independently, so the two are the same in distribution):
    under ``torchrun`` a rank's slice of the global batch (``training/distributed.py``), a multiple
    of ``group`` long, then holds whole groups of the global batch, and N ranks compute the 1-rank
    discriminator (the official DDP code groups within each GPU's batch, which differs)."""
    b, c, hh, ww = h.shape
    g = min(b, group)
    if b % g:
        g = 1
    std = (h.reshape(-1, g, c, hh, ww).var(1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    return torch.cat([h, std.repeat_interleave(g).reshape(-1, 1, 1, 1).expand(b, 1, hh, ww)], dim=1)


def build_generator(model_cfg: dict, data_dim) -> DDGANImageGenerator:
    """``model_cfg``: model.json's ``model`` (``nz`` and the ``generator`` section); [C, H, W]."""
    c, h, _ = data_dim
    gen = model_cfg["generator"]
    return DDGANImageGenerator(c, h, nz=model_cfg["nz"], **{k: gen[k] for k in G_KEYS if k != "nz"},
                               bf16=gen.get("bf16", True))


def build_discriminator(d_cfg: dict, data_dim) -> DDGANImageDiscriminator:
    return DDGANImageDiscriminator(data_dim[0], ngf=d_cfg["ngf"], t_emb_dim=d_cfg["t_emb_dim"],
                                   levels=d_cfg["levels"])
