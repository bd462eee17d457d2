"""Consistency distillation on the toy: a short sweep of the learning rate and the discretisation count N
(issue 18).  Each setting trains the `cd` model of ``stages/consistency.py`` (the same task and loop,
the profile's ``consistency`` section with the swept keys replaced) from ``results/<profile>/models/
teacher_pd``, then draws the banks of ``sampling.cd.steps`` with the registry's sampler and scores them
with the evaluation's own panel (headline ``fd`` with its 95% interval, modes, hq) at the chain's bank
size.  Prints one table, the wall time of each training run and the device; ``--log DIR`` keeps each
run's loss curve (the loop's JSONL log).

  python bench/cd_sweep.py --lr 3e-4 1e-3 3e-3 --points 10 18 40 --updates 2000
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
from pathlib import Path

import torch

from trilemma import config
from trilemma.artifacts import load_model, load_tensors
from trilemma.diffusion.denoiser import Denoiser
from trilemma.evaluation.features2d import toy_features
from trilemma.evaluation.panel import point_panel
from trilemma.sampling import registry
from trilemma.schema.models import Consistency, Evaluation, Sampling
from trilemma.stages.consistency import loop_config
from trilemma.training.loop import train
from trilemma.training.tasks.consistency import ConsistencyDistillTask


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="toy")
    p.add_argument("--lr", type=float, nargs="+", default=None)
    p.add_argument("--points", type=int, nargs="+", default=None)
    p.add_argument("--updates", type=int, default=None)
    p.add_argument("--target-ema", type=float, nargs="+", default=None)
    p.add_argument("--log", default=None, help="keep each run's loss curve (JSONL) in this directory")
    p.add_argument("--tau-scan", type=float, nargs="+", default=None,
                   help="also score 2- and 4-step sampling with re-noising times [tau] and [tau, 2 tau/3, tau/3] "
                        "for each tau, against the *training* data (the evaluation set stays unseen)")
    args = p.parse_args()
    cfg = config.load(args.profile)
    torch.set_num_threads(1)
    root = Path("results") / cfg["profile"]
    teacher, info = load_model(root / "models" / "teacher_pd")
    data, dmeta = load_tensors(next((root / "data").glob("*.safetensors")))
    ev = Evaluation.model_validate(cfg["evaluation"])
    features = toy_features(ev.features, dmeta["dataset"], dmeta["params"])
    base = cfg["consistency"]
    n = cfg["distill"]["eval"]["num_samples"]
    rows = []
    for lr in args.lr or [base["train"]["lr"]]:
        for points in args.points or [base["points"]]:
            for mu in args.target_ema or [base["target_ema"]]:
                cd = copy.deepcopy(base)
                cd["points"], cd["target_ema"], cd["train"]["lr"] = points, mu, lr
                if args.updates:
                    cd["train"]["updates"] = args.updates
                torch.manual_seed(cfg["seed"])
                net = copy.deepcopy(teacher.net).requires_grad_(True).train()
                swept = Consistency.model_validate(cd)   # the section with the swept keys, validated
                task = ConsistencyDistillTask(Denoiser(net, teacher.schedule, teacher.parameterization), teacher,
                                              data["train"], swept)
                tmp = Path(tempfile.mkdtemp())
                final = train(task, loop_config(swept), seed=cfg["seed"], resume_dir=tmp, fingerprint="sweep",
                              progress=False, desc="cd sweep")
                tag = f"lr{lr:g}_N{points}_mu{mu:g}"
                if args.log:
                    Path(args.log).mkdir(parents=True, exist_ok=True)
                    shutil.copy(tmp / "log.jsonl", Path(args.log) / f"{tag}.jsonl")
                last = json.loads((tmp / "log.jsonl").read_text().splitlines()[-1])
                shutil.rmtree(tmp)
                net.load_state_dict(final["net"])
                student = Denoiser(net.eval(), teacher.schedule, teacher.parameterization)
                for steps in cfg["sampling"]["cd"]["steps"]:
                    spec = registry.parse(registry.spec_id("cd", steps=steps))
                    run = registry.build(spec, student, Sampling.model_validate(cfg["sampling"]), {"method": "cd", "name": "cd", "t_min": cd["t_min"]})
                    g = torch.Generator().manual_seed(cfg["seed"])
                    x = run(torch.randn(n, 2, generator=g), generator=g)
                    m = point_panel(x, data["eval"], features=features, means=data["mode_means"],
                                    mode_labels=data["mode_labels"], std=dmeta["std"], ev=ev, seed=cfg["seed"])
                    rows.append({"lr": lr, "N": points, "mu": mu, "steps": steps, "fd": m["fd"], "fd_ci": m["fd_ci"],
                                 "modes": m["modes"], "hq": m["hq"], "final_loss": last["cd_loss"],
                                 "train_wall_s": task.bill["wall_s"], "teacher_evals": task.bill["teacher_evals"]})
                    r = rows[-1]
                    print(f"{tag} steps {steps}: fd {r['fd']:.4f} ± {r['fd_ci']:.4f}, modes {r['modes']}, "
                          f"hq {r['hq']:.3f}, loss {r['final_loss']:.3g}, train {r['train_wall_s']:.1f} s", flush=True)
                for tau in args.tau_scan or []:
                    for taus in ([tau], [tau, 2 * tau / 3, tau / 3]):
                        scan = Sampling.model_validate({**cfg["sampling"], "cd": {**cfg["sampling"]["cd"],
                                                                              "tau": {f"s{len(taus) + 1}": taus}}})
                        spec = registry.parse(registry.spec_id("cd", steps=len(taus) + 1))
                        run = registry.build(spec, student, scan, {"method": "cd", "name": "cd", "t_min": cd["t_min"]})
                        g = torch.Generator().manual_seed(cfg["seed"] + 1)
                        x = run(torch.randn(n, 2, generator=g), generator=g)
                        m = point_panel(x, data["train"][:len(data["eval"])], features=features, means=data["mode_means"],
                                        mode_labels=data["mode_labels"], std=dmeta["std"], ev=ev, seed=cfg["seed"])
                        print(f"{tag} tau scan (vs training data) {spec.spec} tau {[round(t, 4) for t in taus]}: "
                              f"fd {m['fd']:.4f} ± {m['fd_ci']:.4f}, modes {m['modes']}, hq {m['hq']:.3f}", flush=True)
    print(f"\ndevice: {task.bill['device']}; bank size {n}; updates {cd['train']['updates']} x batch "
          f"{cd['train']['batch_size']}\n")
    print("| lr | N | mu | steps | fd | ± | modes | hq | final loss | train wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['lr']:g} | {r['N']} | {r['mu']:g} | {r['steps']} | {r['fd']:.4f} | {r['fd_ci']:.4f} | "
              f"{r['modes']} | {r['hq']:.3f} | {r['final_loss']:.3g} | {r['train_wall_s']:.1f} |")


if __name__ == "__main__":
    main()
