"""Draw a sample bank from a trained model with one sampler spec, count its NFE by wrapping the
network, and time it (median seconds per batch of 100 after warm-up, device named).

Spec ids (the ``{spec}`` wildcard) name the sampler and its settings:
  ddpm-<beta|beta_tilde>-s<N>        ancestral DDPM, improved-DDPM respacing to N steps
  ddim-eta<E>-<uniform|quadratic>-s<N>, ddim-sigmahat-<skip>-s<N>
  pf_ode-<rk45|rk23|dop853>          adaptive probability-flow ODE (scipy solve_ivp)
  pf_ode-<euler|heun>-s<N>           fixed-step probability-flow ODE
  pd-s<N>                            a progressive-distillation student with its own N-step DDIM
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
Batch b of the bank starts from x_T drawn with seed (config seed, b): every sampler sees the same noise.
Image banks hold uint8 samples, quantised once here (no lossy files), as the metrics read them.

Several GPUs (``resources.sample.gpu`` > 1; issue 7): the verb re-runs itself under torchrun and each
rank draws a contiguous run of whole batches (``training/distributed.py``: ``batch_slice``).  Batch b
keeps its size and its seed (config seed, b), so the bank equals the 1-rank bank; rank 0 gathers the
runs in batch order and alone writes.  The clock runs on rank 0 after the other ranks have finished:
``time_per_100_s`` is one device's time, as in a 1-rank run.
"""
from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from trilemma import config, dag
from trilemma.artifacts import load_json, load_model, save_tensors
from trilemma.diffusion.timesteps import SKIPS, respaced, sampling_grid
from trilemma.evaluation.timing import time_per_batch
from trilemma.sampling.common import CountNFE
from trilemma.training.distributed import context, launch, shutdown


@dataclass(frozen=True)
class SamplerSpec:
    spec: str
    method: str                 # ddpm | ddim | pf_ode
    steps: int | None = None
    variance: str | None = None
    eta: float | None = None
    sigma_hat: bool = False
    skip: str | None = None
    solver: str | None = None
    v: float | None = None
    w: float | None = None      # guidance strength (classifier scale for classifier guidance)
    stochastic: bool = False

    @property
    def label(self) -> str:
        if self.method == "ddpm":
            return f"DDPM (σ²={'β' if self.variance == 'beta' else 'β̃'})"
        if self.method == "ddim":
            return f"DDIM ({'σ̂' if self.sigma_hat else f'η={self.eta:g}'}, {self.skip})"
        if self.method == "pd":
            return "PD student (DDIM)"
        if self.method == "stochastic":
            return f"PD stochastic (v={self.v:g})"
        if self.method == "pf_ode":
            return f"PF-ODE ({self.solver})"
        if self.method == "guided_pd":
            return f"Guided PD student ({'stochastic' if self.stochastic else 'DDIM'})"
        if self.method in ("cfg", "classifier_guidance"):
            return "CFG teacher (DDIM)" if self.method == "cfg" else "Classifier guidance (DDIM)"
        return {"ddgan": f"DDGAN (T={self.steps})", "gan": "GAN", "wgan_gp": "WGAN-GP"}[self.method]


_PATTERNS = [
    (re.compile(r"^ddpm-(beta|beta_tilde)-s(\d+)$"), lambda m: dict(method="ddpm", variance=m[1], steps=int(m[2]))),
    (re.compile(r"^ddim-eta([0-9.]+)-(uniform|quadratic)-s(\d+)$"),
     lambda m: dict(method="ddim", eta=float(m[1]), skip=m[2], steps=int(m[3]))),
    (re.compile(r"^ddim-sigmahat-(uniform|quadratic)-s(\d+)$"),
     lambda m: dict(method="ddim", eta=1.0, sigma_hat=True, skip=m[1], steps=int(m[2]))),
    (re.compile(r"^pf_ode-(rk45|rk23|dop853)$"), lambda m: dict(method="pf_ode", solver=m[1])),
    (re.compile(r"^pf_ode-(euler|heun)-s(\d+)$"), lambda m: dict(method="pf_ode", solver=m[1], steps=int(m[2]))),
    (re.compile(r"^pd-s(\d+)$"), lambda m: dict(method="pd", eta=0.0, skip="uniform", steps=int(m[1]))),
    (re.compile(r"^stoch-v([0-9.]+)-s(\d+)$"), lambda m: dict(method="stochastic", v=float(m[1]), steps=int(m[2]))),
    (re.compile(r"^ddgan-s(\d+)$"), lambda m: dict(method="ddgan", steps=int(m[1]))),
    (re.compile(r"^(gan|wgan_gp)$"), lambda m: dict(method=m[1], steps=1)),
    (re.compile(r"^(cfg|cg|gpd|gstoch)-w([0-9.]+)-s(\d+)$"),
     lambda m: dict(method=GUIDED_METHODS[m[1]], w=float(m[2]), steps=int(m[3]), stochastic=m[1] == "gstoch",
                    eta=None if m[1] == "gstoch" else 0.0, skip="uniform")),
]
GUIDED_METHODS = {"cfg": "cfg", "cg": "classifier_guidance", "gpd": "guided_pd", "gstoch": "guided_pd"}


def parse_spec(spec: str) -> SamplerSpec:
    for pattern, build in _PATTERNS:
        m = pattern.match(spec)
        if m:
            return SamplerSpec(spec=spec, **build(m))
    raise config.ConfigError(f"unknown sampler spec {spec!r}; see `trilemma sample --help` for the forms")


def make_sampler(spec: SamplerSpec, denoiser, cfg: dict, info: dict | None = None, classifier=None):
    """A function ``run(x_T, generator, cond) -> x_0`` for this spec (``info``: the model's
    model.json; ``cond``: ``{y, w}`` of a guidance bank, else None)."""
    if spec.w is not None:
        return _guided_sampler(spec, denoiser, info, classifier)
    run = _plain_sampler(spec, denoiser, cfg, info)
    return lambda x, g, cond=None: run(x, g)


def _guided_sampler(spec: SamplerSpec, denoiser, info: dict, classifier):
    """Guidance is a wrapper around the (NFE-counted) denoiser, never a sampler flag."""
    from trilemma.diffusion.continuous import uniform_grid
    from trilemma.sampling.ddim import sample_ddim
    from trilemma.sampling.guidance import CFGDenoiser, ClassifierGuidedDenoiser
    wanted = {"cfg": ("cfg_teacher",), "classifier_guidance": ("cfg_teacher", "pd_teacher"),
              "guided_pd": ("guided_pd", "guided_w")}[spec.method]   # guided_w: the stage-one student
    if info["method"] not in wanted:
        raise config.ConfigError(f"sampler spec {spec.spec!r} needs a {wanted} model, not {info['name']!r}")
    null = info["model"].get("num_classes")   # None: an unconditional model (classifier guidance of teacher_pd)
    if spec.method == "cfg":
        denoiser = CFGDenoiser(denoiser, null)
    elif spec.method == "classifier_guidance":
        if classifier is None:
            raise config.ConfigError(f"sampler spec {spec.spec!r} needs --classifier-dir")
        denoiser = ClassifierGuidedDenoiser(denoiser, classifier, null)
    if spec.stochastic:
        from trilemma.sampling.guided_stochastic import sample_guided_stochastic
        return lambda x, g, cond: sample_guided_stochastic(denoiser, x, spec.steps, cond=cond, generator=g)
    ts = uniform_grid(spec.steps)
    return lambda x, g, cond: sample_ddim(denoiser, x, ts, cond=cond, generator=g)


def _plain_sampler(spec: SamplerSpec, denoiser, cfg: dict, info: dict | None):
    if spec.method in ("ddgan", "gan", "wgan_gp"):
        return _gan_sampler(spec, denoiser, info)
    if denoiser.schedule.continuous:
        return _continuous_sampler(spec, denoiser)
    T = denoiser.schedule.num_steps
    if spec.method == "ddpm":
        from trilemma.sampling.ddpm import sample_ddpm
        ts = sampling_grid(respaced(T, spec.steps))
        clip = cfg["sampling"]["ddpm"]["clip_x0"]
        return lambda x, g: sample_ddpm(denoiser, x, ts, variance=spec.variance,
                                        clip_x0=tuple(clip) if clip else None, generator=g)
    if spec.method == "ddim":
        from trilemma.sampling.ddim import sample_ddim
        ts = sampling_grid(SKIPS[spec.skip](T, spec.steps))
        return lambda x, g: sample_ddim(denoiser, x, ts, eta=spec.eta, sigma_hat=spec.sigma_hat, generator=g)
    from trilemma.sampling.pf_ode import sample_pf_ode_adaptive, sample_pf_ode_fixed
    if spec.steps is None:
        ode = cfg["sampling"]["pf_ode"]
        return lambda x, g: sample_pf_ode_adaptive(denoiser, x, method=spec.solver, rtol=ode["rtol"], atol=ode["atol"])
    return lambda x, g: sample_pf_ode_fixed(denoiser, x, steps=spec.steps, solver=spec.solver)


def _continuous_sampler(spec: SamplerSpec, denoiser):
    """Samplers of a continuous-time model on the uniform grid t_i = i / N."""
    from trilemma.diffusion.continuous import uniform_grid
    ts = uniform_grid(spec.steps)
    if spec.method in ("ddim", "pd"):
        from trilemma.sampling.ddim import sample_ddim
        return lambda x, g: sample_ddim(denoiser, x, ts, eta=spec.eta, sigma_hat=spec.sigma_hat, generator=g)
    if spec.method == "stochastic":
        from trilemma.sampling.ddpm import sample_ddpm
        return lambda x, g: sample_ddpm(denoiser, x, ts, v=spec.v, generator=g)
    raise config.ConfigError(f"sampler spec {spec.spec!r} is not defined for a continuous-time model")


def _gan_sampler(spec: SamplerSpec, denoiser, info: dict):
    T = info["schedule"]["num_steps"] if info["schedule"] else 1
    if info["method"] != spec.method or T != spec.steps:
        raise config.ConfigError(f"sampler spec {spec.spec!r} does not fit model {info['name']!r} "
                                 f"(method {info['method']}, {T} steps)")
    nz, units = info["model"]["nz"], info.get("data_units", 1.0)   # units: model.json of train_gan
    if spec.method == "ddgan":
        from trilemma.sampling.ddgan import sample_ddgan
        return lambda x, g: sample_ddgan(denoiser, x, latent_dim=nz, generator=g, units=units)
    from trilemma.sampling.gan import sample_gan
    return lambda x, g: sample_gan(denoiser, x.shape[0], latent_dim=nz, generator=g, device=x.device, units=units)


def add_arguments(p):
    p.add_argument("--model-dir", required=True, help="directory with model.safetensors and model.json")
    p.add_argument("--spec", required=True, help="sampler spec id (see above)")
    p.add_argument("--classifier-dir", default=None, help="classifier guidance: the noise-conditional classifier")
    p.add_argument("--out", required=True, help="output sample bank (.safetensors)")
    p.add_argument("--no-progress", action="store_true")


def run(args):
    cfg = config.load(args.profile)
    spec = parse_spec(args.spec)
    launch(dag.resources(cfg, "sample")["gpu"], sys.argv[1:])
    ctx = context()
    torch.set_num_threads(cfg["timing"]["threads"])
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
    sampler = make_sampler(spec, counters[0], cfg, info, classifier=counters[-1] if args.classifier_dir else None)
    n, bs, dim = cfg["sampling"]["num_samples"], cfg["sampling"]["batch_size"], info["data_dim"]
    shape = (dim,) if isinstance(dim, int) else tuple(dim)   # 2-D points: (2,); images: (C, H, W)
    if info["method"] in ("pd", "pd_teacher"):  # the distillation chain's banks (dag.distill_bank_ids)
        n = cfg["distill"]["eval"]["num_samples"]
    labels = None
    if spec.w is not None:  # guidance banks (dag.guided_bank_ids): balanced labels 0, 1, ..., C-1, 0, ...
        n = cfg["guidance"]["eval"]["num_samples"]
        labels = balanced_labels(n, classes, device)
    cond_of = (lambda lo, hi: None) if labels is None else (lambda lo, hi: {"y": labels[lo:hi], "w": spec.w})
    mine = ctx.batch_slice(n, bs)
    batches = tqdm(range(mine.start, mine.stop, bs), desc=f"sample {spec.spec}", unit="batch",
                   disable=args.no_progress or not ctx.is_main)
    parts = ctx.gather(draw(sampler, counters, batches, n, bs, shape, cfg["seed"], device, cond_of))
    shutdown()
    if parts is None:   # not rank 0
        return
    samples = torch.cat([x for chunks, _ in parts for x in chunks])
    nfe = max((nfe for _, nfe in parts if nfe is not None), default=None)
    tm = cfg["timing"]
    g = torch.Generator(device).manual_seed(cfg["seed"])
    x_100 = torch.randn((tm["batch"], *shape), generator=g, device=device)
    cond_100 = None if labels is None else {"y": balanced_labels(tm["batch"], classes, device),
                                            "w": spec.w}
    timing = time_per_batch(lambda: sampler(x_100, g, cond_100), device=device, repeats=tm["repeats"],
                            warmup=tm["warmup"])
    meta = {"kind": "bank", "model": info["name"], "model_method": info["method"], **asdict(spec),
            "sampler": spec.label, "nfe": nfe, "num_samples": n,
            "time_per_100_s": timing["median_s"] * 100 / tm["batch"], "timing": timing,
            "device": timing["device"], "seed": cfg["seed"], "round": info.get("round"),
            "train_seed": info.get("seed")}
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
