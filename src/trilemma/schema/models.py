"""The configuration's one definition: pydantic v2 models of every section (issue 17).

``config/base.yaml`` + a profile's ``defaults`` chain + the profile file are merged and validated
against :class:`Config` (:func:`trilemma.config.load`); ``schema/config.schema.json`` is generated
from it (``trilemma config --schema``, drift-tested).  Every model forbids unknown keys; the
cross-key rules are the model validators (a section's own rules on its model, rules that span
sections on :class:`Config`).  Field order is the order of the toy profile, so a resolved config
keeps its key order (Snakemake compares a job's params by their repr).

Optional fields default to ``None`` and are left out of the resolved config when a profile does not
set them (``model_dump(exclude_unset=True)``): a default the toy never stated would change its jobs'
params.  Shared values are stated once, in ``config/base.yaml``, not as model defaults.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, Field, create_model, model_validator

from trilemma import dag  # the grid of sample banks the cross-key rules check (torch-free)
from trilemma.keys import round_entry
from trilemma.sampling import registry
from trilemma.schema.blocks import (D, Decay, EvenDim, LrSchedule, NonNegInt, PosFloat, PosInt, RoundKey, Section,
                                    Share, unique_list)

# ----------------------------------------------------------------------------- resources, data
class Resource(Section):
    gpu: NonNegInt = D("GPUs (Slurm: --gpus)")
    runtime: PosInt = D("minutes (Slurm: -t)")
    mem_mb: PosInt = D("memory in MB (Slurm: --mem)")
    threads: PosInt = D("threads (Slurm: --cpus-per-task; locally they bound what runs side by side)")


class Gauss25(Section):
    spacing: PosFloat = D("distance between neighbouring means of the 5x5 grid {-2..2} x spacing")
    std: PosFloat = D("standard deviation of each mode")


class Ring8(Section):
    radius: PosFloat = D("radius of the ring of 8 modes")
    std: PosFloat = D("standard deviation of each mode")


class SwissRoll(Section):
    noise: Annotated[float, Field(ge=0)] = D("Gaussian noise added to the roll")
    scale: PosFloat = D("scale factor of the roll")


class FashionMnist(Section):
    source_dir: Annotated[str, Field(min_length=1)] = D("directory holding the four IDX files (Debian's dataset-fashion-mnist)")
    download: bool = D("download the four .gz files from the official mirror when source_dir lacks them", False)
    download_dir: Annotated[str, Field(min_length=1)] = D("where downloaded files go", "external/fashion-mnist")
    mirror: Optional[Annotated[str, Field(min_length=1)]] = D("base URL of the files (default torchvision's FashionMNIST mirror)", None)


class Cifar10(Section):
    archive: Annotated[str, Field(min_length=1)] = D("path of cifar-10-python.tar.gz")
    md5: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] = D("md5 of the archive, verified before use")
    download: bool = D("download the archive to `archive` when it is missing", False)
    url: Optional[Annotated[str, Field(min_length=1)]] = D("the archive's URL (default torchvision's CIFAR10.url)", None)


class ImageData(Section):
    crop: Optional[Annotated[int, Field(ge=4)]] = D("centre crop to crop x crop pixels (null: the full image)")
    resize: Optional[Annotated[int, Field(ge=4)]] = D(
        "side of the square images after averaging over areas (F.interpolate mode 'area', rounded to uint8), "
        "after the crop (null: keep the size)", None)


class Data(Section):
    name: Literal["gauss25", "ring8", "swissroll", "fashion_mnist", "cifar10"] = D(
        "the dataset; its section below holds its parameters")
    num_train: PosInt = D("training examples")
    num_eval: PosInt = D("the reference draw (or test split) every sample bank is compared with")
    gauss25: Optional[Gauss25] = D("25 Gaussians on a 5x5 grid; label = grid row", None)
    ring8: Optional[Ring8] = D("8 Gaussians on a ring", None)
    swissroll: Optional[SwissRoll] = D("the 2-D swiss roll", None)
    fashion_mnist: Optional[FashionMnist] = D("Fashion-MNIST (28x28 grey)", None)
    cifar10: Optional[Cifar10] = D("CIFAR-10 (32x32 RGB)", None)
    image: Optional[ImageData] = D("image profiles: preprocessing", None)

    @model_validator(mode="after")
    def _dataset_section(self):
        if getattr(self, self.name) is None:
            raise ValueError(f"data.{self.name}: missing (the section of data.name = {self.name!r})")
        return self


# ----------------------------------------------------------------------------- models and training
class UNet(Section):
    preset: Literal["cifar10", "fashion", "tiny", "pd_cifar10"] = D("architecture preset (models/unet.py); the keys below override it")
    ch: Optional[PosInt] = D("base channels", None)
    ch_mult: Optional[Annotated[list[PosInt], Field(min_length=1)]] = D("channel multiplier per resolution", None)
    num_res_blocks: Optional[PosInt] = D("residual blocks per resolution", None)
    attn_resolutions: Optional[list[PosInt]] = D("resolutions with self-attention", None)
    dropout: Optional[Decay] = D("dropout rate", None)
    num_classes: Optional[NonNegInt] = D("class labels of a conditional U-Net (set by the stage from the data)", None)
    w_cond: Optional[bool] = D("guidance weight w as an input (stage one of guided distillation)", None)
    bf16: Optional[bool] = D("bfloat16 autocast on CUDA", None)
    channels_last: Optional[bool] = D("channels-last memory format on CUDA", None)
    compile: Optional[bool] = D("torch.compile the network", None)


class MlpModel(Section):
    kind: Literal["mlp"] = D("the 2-D profiles' network: an MLP with a sinusoidal time embedding")
    hidden: PosInt = D("hidden width")
    depth: PosInt = D("hidden layers")
    emb_dim: EvenDim = D("time-embedding width")


class UNetModel(Section):
    kind: Literal["unet"] = D("the image profiles' network: the DDPM U-Net (models/unet.py)")
    unet: UNet = D("the U-Net's preset and overrides")


Model = Annotated[Union[MlpModel, UNetModel], Field(discriminator="kind")]


class Train(Section):
    """The training block of every network trained by the one loop (training/loop.py), defined once."""
    samples: PosInt = D("the clock: training length in samples seen (steps = samples / batch_size)")
    batch_size: PosInt = D("examples per optimizer step")
    lr: PosFloat = D("peak learning rate (Adam)")
    warmup_samples: NonNegInt = D("linear LR warm-up, in samples seen")
    lr_schedule: LrSchedule = D("LR after warm-up: constant, or cosine/linear decay to min_lr_ratio x lr")
    min_lr_ratio: Share = D("final LR as a fraction of lr (cosine and linear schedules)")
    weight_decay: Annotated[float, Field(ge=0)] = D("AdamW weight decay")
    ema_decay: Decay = D("EMA of the published weights (0: the raw weights)")
    grad_clip: Optional[PosFloat] = D("gradient-norm clip (null: none)")
    checkpoint_every: PosInt = D("optimizer steps between resume checkpoints")
    log_every: PosInt = D("optimizer steps between log lines")
    hflip: bool = D("image profiles: random horizontal flips of the batches (default false)", False)


class LinearSchedule(Section):
    name: Literal["linear"] = D("DDPM's linear beta schedule (Ho et al. 2020)")
    beta_start: PosFloat = D("beta_1")
    beta_end: Annotated[float, Field(gt=0, lt=1)] = D("beta_T")
    num_steps: Annotated[int, Field(ge=2)] = D("T, the discrete steps of the chain")


class Teacher(Section):
    schedule: LinearSchedule = D("the DDPM teacher's noise schedule")
    model: Model = D("the teacher's network (a discriminated union on kind)")
    train: Train = D("the teacher's training")


class LogSnrSchedule(Section):
    name: Literal["cosine_logsnr"] = D("the cosine schedule in continuous time, logSNR clipped (Salimans & Ho 2022)")
    logsnr_min: float = D("lowest logSNR")
    logsnr_max: float = D("highest logSNR")


class DistillTeacher(Section):
    schedule: LogSnrSchedule = D("the continuous-time schedule of the distillation teacher")
    parameterization: Literal["x", "eps", "v", "both"] = D(
        "the network's output (Salimans & Ho Table 1; both: x and eps, MLP only)")
    weighting: Literal["snr", "snr_trunc", "snr_plus_one"] = D("loss weighting (paper default: snr_trunc)")
    model: Model = D("the distillation teacher's network (a discriminated union on kind)")
    train: Train = D("the distillation teacher's training")
    shared: Optional[Literal["teacher_cfg"]] = D(
        "null: train the distillation teacher; teacher_cfg: the CFG teacher's network is the distillation teacher, "
        "through its null label (stages/share_model.py; needs guidance.enabled; model and train then unused)", None)


PerRoundInt = Annotated[dict[RoundKey, PosInt], Field(description="{default, s<N>}: the value of the round that makes the N-step student")]
PerRoundFloat = Annotated[dict[RoundKey, PosFloat], Field(description="{default, s<N>}: the value of the round that makes the N-step student")]


def _need_default(name: str, value) -> None:
    if isinstance(value, dict) and "default" not in value:
        raise ValueError(f"{name}: 'default' is a required property")


class PerRound:
    """The rounds of a distillation chain, whose ``updates`` and ``lr`` may differ per round; a mixin
    of :class:`Rounds` and :class:`GuidedRounds`."""

    def round_value(self, field: str, steps: int) -> Any:
        """``field`` (updates | lr) of the round that makes the ``steps``-step student: its ``s<steps>``
        entry, else ``default``, or the plain value (the key ``dag.round_key`` names in its job)."""
        value = getattr(self, field)
        entry = round_entry(value, steps)
        return value if entry is None else value[entry]


class Rounds(Section, PerRound):
    """Algorithm 2 of Salimans & Ho: one DAG job per round N -> N/2, no EMA, Adam, LR annealed to 0."""
    updates: PerRoundInt = D("optimizer steps per round ({default, s<N>})")
    batch_size: PosInt = D("examples per update")
    lr: PerRoundFloat = D("peak LR per round ({default, s<N>}), annealed linearly to 0 within the round")
    grad_clip: Optional[PosFloat] = D("gradient-norm clip (null: none)")
    checkpoint_every: PosInt = D("updates between resume checkpoints")
    log_every: PosInt = D("updates between log lines")
    hflip: bool = D("image profiles: random horizontal flips of the rounds' batches (default false)", False)

    @model_validator(mode="after")
    def _defaults(self):
        _need_default("updates", self.updates)
        _need_default("lr", self.lr)
        return self


class DistillEval(Section):
    num_samples: PosInt = D("samples per bank of the distillation chain")
    baseline_max_steps: PosInt = D("DDIM and the stochastic sampler on the teacher at N <= this")
    student_max_steps: Optional[PosInt] = D("students above this get no bank (links of the chain)", None)
    stochastic_v: unique_list(float) = D("v of the stochastic sampler (Salimans & Ho App.) on the teacher and students")


START = D("the teacher's DDIM steps distilled by the first round (a power of two)")
FINAL = D("the last student's steps (a power of two below start_steps)")
HEADLINE = D("the student the report leads with")


class Chain:
    """A progressive-distillation chain start_steps -> ... -> final_steps (each round halves the steps);
    a mixin of :class:`Distill` and :class:`Guidance`, whose fields (start_steps, final_steps,
    headline_steps) keep the toy's order."""

    def chain_problems(self, chain: str) -> list[str]:
        problems = []
        for key in ("start_steps", "final_steps"):
            n = getattr(self, key)
            if n & (n - 1):
                problems.append(f"{chain}.{key}: {n} is not a power of two (each round halves the steps)")
        if self.final_steps >= self.start_steps:
            problems.append(f"{chain}.final_steps ({self.final_steps}) must be below start_steps ({self.start_steps})")
        if not problems and self.headline_steps not in self.students():
            problems.append(f"{chain}.headline_steps: {self.headline_steps} is not a student of the chain {self.students()}")
        return problems

    def students(self) -> list[int]:
        out, n = [], self.start_steps // 2
        while n >= self.final_steps:
            out.append(n)
            n //= 2
        return out


class Distill(Section, Chain):
    teacher: DistillTeacher = D("the distillation teacher (continuous time)")
    start_steps: Annotated[int, Field(ge=2)] = START
    final_steps: PosInt = FINAL
    headline_steps: PosInt = HEADLINE
    rounds: Rounds = D("the rounds N -> N/2 (Algorithm 2)")
    eval: DistillEval = D("the chain's banks")

    @model_validator(mode="after")
    def _chain(self):
        problems = self.chain_problems("distill")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# ----------------------------------------------------------------------------- consistency distillation
class ConsistencyTrain(Section):
    updates: PosInt = D("optimizer steps")
    batch_size: PosInt = D("examples per update")
    lr: PosFloat = D("Adam learning rate (constant, the paper's CD)")
    ema_decay: Decay = D("EMA of the published weights (0: the raw theta)")
    grad_clip: Optional[PosFloat] = D("gradient-norm clip (null: none)")
    checkpoint_every: PosInt = D("updates between resume checkpoints")
    log_every: PosInt = D("updates between log lines")
    hflip: bool = D("image profiles: random horizontal flips of the batches (default false)", False)


class Consistency(Section):
    t_min: Annotated[float, Field(gt=0, lt=1)] = D("eps, the boundary time in the teacher's t")
    points: Annotated[int, Field(ge=2)] = D("N, discretisation points t_1 = eps < ... < t_N = 1, uniform in t")
    target_ema: Decay = D("mu of the target network theta- (0: theta- = stopgrad(theta), the CIFAR-10 code's CD)")
    distance: Literal["l2", "pseudo_huber"] = D("l2 (squared) | pseudo_huber (improved consistency training, c = huber_c sqrt(dim))")
    huber_c: PosFloat = D("c of the pseudo-Huber distance, per sqrt(dimension)")
    train: ConsistencyTrain = D("consistency distillation's training (initialised from the teacher)")


# ----------------------------------------------------------------------------- sampling (sections from the registry)
Sampling = create_model(
    "Sampling", __base__=Section,
    num_samples=(PosInt, D("samples per bank")),
    batch_size=(PosInt, D("samples per forward batch")),
    **{e.section: (e.schema, D(e.schema.__doc__.strip())) for e in registry.ENTRIES.values() if e.section})

# ----------------------------------------------------------------------------- oracle, timing, evaluation, report
class Oracle(Section):
    enabled: bool = D("register the exact denoiser of the 2-D mixtures as the model `oracle`")
    samplers: list[Annotated[str, Field(min_length=1)]] = D(
        "prefixes of the teacher's spec ids sampled again on the exact denoiser (the solver's share of the error)")


class Timing(Section):
    batch: PosInt = D("samples per timed batch")
    repeats: PosInt = D("timed repeats")
    warmup: NonNegInt = D("untimed warm-up runs")
    threads: PosInt = D("torch threads while sampling and timing: one clock for every method")


class Inception(Section):
    weights: Optional[Annotated[str, Field(min_length=1)]] = D("path of torch-fidelity's TF-Inception weights (never downloaded)")
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] = D("sha256 of the weights file")


class ImageEvaluation(Section):
    extractor: Literal["feature_net", "inception"] = D("feature space of FID/KID/PRC/IS")
    inception: Optional[Inception] = D("the Inception weights (extractor: inception)", None)
    reference: Literal["train", "eval"] = D("the split the banks are compared with")
    batch_size: PosInt = D("images per feature batch")
    isc_splits: PosInt = D("splits of the Inception Score")
    kid_subsets: PosInt = D("subsets of KID")
    kid_subset_size: Annotated[int, Field(ge=2)] = D("samples per KID subset")


class Features(Section):
    seed: NonNegInt = D("seed of the random Fourier features")
    width: PosInt = D("random Fourier features")
    bandwidth: PosFloat = D("lengthscale = bandwidth x the data's local scale (gauss25/ring8: mode std; swissroll: noise)")


class Evaluation(Section):
    hq_num_std: PosFloat = D("PacGAN: a sample is high quality within this many std of the nearest mode")
    mode_min_share: Share = D("a mode is covered with at least this share of its expected hq samples")
    prc_neighborhood: PosInt = D("k of the improved precision/recall (Kynkaanniemi et al. 2019)")
    max_prc_samples: PosInt = D("samples per side of precision/recall")
    images: Optional[ImageEvaluation] = D("image profiles: the feature space and its metrics", None)
    features: Optional[Features] = D("the toy's headline feature map: random Fourier features", None)
    bootstrap: Annotated[int, Field(ge=2)] = D("bootstrap resamples of each bank for the 95% intervals")


class Report(Section):
    dpi: PosInt = D("figure resolution")
    scatter_points: PosInt = D("points per panel of the 2-D scatter figures")
    sample_panels: list[str] = D("bank ids shown in samples.png, after the real data")
    fast_sampling: list[str] = D("bank ids: the rows of fast_sampling.md")
    grid_images: PosInt = D("image profiles: images per sample grid", 64)


# ----------------------------------------------------------------------------- DDGAN and the GAN baselines
class VpSchedule(Section):
    beta_min: PosFloat = D("beta_min of the discretised VP SDE (paper App. B)")
    beta_max: PosFloat = D("beta_max of the discretised VP SDE")


class GanModel(Section):
    hidden: PosInt = D("width of G and D")
    layers: Annotated[int, Field(ge=2)] = D("G and D: `layers` FC layers (App. C.5: 3)")
    nz: PosInt = D("latent z dimension")
    emb_dim: EvenDim = D("time-embedding width")
    d_fourier: NonNegInt = D("octaves of the Fourier input encoding of every discriminator (0: plain input)")
    g_fourier: NonNegInt = D("octaves of the Fourier encoding of the DDGAN generator's input [x_t, z] "
                             "(0 or absent: plain input; the baselines' G: plain z)", 0)
    scale_ref: Optional[PosFloat] = D("2-D data: the spread (sqrt tr Cov) the recipe's units refer to; the "
                                      "data are scaled by scale_ref / their spread", None)


class GanTrain(Section):
    samples: PosInt = D("the clock in samples seen (steps = samples / batch_size)")
    batch_size: PosInt = D("pairs per step")
    lr_g: PosFloat = D("generator learning rate (Adam)")
    lr_d: PosFloat = D("discriminator learning rate (Adam)")
    betas: Annotated[list[float], Field(min_length=2, max_length=2)] = D("Adam betas")
    r1_gamma: Annotated[float, Field(ge=0)] = D("R1 weight on real x_(t-1), every lazy_reg-th D step")
    t0_share: Optional[Share] = D("DDGAN: probability of the last denoising step (index 0) when t is drawn per "
                                  "training pair, the others uniform (null: uniform, official)", None)
    lazy_reg: PosInt = D("R1 every lazy_reg-th D step, not rescaled (official code)")
    ema_decay: Decay = D("EMA of G")
    warmup_samples: NonNegInt = D("linear LR warm-up, in samples seen")
    lr_schedule: LrSchedule = D("LR after warm-up")
    min_lr_ratio: Share = D("final LR as a fraction of the peak")
    checkpoint_every: PosInt = D("steps between resume checkpoints")
    log_every: PosInt = D("steps between log lines")
    hflip: bool = D("image profiles: random horizontal flips (official code) (default false)", False)


class WganGp(Section):
    gp_weight: Annotated[float, Field(ge=0)] = D("gradient-penalty weight")
    n_critic: PosInt = D("critic steps per generator step")
    lr: PosFloat = D("learning rate (Adam)")
    betas: Annotated[list[float], Field(min_length=2, max_length=2)] = D("Adam betas")


class Baselines(Section):
    methods: unique_list(Literal["gan", "wgan_gp"]) = D("GAN baselines of DDGAN's Figure 6 (2-D profiles)")
    wgan_gp: WganGp = D("WGAN-GP's settings")


class DdganGenerator(Section):
    z_emb_dim: PosInt = D("width of the mapping network of z")
    n_mlp: NonNegInt = D("layers of the mapping network")
    ch: PosInt = D("base channels")
    ch_mult: Annotated[list[PosInt], Field(min_length=1)] = D("channel multiplier per resolution")
    num_res_blocks: PosInt = D("residual blocks per resolution")
    attn_resolutions: list[PosInt] = D("resolutions with self-attention")
    t_emb_dim: EvenDim = D("time-embedding width")
    bf16: Optional[bool] = D("bfloat16 autocast on CUDA", None)


class DdganDiscriminator(Section):
    ngf: PosInt = D("base channels (official Discriminator_small)")
    t_emb_dim: EvenDim = D("time-embedding width")
    levels: PosInt = D("down-sampling levels")


class DdganImageModel(Section):
    nz: PosInt = D("latent z dimension")
    generator: DdganGenerator = D("NCSN++-like U-Net with AdaGN (models/ddgan_images.py)")
    discriminator: DdganDiscriminator = D("the time-conditional discriminator")


class Ddgan(Section):
    steps: unique_list(PosInt, min_length=1) = D("the T ablation (paper Table 2; T = 1 is the one-shot GAN)")
    coverage_steps: PosInt = D("DDGAN T trained with every seed (mode coverage mean and spread)")
    seeds: unique_list(NonNegInt, min_length=1) = D("training seeds of coverage_steps and of each baseline")
    ablation_seeds: PosInt = D("the T ablation trains every T with the first N of seeds")
    schedule: VpSchedule = D("the discretised VP SDE")
    model: Optional[GanModel] = D("2-D profiles: the FC generator and discriminator of DDGAN and the baselines", None)
    train: GanTrain = D("DDGAN's (and the baselines') training")
    baselines: Optional[Baselines] = D("2-D profiles: the GAN baselines", None)
    image_model: Optional[DdganImageModel] = D("image profiles: DDGAN's image generator and discriminator", None)

    @model_validator(mode="after")
    def _coverage(self):
        if self.coverage_steps not in self.steps:
            raise ValueError(f"ddgan.coverage_steps = {self.coverage_steps} must be one of ddgan.steps = {self.steps}")
        return self


# ----------------------------------------------------------------------------- guidance
class GuidanceTeacher(Section):
    model: Model = D("the CFG teacher's network (image profiles: a U-Net; num_classes is set by the stage from the data)")
    train: Train = D("the CFG teacher's training")


class Classifier(Section):
    model: MlpModel = D("the noise-conditional classifier's network (an MLP)")
    train: Train = D("the classifier's training")


class Stage1(Section):
    w_min: Annotated[float, Field(ge=0)] = D("w ~ U[w_min, w_max] (Meng et al. Algorithm 1)")
    w_max: Annotated[float, Field(ge=0)] = D("upper end of the range of w")
    w_emb_dim: Optional[EvenDim] = D("2-D profiles: Fourier features of w, added to the time embedding", None)
    w_ends: Share = D("share of the examples (stage one and the stage-two rounds) at w = w_min or w_max "
                      "exactly, half each; the rest uniform (0: the paper's uniform draw)")
    train: Train = D("stage one's training")


class GuidedRounds(Section, PerRound):
    last_step: Share = D("share of each batch at the student's last step t = 1/N, the rest i ~ U{1..N} "
                         "(0: Algorithm 2's uniform draw)")
    updates: PerRoundInt = D("optimizer steps per round ({default, s<N>})")
    batch_size: PosInt = D("examples per update")
    lr: Union[PosFloat, PerRoundFloat] = D("peak LR: one value, or per round ({default, s<N>})")
    grad_clip: Optional[PosFloat] = D("gradient-norm clip (null: none)")
    checkpoint_every: PosInt = D("updates between resume checkpoints")
    log_every: PosInt = D("updates between log lines")
    hflip: bool = D("image profiles: random horizontal flips of the batches (default false)", False)

    @model_validator(mode="after")
    def _defaults(self):
        _need_default("updates", self.updates)
        _need_default("lr", self.lr)
        return self


class GuidanceEval(Section):
    num_samples: PosInt = D("samples per guidance bank, labels balanced over the classes")
    w: unique_list(Annotated[float, Field(ge=0)], min_length=1) = D("the trade-off: CFG teacher at reference_steps, the headline student")
    reference_steps: PosInt = D("the CFG teacher's reference sampler (fd_to_teacher); 2 NFE per step")
    grid_w: unique_list(Annotated[float, Field(ge=0)], min_length=1) = D("the w x steps table: teacher and students at grid_steps")
    grid_steps: unique_list(PosInt) = D("student steps of the w x steps table")
    stochastic_steps: unique_list(PosInt) = D("the stochastic sampler with N NFE runs the N/2-step student")
    classifier_scales: unique_list(Annotated[float, Field(ge=0)]) = D("classifier guidance scales s (2-D profiles)")
    classifier_steps: PosInt = D("DDIM steps of classifier guidance")
    classifier_guides: Optional[Literal["teacher_pd", "teacher_cfg"]] = D(
        "2-D profiles: the model whose unconditional eps classifier guidance steers", None)
    headline_w: Annotated[float, Field(ge=0)] = D("the w of the guided student's curve in fid_vs_time")


class Guidance(Section, Chain):
    enabled: bool = D("false: no guidance jobs (the DAG without this branch)")
    p_uncond: Literal[0.1, 0.2] = D("probability of dropping the label (CFG paper Table 1)")
    teacher: GuidanceTeacher = D("the classifier-free-guidance teacher (Ho & Salimans 2022)")
    classifier: Optional[Classifier] = D("2-D profiles: the noise-conditional classifier of classifier guidance", None)
    stage1: Stage1 = D("stage one of Meng et al. (2023): the w-conditioned student")
    half_grid: bool = D("stage two also trains each student from the half-grid times j/2N")
    start_steps: Annotated[int, Field(ge=2)] = START
    final_steps: PosInt = FINAL
    headline_steps: PosInt = HEADLINE
    rounds: GuidedRounds = D("stage two: the progressive-distillation rounds with w as an input")
    eval: GuidanceEval = D("the guidance banks")

    @model_validator(mode="after")
    def _rules(self):
        problems = self.chain_problems("guidance")
        students = self.students()
        e = self.eval
        problems += [f"guidance.eval.grid_steps: {n} is not a student of the chain {students}"
                     for n in e.grid_steps if n not in students]
        problems += [f"guidance.eval.stochastic_steps: {n} needs the {n // 2}-step student (the chain has {students})"
                     for n in e.stochastic_steps if n % 2 or n // 2 not in students]
        lo, hi = self.stage1.w_min, self.stage1.w_max
        if not lo < hi:
            problems.append(f"guidance.stage1: w_min ({lo}) must be below w_max ({hi})")
        for key in ("w", "grid_w"):
            outside = [w for w in getattr(e, key) if not lo <= w <= hi]
            if outside:
                problems.append(f"guidance.eval.{key}: {outside} outside [w_min, w_max] = [{lo}, {hi}]")
        if e.headline_w not in e.w:
            problems.append(f"guidance.eval.headline_w: {e.headline_w} is not one of guidance.eval.w")
        if not set(e.grid_w) <= set(e.w):
            problems.append("guidance.eval.grid_w must be a subset of guidance.eval.w (fd_to_teacher needs "
                            "the reference bank at every w)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# ----------------------------------------------------------------------------- feature net, deck
class FeatureNetModel(Section):
    channels: Annotated[list[PosInt], Field(min_length=1)] = D("conv channels per block")
    features: PosInt = D("penultimate features (FID/KID/PRC space)")
    dropout: Decay = D("dropout before the logits")


class FeatureNet(Section):
    model: FeatureNetModel = D("the classifier whose features replace Inception (Fashion-MNIST)")
    train: Train = D("its training")
    min_test_accuracy: Share = D("the stage fails below this test accuracy")


class Inversion(Section):
    steps: Annotated[list[PosInt], Field(min_length=1)] = D("DDIM steps S of the inversion x_0 -> x_T -> x_0")
    students: list[PosInt] = D("students pd_s<N> inverted on their own N-step grid")
    num_points: PosInt = D("held-out points (the first of the eval split)")


class DeckConsistency(Section):
    steps: Annotated[list[PosInt], Field(min_length=1)] = D("DDIM steps S of each decode of one x_T batch")
    num_points: PosInt = D("x_T per decode")
    figure_points: PosInt = D("points shown in the figure")


class Interpolation(Section):
    steps: PosInt = D("DDIM steps of each decode")
    pairs: PosInt = D("pairs of x_T")
    points: Annotated[int, Field(ge=2)] = D("values of a in [0, 1] per path")


class Denoising(Section):
    steps: Annotated[list[PosInt], Field(min_length=1)] = D("T on DDGAN's discretised VP SDE; a T of ddgan.steps also gets its generator")
    num_points: PosInt = D("x_t per T, spread evenly over the chain's steps")
    num_samples: Annotated[int, Field(ge=2)] = D("draws of each conditional")
    figure_points: PosInt = D("x_t shown per T (the last step)")


class Deck(Section):
    enabled: bool = D("false: no deck studies")
    inversion: Inversion = D("DDIM Table 2: inversion with S steps")
    consistency: DeckConsistency = D("DDIM Fig. 5: decodes of one x_T batch at each S")
    interpolation: Interpolation = D("DDIM Fig. 6: slerp and linear paths of x_T")
    denoising: Optional[Denoising] = D("DDGAN Fig. 2: the true denoising distribution vs the best Gaussian and "
                                       "DDGAN (2-D data with a closed form)", None)


TRAIN_BLOCKS = (Train, GanTrain)   # the blocks handed to training.loop.LoopConfig.from_config


# ----------------------------------------------------------------------------- the whole configuration
IMAGE_DATASETS = ("fashion_mnist", "cifar10")


class Config(Section):
    """A profile's resolved configuration."""
    profile: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")] = D("the profile's name (results/<profile>/)")
    seed: NonNegInt = D("the global seed")
    resources: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")], Resource] = D(
        "per-rule requests ({default, <rule>}), passed to Snakemake as the rules' resources")
    data: Data = D("the dataset")
    teacher: Teacher = D("the DDPM teacher (Ho et al. 2020)")
    distill: Distill = D("progressive distillation (Salimans & Ho 2022)")
    consistency: Consistency = D("consistency distillation (Song et al. 2023, Algorithm 2) of teacher_pd: the model `cd`")
    sampling: Sampling = D("the sample banks of the DDPM teacher's grid")
    oracle: Optional[Oracle] = D("the exact denoiser of the Gaussian-mixture toys (issue 24)", None)
    timing: Timing = D("the sampling clock")
    evaluation: Evaluation = D("the evaluation protocol")
    report: Report = D("figures and tables")
    ddgan: Ddgan = D("Denoising Diffusion GAN (Xiao et al. 2022) and the GAN baselines")
    guidance: Guidance = D("guidance and its distillation (methods.md 6-7)")
    deck: Optional[Deck] = D("issue 19: DDIM inversion, consistency, interpolation and DDGAN's true denoising distribution", None)
    feature_net: Optional[FeatureNet] = D("image profiles: the classifier trained for the feature space", None)

    @model_validator(mode="after")
    def _cross_key_rules(self):
        problems = self._problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def is_image(self) -> bool:
        return self.data.name in IMAGE_DATASETS

    def resource(self, rule: str) -> Resource:
        """A rule's cluster requests: ``resources.<rule>``, else ``resources.default`` (dag.resources)."""
        return self.resources.get(rule, self.resources["default"])

    def _problems(self) -> list[str]:
        cfg = self.model_dump(exclude_unset=True)
        problems = []
        T = self.teacher.schedule.num_steps
        for family in ("ddpm", "ddim"):
            too_many = [s for s in getattr(self.sampling, family).steps if s > T]
            if too_many:
                problems.append(f"sampling.{family}.steps: {too_many} exceed teacher.schedule.num_steps = {T}")
        banks = set(dag.bank_ids(cfg))
        for key in ("sample_panels", "fast_sampling"):
            for bank in getattr(self.report, key):
                if bank not in banks:
                    problems.append(f"report.{key}: '{bank}' is not a sample bank of this profile; "
                                    f"known banks: {sorted(banks)}")
        if self.distill.teacher.shared and not self.guidance.enabled:
            problems.append("distill.teacher.shared: teacher_cfg needs guidance.enabled (the CFG teacher is trained there)")
        if self.evaluation.prc_neighborhood >= min(self.sampling.num_samples, self.data.num_eval):
            problems.append("evaluation.prc_neighborhood must be smaller than the number of samples")
        return problems + (self._image_problems() if self.is_image else self._points_problems())

    def _points_problems(self) -> list[str]:
        """2-D profiles: MLPs, and the sections only they read."""
        problems = [f"{where}.kind: 'unet' does not fit data.name {self.data.name!r} (images need 'unet', points 'mlp')"
                    for where, m in (("teacher.model", self.teacher.model), ("distill.teacher.model", self.distill.teacher.model))
                    if m.kind != "mlp"]
        needed = {"evaluation.features": self.evaluation.features, "ddgan.model": self.ddgan.model,
                  "ddgan.baselines": self.ddgan.baselines, "deck": self.deck}
        if self.guidance.enabled:
            needed |= {"guidance.classifier": self.guidance.classifier,
                       "guidance.stage1.w_emb_dim": self.guidance.stage1.w_emb_dim,
                       "guidance.eval.classifier_guides": self.guidance.eval.classifier_guides}
            if self.guidance.teacher.model.kind != "mlp":
                problems.append("guidance.teacher.model.kind: 2-D profiles need 'mlp'")
        return problems + [f"{key}: missing (2-D profiles need it; see config/profiles/toy.yaml)"
                           for key, value in needed.items() if value is None]

    def _image_problems(self) -> list[str]:
        """Image profiles: U-Nets, and the image-only sections they need."""
        problems = []
        if self.teacher.model.kind != "unet":
            problems.append(f"teacher.model.kind: {self.teacher.model.kind!r} does not fit data.name "
                            f"{self.data.name!r} (images need 'unet', points 'mlp')")
            return problems
        ev = self.evaluation.images
        needed = {"data.image": self.data.image, "evaluation.images": ev, "distill.rounds.hflip": self.distill.rounds.hflip if "hflip" in self.distill.rounds.model_fields_set else None,
                  "ddgan.image_model": self.ddgan.image_model}
        if ev is not None and ev.extractor == "feature_net":
            needed["feature_net"] = self.feature_net
        if ev is not None and ev.extractor == "inception":
            needed["evaluation.images.inception"] = ev.inception
        problems += [f"{key}: missing (image profiles need it; see config/profiles/fashion.yaml)"
                     for key, value in needed.items() if value is None]
        t = self.distill.teacher
        if t.model.kind != "unet":
            problems.append(f"distill.teacher.model.kind: {t.model.kind!r} on images; the distillation teacher needs 'unet'")
        if t.parameterization == "both":
            problems.append("distill.teacher.parameterization: 'both' is not available for the U-Net (one output per "
                            "pixel); use x, eps or v")
        g = self.guidance
        if g.enabled:
            if g.teacher.model.kind != "unet":
                problems.append("guidance.teacher.model: image profiles need {kind: unet, unet: {preset: ...}} "
                                "(see config/profiles/fashion.yaml), or guidance.enabled: false")
            if "hflip" not in g.rounds.model_fields_set:
                problems.append("guidance.rounds.hflip: missing (image profiles need it; see config/profiles/fashion.yaml)")
            if g.eval.classifier_scales:
                problems.append("guidance.eval.classifier_scales: classifier guidance is not built for image profiles; "
                                "set it to []")
        return problems


def key_order_like(raw: Any, model: Any) -> Any:
    """``raw`` (a merged YAML mapping) with its keys in the order of the validated model's fields."""
    if isinstance(raw, dict) and isinstance(model, BaseModel):
        fields = list(type(model).model_fields)
        keys = sorted(raw, key=lambda k: fields.index(k) if k in fields else len(fields))
        return {k: key_order_like(raw[k], getattr(model, k, None)) for k in keys}
    if isinstance(raw, dict) and isinstance(model, dict):
        return {k: key_order_like(v, model.get(k)) for k, v in raw.items()}
    return raw


def json_schema() -> dict:
    """The JSON schema of :class:`Config` (written to schema/config.schema.json)."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trilemma configuration (generated from trilemma.schema.models: do not edit)"
    return schema

