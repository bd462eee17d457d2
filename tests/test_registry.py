"""The sampler registry's contract, held for every entry (the pattern of diffusers' SchedulerCommonTest):
its example spec parses and formats back to itself, the builder draws samples of the right shape, the
NFE rule equals the network passes counted by the wrapper, a fixed generator gives the same samples,
and the callback (where the entry takes one) is called once per step.  Small random networks stand in
for the trained models of each family."""
import dataclasses
from pathlib import Path

import pytest
import torch

from trilemma import config
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import schedule_from_config
from trilemma.models.registry import build_model
from trilemma.sampling import registry
from trilemma.sampling.common import CountNFE
from trilemma.sampling.guidance import CountCalls

LINEAR = {"name": "linear", "beta_start": 1e-4, "beta_end": 0.02, "num_steps": 1000}
COSINE = {"name": "cosine_logsnr", "logsnr_min": -20.0, "logsnr_max": 20.0}
MLP = {"kind": "mlp", "hidden": 16, "depth": 1, "emb_dim": 8}
CLASSES = 3
def _sampling():
    """The toy's typed ``sampling`` section, with the settings these contract tests need."""
    from trilemma import config
    from trilemma.schema.models import Sampling
    s = config.load("toy")["sampling"]
    s["ddpm"]["clip_x0"], s["cd"]["tau"] = None, {"s2": [0.5]}
    s["pf_ode"].update(rtol=1e-3, atol=1e-3)
    return Sampling.model_validate(s)


SAMPLING = _sampling()


def _mlp(**extra):
    torch.manual_seed(0)
    return build_model({**MLP, **extra}, 2)


def model_for(family: str):
    """(denoiser, model.json-like info, classifier or None, cond or None) of a family's kind of model."""
    if family == "cd":   # a consistency model (its model.json names the boundary time)
        return Denoiser(_mlp(), schedule_from_config(COSINE), "v"), {"method": "cd", "name": "cd", "t_min": 0.002}, None, None
    if family in ("ddpm", "ddim", "pf_ode") or registry.ENTRIES[family].section:
        return Denoiser(_mlp(), schedule_from_config(LINEAR), "eps"), {"method": "ddpm", "name": "teacher_ddpm"}, None, None
    if family in ("pd", "stoch"):
        return Denoiser(_mlp(), schedule_from_config(COSINE), "v"), {"method": "pd", "name": "pd_s4"}, None, None
    if family in ("ddgan", "gan", "wgan_gp"):
        torch.manual_seed(0)
        if family == "ddgan":
            m = {"kind": "ddgan_generator", "hidden": 16, "layers": 2, "nz": 2, "emb_dim": 8}
            sched = {"name": "vp_sde", "beta_min": 0.1, "beta_max": 20.0, "num_steps": 2}
            den = Denoiser(build_model(m, 2), schedule_from_config(sched), "x")
        else:
            from trilemma.models.gan import OneShot
            m, sched = {"kind": "gan_generator", "hidden": 16, "layers": 2, "nz": 2}, None
            den = OneShot(build_model(m, 2))
        return den, {"method": family, "name": f"{family}_seed0", "schedule": sched, "model": m}, None, None
    y = torch.arange(8) % CLASSES
    if family == "cg":
        torch.manual_seed(1)
        classifier = build_model(MLP, 2, out_dim=CLASSES)
        info = {"method": "pd_teacher", "name": "teacher_pd", "model": MLP}
        return Denoiser(_mlp(), schedule_from_config(COSINE), "v"), info, classifier, {"y": y, "w": 1.0}
    if family == "cfg":
        model = {**MLP, "num_classes": CLASSES}
        info = {"method": "cfg_teacher", "name": "teacher_cfg", "model": model}
        return Denoiser(_mlp(num_classes=CLASSES), schedule_from_config(COSINE), "v"), info, None, {"y": y, "w": 2.0}
    model = {**MLP, "num_classes": CLASSES, "w_emb_dim": 4}
    info = {"method": "guided_pd", "name": "guided_s2", "model": model}
    den = Denoiser(_mlp(num_classes=CLASSES, w_emb_dim=4), schedule_from_config(COSINE), "v")
    return den, info, None, {"y": y, "w": 2.0}


ENTRIES = list(registry.ENTRIES.values())


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.family for e in ENTRIES])
def test_spec_id_round_trip(entry):
    spec = registry.parse(entry.example)
    assert spec.family == entry.family and spec.spec == entry.example
    values = {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("spec", "method")}
    assert registry.spec_id(entry.family, **values) == entry.example
    assert spec.label and isinstance(spec.label, str)
    for path in entry.code:
        assert (Path(__file__).resolve().parents[1] / path).is_file(), path


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.family for e in ENTRIES])
def test_sampler_contract(entry):
    spec = registry.parse(entry.example)
    denoiser, info, classifier, cond = model_for(entry.family)
    counted, counters = CountNFE(denoiser), []
    counters.append(counted)
    if classifier is not None:
        classifier = CountCalls(classifier)
        counters.append(classifier)
    run = registry.build(spec, counted, SAMPLING, info, classifier)
    x_T = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    steps = []
    kwargs = {"callback": steps.append} if entry.callbacks else {}
    a = run(x_T, cond=cond, generator=torch.Generator().manual_seed(1), **kwargs)
    assert a.shape == x_T.shape and torch.isfinite(a).all()
    nfe = sum(c.nfe for c in counters)
    assert spec.nfe is None or spec.nfe == nfe, f"{spec.spec}: NFE rule {spec.nfe}, counted {nfe}"
    if entry.callbacks:
        assert len(steps) == spec.steps and [s["i"] for s in steps] == list(range(spec.steps))
        assert steps[-1]["x"] is not None and steps[-1]["denoised"].shape == x_T.shape
    b = run(x_T, cond=cond, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b), "not deterministic under a fixed generator"


def test_teacher_grid_and_params_come_from_the_entries():
    cfg = config.load()
    specs = registry.teacher_specs(cfg["sampling"])
    assert specs and all(registry.family_of(s) in registry.ENTRIES for s in specs)
    for e in registry.ENTRIES.values():
        for key in e.params:
            config.section(cfg, key)
    with pytest.raises(registry.UnknownSpec):
        registry.parse("ddim-eta0-s10")
