"""Probe one DDGAN configuration in-process (the project's build_task + train loop + sample_ddgan +
mode_metrics): train CPU seconds, modes / hq of a 10k-sample chain, and per-step diagnostics
(G applied to *real* x_t at each index: modes, hq and inner-3x3 share of its x0 prediction).

  python bench/ddgan_probe.py --seed 0 --set train.lr_d=1e-3 model.hidden=256 --tag name
"""
import argparse, json, sys, tempfile, time
import torch, yaml
from trilemma import config
from trilemma.artifacts import load_tensors
from trilemma.config import deep_merge
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.evaluation.toy import mode_metrics
from trilemma.sampling.ddgan import ChainTable, q_sample_pairs, sample_ddgan
from trilemma.schema.models import Ddgan
from trilemma.stages.train_gan import build_task, data_units, ddgan_schedule
from trilemma.training.loop import LoopConfig, train

p = argparse.ArgumentParser()
p.add_argument("--seed", type=int, default=0)
p.add_argument("--steps", type=int, default=4)
p.add_argument("--set", nargs="*", default=[])
p.add_argument("--tag", default="")
p.add_argument("--data", default="results/toy/data/gauss25.safetensors")
p.add_argument("--save", default="")
p.add_argument("--track", type=int, default=0)
p.add_argument("--out", default="results/probe/probe.jsonl")
a = p.parse_args()
torch.set_num_threads(1)
cfg = config.load(None)
sec = cfg["ddgan"]
for kv in a.set:
    k, v = kv.split("=", 1)
    node = sec
    *head, last = k.split(".")
    for h in head:
        node = node.setdefault(h, {})
    val = yaml.safe_load(v)
    if isinstance(val, str):
        try:
            val = float(val)
        except ValueError:
            pass
    node[last] = val
sec = Ddgan.model_validate(sec)   # the section with the overrides, validated: what the pipeline's code reads
tensors, meta = load_tensors(a.data)
torch.manual_seed(a.seed)
units = data_units(sec, meta)   # the recipe's units: G sees k x, its outputs are divided by k
task, _ = build_task("ddgan", a.steps, sec, tensors["train"], meta["data_dim"], units)
if a.track:
    _ph = task.phases[-1]; _orig = _ph.loss_fn; _n = [0]
    _ch = ChainTable(DiscreteSchedule.from_config(ddgan_schedule(sec, a.steps)))
    _x0 = tensors["eval"][:2000]; _means = tensors["mode_means"]; _inner = _means.abs().max(1).values < 1.5
    def _tracked(batch, gen, **kw):
        if _n[0] % a.track == 0:
            with torch.no_grad():
                gg = torch.Generator().manual_seed(7); out = []
                for i in range(a.steps):
                    t = torch.full((2000,), i, dtype=torch.long)
                    _, xt = q_sample_pairs(_ch, _x0 * units, t, gg)
                    x0p = task.modules["G"](xt, t.float(), torch.randn((2000, task.modules["G"].nz), generator=gg)) / units
                    m = mode_metrics(x0p, _means, meta["std"])
                    nd, nn_ = torch.cdist(x0p, _means).min(1); hq = nd <= 0.15
                    out.append(f"t{i}:{m['modes']}/{m['hq']:.2f}/{float((_inner[nn_] & hq).sum() / max(1, hq.sum())):.2f}")
                print("track", _n[0], " ".join(out), flush=True)
        _n[0] += 1
        return _orig(batch, gen, **kw)
    _ph.loss_fn = _tracked
c0 = time.process_time(); w0 = time.perf_counter()
with tempfile.TemporaryDirectory() as d:
    final = train(task, LoopConfig.from_config(sec.train), seed=a.seed, resume_dir=d,
                  fingerprint="x", progress=False)
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
G = task.modules["G"]; raw = {k: v.clone() for k, v in G.state_dict().items()}
G.eval()
schedule = DiscreteSchedule.from_config(ddgan_schedule(sec, a.steps))
means, std = tensors["mode_means"], meta["std"]
inner = means.abs().max(1).values < 1.5

class Den(torch.nn.Module):
    def __init__(s): super().__init__(); s.schedule = schedule
    def forward(s, x, t, z): return G(x, t.float(), z), None

def stats(x):
    m = mode_metrics(x, means, std)
    d = torch.cdist(x.double(), means.double()); nd, nn_ = d.min(1)
    hq = nd <= 3 * std
    m["inner_share"] = float((inner[nn_] & hq).double().sum() / max(1, hq.sum()))
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in m.items() if k != "num_modes"}

for which, weights in (("ema", final["G"]), ("raw", raw)):
    G.load_state_dict(weights)
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        x = sample_ddgan(Den(), torch.randn((10000, 2), generator=g), latent_dim=G.nz, generator=g, units=units)
        res = {"tag": a.tag + ("/raw" if which == "raw" else ""), "seed": a.seed, "set": a.set,
               "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), **stats(x)}
        chain = ChainTable(schedule)
        x0 = tensors["eval"][:10000]
        per_t = []
        for i in range(a.steps):
            t = torch.full((x0.shape[0],), i, dtype=torch.long)
            _, x_t = q_sample_pairs(chain, x0 * units, t, g)
            x0p = G(x_t, t.float(), torch.randn((x0.shape[0], G.nz), generator=g)) / units
            s = stats(x0p); per_t.append(f"t{i}:{s['modes']}/{s['hq']}/{s['inner_share']}")
        res["G_on_real"] = " ".join(per_t)
    print(json.dumps(res)); sys.stdout.flush()
    open(a.out, "a").write(json.dumps(res) + "\n")
if a.save:
    torch.save({"G": final["G"], "G_raw": raw, "D": task.modules["D"].state_dict(), "sec": sec.plain()}, a.save)
