"""Helpers to read what the two DAG front-ends plan, through their own CLIs and APIs."""
import re

import yaml

from conftest import run_cmd


def snakemake_plan(cwd, *extra, profile=None):
    """(job counts per rule, [(rule, outputs, shell command)]) from `snakemake -n -p`."""
    args = ["snakemake", "-n", "-p", "--cores", "2", *extra]
    if profile:
        args += ["--config", f"profile={profile}"]
    out = run_cmd(args, cwd=cwd).stdout
    counts = {}
    if "Nothing to be done" not in out:
        table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
        for line in table.splitlines()[3:]:
            rule, n = line.split()
            if rule != "total":
                counts[rule] = int(n)
    jobs = []
    for block in re.split(r"\n(?=\[[^\n]*\]\nrule )", out)[1:]:
        rule = re.search(r"^rule (\w+):", block, re.M)[1]
        outputs = re.search(r"^    output: (.*)$", block, re.M)
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        jobs.append((rule, tuple(outputs[1].split(", ")) if outputs else (), shell[1] if shell else None))
    return counts, jobs


def dvc_stages(cwd, dvcfile="dvc.yaml"):
    """[(name, cmd, outs)] of one DVC front-end (``dvc.yaml``, ``pipelines/<profile>/dvc.yaml``), as DVC
    itself parses it; outs relative to the stages' working directory (the repository root)."""
    from dvc.repo import Repo

    with Repo(str(cwd)) as repo:
        return [(s.name, s.cmd, tuple(sorted(o.def_path for o in s.outs)))
                for s in repo.index.stages if s.path_in_repo == dvcfile]


def dvc_front_end(profile):
    """The path of ``profile``'s dvc.yaml in the repository."""
    from conftest import REPO
    from trilemma import config
    from trilemma.stages import dvc_yaml

    return dvc_yaml.front_end(profile, config.load(root=REPO)["profile"])[0]


def edit_yaml(path, mutate):
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
