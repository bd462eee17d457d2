"""Draw a sample bank from a trained model with one sampler spec, count its NFE by wrapping the
network, and time it (median seconds per batch of 100 after warm-up, device named).

Spec ids (the ``{spec}`` wildcard) name the sampler and its settings:
  ddpm-<beta|beta_tilde>-s<N>        ancestral DDPM, improved-DDPM respacing to N steps
  ddim-eta<E>-<uniform|quadratic>-s<N>, ddim-sigmahat-<skip>-s<N>
  pf_ode-<rk45|rk23|dop853>          adaptive probability-flow ODE (scipy solve_ivp)
  pf_ode-<euler|heun>-s<N>           fixed-step probability-flow ODE
  dpmpp2m-s<N>                       DPM-Solver++(2M) (Lu et al. 2022), N NFE on diffusers' linspace grid
  pd-s<N>                            a progressive-distillation student with its own N-step DDIM
  cd-s<N>                            the consistency-distillation model with Algorithm 1 (Song et al. 2023),
                                     re-noised at sampling.cd.tau.s<N>
  stoch-v<V>-s<N>                    the PD paper's stochastic sampler: posterior mean, log-variance
                                     (1-V) log sigma~^2_s|t + V log sigma^2_t|s (Salimans & Ho 2022)
On a continuous-time model (cosine logSNR) every N-step grid is t_i = i/N (Algorithm 2's grid).
  ddgan-s<T>                         Denoising Diffusion GAN with T steps (a ddgan_t<T>_* model)
  gan, wgan_gp                       one-shot generator of a GAN baseline (x = G(z), NFE 1)
Guidance (class-conditional models; labels balanced over the classes, stored in the bank):
  cfg-w<W>-s<N>                      classifier-free guidance at w = W, N-step DDIM (2 NFE per step)
  cg-w<S>-s<N>                       classifier guidance at scale S of an unconditional model (teacher_pd, or
                                     the CFG teacher's null label: guidance.eval.classifier_guides), N-step
                                     DDIM (needs --classifier-dir; the classifier pass is counted)
  gpd-w<W>-s<N>                      a guided-distillation student with its own N-step DDIM at w = W
  gstoch-w<W>-s<N>                   the guided students' N-step stochastic sampler (Meng et al.)
Each form is an entry of ``sampling/registry.py`` (its parse/id pair, builder, NFE rule, label).
Batch b of the bank starts from x_T drawn with seed (config seed, b): every sampler sees the same noise.
Image banks hold uint8 samples, quantised once here (no lossy files), as the metrics read them.

Several GPUs (``resources.sample.gpu`` > 1; issue 7): the verb re-runs itself under torchrun and each
rank draws a contiguous run of whole batches (``training/distributed.py``: ``batch_slice``).  Batch b
keeps its size and its seed (config seed, b), so the bank equals the 1-rank bank; rank 0 gathers the
runs in batch order and alone writes.  The clock runs on rank 0 after the other ranks have finished:
``time_per_100_s`` is one device's time, as in a 1-rank run.
"""
from __future__ import annotations

import sys
from dataclasses import asdict

import torch
from tqdm import tqdm

from trilemma import config, dag
from trilemma.artifacts import load_json, load_model, save_tensors
from trilemma.evaluation.timing import time_per_batch
from trilemma.sampling import registry
from trilemma.sampling.common import CountNFE
from trilemma.sampling.registry import SamplerSpec  # noqa: F401  (the spec type, re-exported)
from trilemma.training.bill import bank_columns
from trilemma.training.distributed import context, launch, shutdown


def parse_spec(spec: str) -> SamplerSpec:
    """The registry's parse (``sampling/registry.py``), as a configuration error."""
    try:
        return registry.parse(spec)
    except registry.UnknownSpec as exc:
        raise config.ConfigError(f"{exc}; see `trilemma sample --help` for the forms") from None


def make_sampler(spec: SamplerSpec, denoiser, sampling, info: dict | None = None, classifier=None):
    """A function ``run(x_T, generator, cond) -> x_0`` for this spec (``sampling``: the config's typed
    section; ``info``: the model's model.json; ``cond``: ``{y, w}`` of a guidance bank, else None):
    the registry's builder."""
    run = registry.build(spec, denoiser, sampling, info, classifier)
    return lambda x, g, cond=None: run(x, cond=cond, generator=g)


def add_arguments(p):
    p.add_argument("--model-dir", required=True, help="directory with model.safetensors and model.json")
    p.add_argument("--spec", required=True, help="sampler spec id (see above)")
    p.add_argument("--classifier-dir", default=None, help="classifier guidance: the noise-conditional classifier")
    p.add_argument("--out", required=True, help="output sample bank (.safetensors)")
    p.add_argument("--no-progress", action="store_true")


def run(args):
    cfg = config.load_typed(args.profile)
    spec = parse_spec(args.spec)
    launch(cfg.resource("sample").gpu, sys.argv[1:])
    ctx = context()
    torch.set_num_threads(cfg.timing.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    denoiser, info = load_denoiser(args.model_dir)
    counters = [CountNFE(denoiser.to(device))]
    classes = info["model"].get("num_classes") if isinstance(info.get("model"), dict) else None
    if args.classifier_dir:
        from trilemma.artifacts import load_network
        from trilemma.sampling.guidance import CountCalls
        classifier, classifier_info = load_network(args.classifier_dir)
        counters.append(CountCalls(classifier.to(device)))
        classes = classifier_info["out_dim"]   # one logit per class; the guided model may be unconditional
    sampler = make_sampler(spec, counters[0], cfg.sampling, info, classifier=counters[-1] if args.classifier_dir else None)
    n, bs, dim = cfg.sampling.num_samples, cfg.sampling.batch_size, info["data_dim"]
    shape = (dim,) if isinstance(dim, int) else tuple(dim)   # 2-D points: (2,); images: (C, H, W)
    if info["method"] in ("pd", "pd_teacher", "cd"):  # the distillation banks (dag.is_distill_bank)
        n = cfg.distill.eval.num_samples
    labels = None
    if spec.w is not None:  # guidance banks (dag.guided_bank_ids): balanced labels 0, 1, ..., C-1, 0, ...
        n = cfg.guidance.eval.num_samples
        labels = balanced_labels(n, classes, device)
    cond_of = (lambda lo, hi: None) if labels is None else (lambda lo, hi: {"y": labels[lo:hi], "w": spec.w})
    mine = ctx.batch_slice(n, bs)
    batches = tqdm(range(mine.start, mine.stop, bs), desc=f"sample {spec.spec}", unit="batch",
                   disable=args.no_progress or not ctx.is_main)
    parts = ctx.gather(draw(sampler, counters, batches, n, bs, shape, cfg.seed, device, cond_of))
    shutdown()
    if parts is None:   # not rank 0
        return
    samples = torch.cat([x for chunks, _ in parts for x in chunks])
    nfe = max((nfe for _, nfe in parts if nfe is not None), default=None)
    tm = cfg.timing
    g = torch.Generator(device).manual_seed(cfg.seed)
    x_100 = torch.randn((tm.batch, *shape), generator=g, device=device)
    cond_100 = None if labels is None else {"y": balanced_labels(tm.batch, classes, device),
                                            "w": spec.w}
    timing = time_per_batch(lambda: sampler(x_100, g, cond_100), device=device, repeats=tm.repeats,
                            warmup=tm.warmup)
    meta = {"kind": "bank", "model": info["name"], "model_method": info["method"], **asdict(spec),
            "sampler": spec.label, "nfe": nfe, "num_samples": n,
            "time_per_100_s": timing["median_s"] * 100 / tm.batch, "timing": timing,
            "device": timing["device"], "seed": cfg.seed, "round": info.get("round"),
            "train_seed": info.get("seed"), **bank_columns(info)}
    save_tensors(args.out, {"samples": samples, **({} if labels is None else {"labels": labels.cpu()})}, meta)
    print(f"wrote {args.out}: {n} samples, NFE {nfe}, {meta['time_per_100_s']:.4f} s / 100 samples")


def load_denoiser(model_dir):
    """A trained model (``artifacts.load_model``), or the exact denoiser of the toy's mixture where
    model.json's kind is ``oracle`` (``diffusion/oracle.py``, issue 24).  Chosen here, in the one stage
    that samples, so that the oracle's code is not a dependency of every training job."""
    if load_json(f"{model_dir}/model.json").get("kind") == "oracle":
        from trilemma.diffusion.oracle import load_oracle
        return load_oracle(model_dir)
    return load_model(model_dir)


def draw(sampler, counters, batches, n: int, bs: int, shape: tuple, seed: int, device, cond_of):
    """(samples of each batch start b in ``batches``, on the CPU; their NFE): batch b // bs starts
    from noise seeded with (seed, b // bs), so a batch is the same on any rank.  Image samples are
    quantised here, per batch (``to_uint8`` is elementwise: the same as quantising the whole bank)."""
    images = len(shape) > 1
    if images:
        from trilemma.data.images import to_uint8
    chunks, nfe = [], None
    for b in batches:
        g = torch.Generator(device).manual_seed(seed * 1_000_003 + b // bs)
        x_T = torch.randn((min(bs, n - b), *shape), generator=g, device=device)
        for c in counters:
            c.nfe = 0
        x = sampler(x_T, g, cond_of(b, b + x_T.shape[0])).cpu()
        chunks.append(to_uint8(x) if images else x)
        step_nfe = sum(c.nfe for c in counters)   # network passes, the classifier's included
        nfe = step_nfe if nfe is None else max(nfe, step_nfe)
    return chunks, nfe


def balanced_labels(n: int, num_classes: int, device) -> torch.Tensor:
    """Class labels 0, 1, ..., C-1, 0, 1, ...: every class requested equally often."""
    return torch.arange(n, device=device) % num_classes
