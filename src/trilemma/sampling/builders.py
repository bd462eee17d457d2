"""The registry's builders (``sampling/registry.py``): ``(spec, denoiser, sampling, info, classifier) -> run``
(``sampling``: the typed ``sampling`` section of the config, whose entry sections hold the samplers'
settings), with ``run(x_T, *, cond=None, generator=None, callback=None) -> x_0``, the grid of the spec bound.

Thin adapters over the samplers, which keep their own signatures (k-diffusion's
``(denoiser, x_T, grid, *, cond, generator, callback)`` for DDIM, DDPM and DPM-Solver++).  Grids: on a
discrete chain the DDIM subsequence (``skip``) or improved-DDPM respacing; on a continuous-time model
(cosine logSNR) every N-step grid is t_i = i / N (progressive distillation's Algorithm 2 grid).
Guidance is a wrapper around the (NFE-counted) denoiser, never a sampler flag.
"""
from __future__ import annotations

from trilemma.config import ConfigError


def _no_callback(run):
    def wrapped(x_T, *, cond=None, generator=None, callback=None):
        if callback is not None:
            raise NotImplementedError("this sampler takes no callback")
        return run(x_T, cond, generator)
    return wrapped


def _discrete_steps(spec, denoiser) -> int:
    if denoiser.schedule.continuous:
        raise ConfigError(f"sampler spec {spec.spec!r} is not defined for a continuous-time model")
    return denoiser.schedule.num_steps


def ddpm(spec, denoiser, sampling, info=None, classifier=None):
    from trilemma.diffusion.timesteps import respaced, sampling_grid
    from trilemma.sampling.ddpm import sample_ddpm
    ts = sampling_grid(respaced(_discrete_steps(spec, denoiser), spec.steps))
    clip = sampling.ddpm.clip_x0
    return lambda x, *, cond=None, generator=None, callback=None: sample_ddpm(
        denoiser, x, ts, variance=spec.variance, clip_x0=tuple(clip) if clip else None, generator=generator,
        callback=callback)


def ddim(spec, denoiser, sampling, info=None, classifier=None):
    """DDIM on the spec's subsequence, or on t_i = i / N of a continuous-time model (``pd`` specs:
    a student with its own N-step DDIM)."""
    from trilemma.sampling.ddim import sample_ddim
    if denoiser.schedule.continuous:
        from trilemma.diffusion.continuous import uniform_grid
        ts = uniform_grid(spec.steps)
    elif spec.method == "ddim":
        from trilemma.diffusion.timesteps import SKIPS, sampling_grid
        ts = sampling_grid(SKIPS[spec.skip](denoiser.schedule.num_steps, spec.steps))
    else:
        raise ConfigError(f"sampler spec {spec.spec!r} needs a continuous-time model")
    return lambda x, *, cond=None, generator=None, callback=None: sample_ddim(
        denoiser, x, ts, eta=spec.eta, sigma_hat=spec.sigma_hat, generator=generator, callback=callback)


def stochastic(spec, denoiser, sampling, info=None, classifier=None):
    """The stochastic sampler of progressive distillation on t_i = i / N."""
    from trilemma.diffusion.continuous import uniform_grid
    from trilemma.sampling.ddpm import sample_ddpm
    if not denoiser.schedule.continuous:
        raise ConfigError(f"sampler spec {spec.spec!r} needs a continuous-time model")
    ts = uniform_grid(spec.steps)
    return lambda x, *, cond=None, generator=None, callback=None: sample_ddpm(
        denoiser, x, ts, v=spec.v, generator=generator, callback=callback)


def consistency(spec, denoiser, sampling, info, classifier=None):
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1) of a ``cd`` model: N steps,
    re-noising at the N - 1 times ``sampling.cd.tau.s<N>`` (none for N = 1)."""
    from trilemma.diffusion.consistency import ConsistencyFunction
    from trilemma.sampling.consistency import check_taus, sample_consistency
    if info.get("method") != "cd":
        raise ConfigError(f"sampler spec {spec.spec!r} needs a consistency model, not {info.get('name')!r}")
    taus = [] if spec.steps == 1 else sampling.cd.tau.get(f"s{spec.steps}")
    if taus is None or len(taus) != spec.steps - 1:
        raise ConfigError(f"sampler spec {spec.spec!r} needs sampling.cd.tau.s{spec.steps}: {spec.steps - 1} times")
    check_taus(taus, info["t_min"])
    f = ConsistencyFunction(denoiser, info["t_min"])
    return lambda x, *, cond=None, generator=None, callback=None: sample_consistency(
        f, x, taus, cond=cond, generator=generator, callback=callback)


def pf_ode(spec, denoiser, sampling, info=None, classifier=None):
    from trilemma.sampling.pf_ode import sample_pf_ode_adaptive, sample_pf_ode_fixed
    _discrete_steps(spec, denoiser)
    if spec.steps is None:
        ode = sampling.pf_ode
        return _no_callback(lambda x, cond, g: sample_pf_ode_adaptive(
            denoiser, x, method=spec.solver, rtol=ode.rtol, atol=ode.atol))
    return _no_callback(lambda x, cond, g: sample_pf_ode_fixed(denoiser, x, steps=spec.steps, solver=spec.solver))


def _gan_check(spec, info) -> tuple[int, float]:
    """G's latent size, and the units it works in (``data_units`` of model.json: stages/train_gan.py)."""
    T = info["schedule"]["num_steps"] if info["schedule"] else 1
    if info["method"] != spec.method or T != spec.steps:
        raise ConfigError(f"sampler spec {spec.spec!r} does not fit model {info['name']!r} "
                          f"(method {info['method']}, {T} steps)")
    return info["model"]["nz"], info.get("data_units", 1.0)


def ddgan(spec, denoiser, sampling, info, classifier=None):
    from trilemma.sampling.ddgan import sample_ddgan
    nz, units = _gan_check(spec, info)
    return _no_callback(lambda x, cond, g: sample_ddgan(denoiser, x, latent_dim=nz, generator=g, units=units))


def gan(spec, denoiser, sampling, info, classifier=None):
    from trilemma.sampling.gan import sample_gan
    nz, units = _gan_check(spec, info)
    return _no_callback(lambda x, cond, g: sample_gan(denoiser, x.shape[0], latent_dim=nz, generator=g,
                                                      device=x.device, units=units))


_GUIDED_MODELS = {"cfg": ("cfg_teacher",), "classifier_guidance": ("cfg_teacher", "pd_teacher"),
                  "guided_pd": ("guided_pd", "guided_w")}   # guided_w: the stage-one student


def _guided_denoiser(spec, denoiser, info, classifier):
    from trilemma.sampling.guidance import CFGDenoiser, ClassifierGuidedDenoiser
    wanted = _GUIDED_MODELS[spec.method]
    if info["method"] not in wanted:
        raise ConfigError(f"sampler spec {spec.spec!r} needs a {wanted} model, not {info['name']!r}")
    null = info["model"].get("num_classes")   # None: an unconditional model (classifier guidance of teacher_pd)
    if spec.method == "cfg":
        return CFGDenoiser(denoiser, null)
    if spec.method == "classifier_guidance":
        if classifier is None:
            raise ConfigError(f"sampler spec {spec.spec!r} needs --classifier-dir")
        return ClassifierGuidedDenoiser(denoiser, classifier, null)
    return denoiser


def guided(spec, denoiser, sampling, info, classifier=None):
    """CFG, classifier guidance and the guided students: N-step DDIM on t_i = i / N."""
    from trilemma.diffusion.continuous import uniform_grid
    from trilemma.sampling.ddim import sample_ddim
    denoiser = _guided_denoiser(spec, denoiser, info, classifier)
    ts = uniform_grid(spec.steps)
    return lambda x, *, cond=None, generator=None, callback=None: sample_ddim(
        denoiser, x, ts, cond=cond, generator=generator, callback=callback)


def guided_stochastic(spec, denoiser, sampling, info, classifier=None):
    from trilemma.sampling.guided_stochastic import sample_guided_stochastic
    denoiser = _guided_denoiser(spec, denoiser, info, classifier)
    return _no_callback(lambda x, cond, g: sample_guided_stochastic(denoiser, x, spec.steps, cond=cond, generator=g))
