"""The sampler registry (issue 16): one :class:`Entry` per sampler family, the prefix of a spec id.

An entry is everything the pipeline knows about a sampler, in one place:

- its spec ids: ``pattern`` parses one (into a frozen :class:`SamplerSpec`), ``format`` builds one;
  no other module builds or splits sampler spec strings (:func:`parse`, :func:`spec_id`);
- ``builder``: the import path of a function ``(spec, denoiser, sampling, info, classifier) -> run`` with
  ``run(x_T, *, cond=None, generator=None, callback=None) -> x_0`` (k-diffusion's sampler signature
  with the grid bound by the builder; :func:`build`);
- ``nfe``: network evaluations per sample (CFG 2 per step, Heun 2 per step + the final denoising,
  ``None`` where an adaptive solver decides), held against counted calls by ``tests/test_registry.py``;
- its config: ``section`` of ``sampling`` with its pydantic model (``schema``: a field of
  ``schema.models.Sampling``, so of the generated JSON schema), the spec ids it adds to the DDPM teacher's grid (``grid``), and the config
  keys its sample jobs read (``params``);
- ``label`` (the ``sampler`` column of metrics.csv, tables) and ``curve`` (its line in fid_vs_time);
- ``code``: the modules its banks depend on (the DAG's code inputs).

Torch-free at import: builders are resolved when a bank is drawn.
"""
from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass, fields
from typing import Annotated, Any, Callable, Literal, Mapping, Optional

from pydantic import Field

from trilemma.schema.blocks import D, PosFloat, PosInt, Section, Share, unique_list

PKG = "src/trilemma/"


@dataclass(frozen=True)
class SamplerSpec:
    """A parsed spec id; its fields are written into every bank's metadata (and metrics.csv)."""
    spec: str
    method: str                 # the method name of metrics.csv (ddpm, ddim, pf_ode, ...)
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
    def family(self) -> str:
        return family_of(self.spec)

    @property
    def entry(self) -> "Entry":
        return ENTRIES[self.family]

    @property
    def label(self) -> str:
        return self.entry.label(self)

    @property
    def nfe(self) -> int | None:
        return self.entry.nfe(self)


@dataclass(frozen=True)
class Entry:
    family: str
    pattern: str                                  # regex of the whole spec id
    parse: Callable[[re.Match], dict]             # match -> SamplerSpec fields
    format: Callable[..., str]                    # SamplerSpec fields -> spec id
    builder: str                                  # "module:function"
    nfe: Callable[[SamplerSpec], int | None]
    label: Callable[[SamplerSpec], str]
    code: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    curve: Callable[[Mapping], str | None] = lambda row: None
    section: str | None = None                    # sampling.<section>
    schema: type[Section] | None = None           # the model of sampling.<section> (schema/models.py)
    grid: Callable[[Mapping], list[str]] | None = None   # spec ids from sampling.<section>
    callbacks: bool = False                       # run() calls callback once per step
    example: str = ""                             # a spec id the contract test draws


def fmt_num(x: float) -> str:
    return f"{x:g}"


def _steps(s) -> int:
    return s.steps


class _DdpmSection(Section):
    """ancestral sampling (Ho et al. 2020)"""
    steps: unique_list(PosInt) = D("DDPM steps (< T: improved-DDPM respacing)")
    variance: unique_list(Literal["beta", "beta_tilde"]) = D("sigma^2 = beta (fixedlarge) and/or beta-tilde (fixedsmall)")
    clip_x0: Optional[Annotated[list[float], Field(min_length=2, max_length=2)]] = D("null or [lo, hi]: clip the x_0 prediction")


class _DdimSection(Section):
    """DDIM (Song, Meng & Ermon 2021)"""
    steps: unique_list(PosInt) = D("DDIM steps")
    eta: unique_list(Share) = D("eta of the DDIM family (0: deterministic, 1: DDPM's posterior variance)")
    sigma_hat: bool = D("also the DDIM paper's sigma-hat row (sigma^2 = beta)")
    skip: unique_list(Literal["uniform", "quadratic"]) = D("the subsequence of the T steps: uniform | quadratic")


class _FixedSolvers(Section):
    heun: unique_list(PosInt) = D("Heun steps (2 NFE per step)")
    euler: unique_list(PosInt) = D("Euler steps")


_ADAPTIVE = ("rk45", "rk23", "dop853")


class _PfOdeSection(Section):
    """the probability-flow ODE (Song et al. 2021, Score-SDE)"""
    adaptive: unique_list(Literal[_ADAPTIVE]) = D("scipy solve_ivp methods; NFE = nfev")
    rtol: PosFloat = D("relative tolerance of the adaptive solvers")
    atol: PosFloat = D("absolute tolerance of the adaptive solvers")
    fixed: _FixedSolvers = D("fixed-step solvers: their step counts")


class _DpmSection(Section):
    """DPM-Solver++(2M) (Lu et al. 2022; methods.md 13.2), diffusers' grid"""
    steps: unique_list(PosInt) = D("step counts (NFE = steps)")


class _CdSection(Section):
    """multistep consistency sampling (Algorithm 1) of the `cd` model"""
    steps: unique_list(PosInt) = D("step counts, NFE = steps")
    tau: Optional[dict[Annotated[str, Field(pattern=r"^s[0-9]+$")], list[Annotated[float, Field(gt=0, lt=1)]]]] = D(
        "re-noising times (teacher's t) of each N-step bank, s<N>: N - 1 times", None)


_DDIM = (PKG + "sampling/ddim.py", PKG + "diffusion/timesteps.py")
_CONTINUOUS_DDIM = (PKG + "sampling/ddim.py", PKG + "diffusion/continuous.py")
_B = "trilemma.sampling.builders:"


# ----------------------------------------------------------------------------- the DDPM teacher's grid
def _ddim_fmt(*, eta=None, sigma_hat=False, skip, steps, **_) -> str:
    return f"ddim-{'sigmahat' if sigma_hat else f'eta{fmt_num(eta)}'}-{skip}-s{steps}"


def _ddim_grid(s: Mapping) -> list[str]:
    modes = [dict(eta=e) for e in s["eta"]] + ([dict(eta=1.0, sigma_hat=True)] if s["sigma_hat"] else [])
    return [_ddim_fmt(skip=k, steps=n, **m) for k in s["skip"] for m in modes for n in s["steps"]]


def _ddim_curve(row) -> str | None:
    if row.get("model") == "teacher_pd":
        return None  # DDIM on the distillation teacher: in fid_vs_steps
    if str(row["sigma_hat"]).lower() == "true":
        return None
    return f"DDIM (η={float(row['eta']):g})" if float(row["eta"]) in (0.0, 1.0) else None


def _pf_ode_nfe(s) -> int | None:
    if s.steps is None:
        return None                                   # adaptive: the solver decides
    return 2 * s.steps + 1 if s.solver == "heun" else s.steps + 1   # + the final denoising step


TEACHER = [
    Entry("ddpm", r"ddpm-(beta|beta_tilde)-s(\d+)",
          lambda m: dict(method="ddpm", variance=m[1], steps=int(m[2])),
          lambda *, variance, steps, **_: f"ddpm-{variance}-s{steps}",
          _B + "ddpm", _steps,
          lambda s: f"DDPM (σ²={'β' if s.variance == 'beta' else 'β̃'})",
          code=(PKG + "sampling/ddpm.py", PKG + "diffusion/timesteps.py"), params=("sampling.ddpm.clip_x0",),
          curve=lambda r: "DDPM (σ²=β)" if r["variance"] == "beta" else "DDPM (σ²=β̃)",
          section="ddpm",
          schema=_DdpmSection,
          grid=lambda s: [f"ddpm-{v}-s{n}" for v in s["variance"] for n in s["steps"]],
          callbacks=True, example="ddpm-beta-s5"),
    Entry("ddim", r"ddim-(?:eta([0-9.]+)|(sigmahat))-(uniform|quadratic)-s(\d+)",
          lambda m: dict(method="ddim", eta=1.0 if m[2] else float(m[1]), sigma_hat=bool(m[2]), skip=m[3],
                         steps=int(m[4])),
          _ddim_fmt, _B + "ddim", _steps,
          lambda s: f"DDIM ({'σ̂' if s.sigma_hat else f'η={s.eta:g}'}, {s.skip})",
          code=_DDIM, curve=_ddim_curve, section="ddim",
          schema=_DdimSection,
          grid=_ddim_grid, callbacks=True, example="ddim-eta0.5-uniform-s4"),
    Entry("pf_ode", r"pf_ode-(?:(rk45|rk23|dop853)|(euler|heun)-s(\d+))",
          lambda m: dict(method="pf_ode", solver=m[1] or m[2], steps=int(m[3]) if m[3] else None),
          lambda *, solver, steps=None, **_: f"pf_ode-{solver}" + (f"-s{steps}" if steps is not None else ""),
          _B + "pf_ode", _pf_ode_nfe, lambda s: f"PF-ODE ({s.solver})",
          code=(PKG + "sampling/pf_ode.py",), params=("sampling.pf_ode.rtol", "sampling.pf_ode.atol"),
          curve=lambda r: "PF-ODE", section="pf_ode",
          schema=_PfOdeSection,
          grid=lambda s: ([f"pf_ode-{m}" for m in s["adaptive"]]
                          + [f"pf_ode-{m}-s{n}" for m, steps in s["fixed"].items() for n in steps]),
          example="pf_ode-heun-s3"),
    Entry("dpmpp2m", r"dpmpp2m-s(\d+)", lambda m: dict(method="dpm_solver_pp", solver="2m", steps=int(m[1])),
          lambda *, steps, **_: f"dpmpp2m-s{steps}", "trilemma.sampling.dpm_solver:build", _steps,
          lambda s: "DPM-Solver++(2M)", code=(PKG + "sampling/dpm_solver.py",),
          curve=lambda r: "DPM-Solver++(2M)", section="dpmpp2m", schema=_DpmSection,
          grid=lambda s: [f"dpmpp2m-s{n}" for n in s["steps"]], callbacks=True, example="dpmpp2m-s4"),
]

# ----------------------------------------------------------------------------- progressive distillation
DISTILL = [
    Entry("pd", r"pd-s(\d+)", lambda m: dict(method="pd", eta=0.0, skip="uniform", steps=int(m[1])),
          lambda *, steps, **_: f"pd-s{steps}", _B + "ddim", _steps, lambda s: "PD student (DDIM)",
          code=_CONTINUOUS_DDIM, curve=lambda r: "PD student (DDIM)", callbacks=True, example="pd-s4"),
    Entry("stoch", r"stoch-v([0-9.]+)-s(\d+)", lambda m: dict(method="stochastic", v=float(m[1]), steps=int(m[2])),
          lambda *, v, steps, **_: f"stoch-v{fmt_num(v)}-s{steps}", _B + "stochastic", _steps,
          lambda s: f"PD stochastic (v={s.v:g})",
          code=(PKG + "sampling/ddpm.py", PKG + "diffusion/continuous.py"), callbacks=True, example="stoch-v0.3-s4"),
]

# ----------------------------------------------------------------------------- consistency distillation (issue 18)
CONSISTENCY = [   # the student of stages/consistency.py with Algorithm 1; its banks: dag.cd_bank_ids
    Entry("cd", r"cd-s(\d+)", lambda m: dict(method="cd", steps=int(m[1])), lambda *, steps, **_: f"cd-s{steps}",
          _B + "consistency", _steps, lambda s: "CD student (multistep, Alg. 1)",
          code=(PKG + "sampling/consistency.py", PKG + "diffusion/consistency.py"), params=("sampling.cd.tau",),
          curve=lambda r: "CD student (multistep)", section="cd",
          schema=_CdSection, callbacks=True, example="cd-s2"),
]

# ----------------------------------------------------------------------------- DDGAN and the GAN baselines
_GAN_CODE = (PKG + "sampling/gan.py", PKG + "models/gan.py")
GANS = [
    Entry("ddgan", r"ddgan-s(\d+)", lambda m: dict(method="ddgan", steps=int(m[1])),
          lambda *, steps, **_: f"ddgan-s{steps}", _B + "ddgan", _steps, lambda s: f"DDGAN (T={s.steps})",
          code=(PKG + "sampling/ddgan.py", PKG + "models/gan.py"), curve=lambda r: "DDGAN (NFE = T)",
          example="ddgan-s2"),
    Entry("gan", r"gan", lambda m: dict(method="gan", steps=1), lambda **_: "gan", _B + "gan", _steps,
          lambda s: "GAN", code=_GAN_CODE, curve=lambda r: "GAN", example="gan"),
    Entry("wgan_gp", r"wgan_gp", lambda m: dict(method="wgan_gp", steps=1), lambda **_: "wgan_gp", _B + "gan",
          _steps, lambda s: "WGAN-GP", code=_GAN_CODE, curve=lambda r: "WGAN-GP", example="wgan_gp"),
]


# ----------------------------------------------------------------------------- guidance (methods.md §6-7)
def _guided(family: str, method: str, label: str, nfe_per_step: int, code: tuple[str, ...], curve,
            stochastic: bool = False) -> Entry:
    return Entry(
        family, family + r"-w([0-9.]+)-s(\d+)",
        lambda m: dict(method=method, w=float(m[1]), steps=int(m[2]), stochastic=stochastic,
                       eta=None if stochastic else 0.0, skip="uniform"),
        lambda *, w, steps, **_: f"{family}-w{fmt_num(w)}-s{steps}",
        _B + ("guided_stochastic" if stochastic else "guided"), lambda s: nfe_per_step * s.steps,
        lambda s: label, code=code, curve=curve, callbacks=not stochastic, example=f"{family}-w2-s4")


def _guided_pd_curve(row) -> str | None:   # the caller keeps one w (guidance.eval.headline_w)
    return None if str(row["stochastic"]).lower() == "true" else f"guided PD student (DDIM, w={float(row['w']):g})"


_GUIDANCE = PKG + "sampling/guidance.py"
GUIDED = [   # CFG: conditional + unconditional pass; classifier guidance: the denoiser + a classifier pass
    _guided("cfg", "cfg", "CFG teacher (DDIM)", 2, _CONTINUOUS_DDIM + (_GUIDANCE,), lambda r: None),
    _guided("cg", "classifier_guidance", "Classifier guidance (DDIM)", 2, _CONTINUOUS_DDIM + (_GUIDANCE,),
            lambda r: None),
    _guided("gpd", "guided_pd", "Guided PD student (DDIM)", 1, _CONTINUOUS_DDIM, _guided_pd_curve),
    _guided("gstoch", "guided_pd", "Guided PD student (stochastic)", 1,
            (PKG + "sampling/guided_stochastic.py",) + _CONTINUOUS_DDIM, _guided_pd_curve, stochastic=True),
]

ENTRIES: dict[str, Entry] = {e.family: e for e in TEACHER + DISTILL + CONSISTENCY + GANS + GUIDED}
GUIDED_FAMILIES = tuple(e.family for e in GUIDED)
_COMPILED = {f: re.compile(f"^{e.pattern}$") for f, e in ENTRIES.items()}


# ----------------------------------------------------------------------------- the one parse/id pair
class UnknownSpec(ValueError):
    pass


def family_of(spec: str) -> str:
    for family, pattern in _COMPILED.items():
        if pattern.match(spec):
            return family
    raise UnknownSpec(f"unknown sampler spec {spec!r}; known forms: "
                      + ", ".join(e.example for e in ENTRIES.values()))


def parse(spec: str) -> SamplerSpec:
    family = family_of(spec)
    return SamplerSpec(spec=spec, **ENTRIES[family].parse(_COMPILED[family].match(spec)))


def spec_id(family: str, **values: Any) -> str:
    """The spec id of ``family`` with these SamplerSpec fields (``spec_id("ddim", eta=0, skip="uniform",
    steps=10)`` -> ``ddim-eta0-uniform-s10``); checked to parse back to the same family."""
    spec = ENTRIES[family].format(**values)
    if family_of(spec) != family:
        raise UnknownSpec(f"{spec!r} does not parse as a {family} spec")
    return spec


def teacher_specs(sampling: Mapping[str, Any]) -> list[str]:
    """Every spec id of the DDPM teacher's grid (the ``sampling`` section), entry by entry."""
    return [spec for e in ENTRIES.values() if e.grid for spec in e.grid(sampling[e.section])]


def by_method(method: str) -> Entry | None:
    """The first entry whose specs have this metrics.csv ``method`` (gpd and gstoch share one)."""
    return next((e for e in ENTRIES.values() if _methods().get(e.family) == method), None)


@functools.cache
def _methods() -> dict[str, str]:
    return {f: parse(e.example).method for f, e in ENTRIES.items()}


def build(spec: SamplerSpec, denoiser, sampling, info: Mapping | None = None, classifier=None):
    """``run(x_T, *, cond=None, generator=None, callback=None)`` of this spec on ``denoiser``
    (``sampling``: the config's typed ``sampling`` section)."""
    module, name = spec.entry.builder.split(":")
    return getattr(importlib.import_module(module), name)(spec, denoiser, sampling, info, classifier)


SPEC_FIELDS = tuple(f.name for f in fields(SamplerSpec))
