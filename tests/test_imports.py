"""The package's import structure (issue 16, item 4): no import cycles among the modules of
``src/trilemma``, and the DAG and config validation torch-free, so ``snakemake -n`` and
``trilemma check-config`` run on a machine without torch.

The cycle check reads the sources with ``ast`` (nothing is imported).  It checks the module-level
imports (what runs at import time) and, separately, every import including those inside functions:
a function-level import may defer a dependency but must not hide a cycle.  The torch checks run
in subprocesses (this process has torch from conftest), with a ``torch`` package on PYTHONPATH that
raises on import, and check ``sys.modules`` too.

Run as a script to print the import edges and any cycles: ``python tests/test_imports.py [--all] [-v]``.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BIN, REPO, run_cmd

SRC = REPO / "src"
PROFILES = ("toy", "ci", "fashion", "cifar10", "ci_images")
# What the Snakefile (and so workflow/rules/*.smk, which import nothing) and the torch-free verbs import.
TORCH_FREE = ("trilemma.config", "trilemma.dag", "trilemma.paths", "trilemma.sampling.registry",
              "trilemma.cli", "trilemma.stages.check_config", "trilemma.stages.dvc_yaml",
              "trilemma.stages.dvc_code")


# ----------------------------------------------------------------------------- the import graph
def modules(src: Path = SRC) -> dict[str, tuple[Path, bool]]:
    """{dotted name: (file, is a package __init__)} of every module under ``src/trilemma``."""
    out = {}
    for path in sorted((src / "trilemma").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


class _Imports(ast.NodeVisitor):
    """The modules a file imports: at module level only (``everywhere=False``: not inside functions,
    lambdas or ``if TYPE_CHECKING:``), or everywhere."""

    def __init__(self, everywhere: bool):
        self.everywhere, self.found = everywhere, []   # [(module, [names])]

    def _skip(self, node):
        if self.everywhere:
            self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _skip

    def visit_If(self, node):
        test = ast.unparse(node.test)
        if test in ("TYPE_CHECKING", "typing.TYPE_CHECKING") and not self.everywhere:
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node):
        self.found += [(a.name, [], 0) for a in node.names]

    def visit_ImportFrom(self, node):
        self.found.append((node.module or "", [a.name for a in node.names], node.level))


def import_graph(everywhere: bool = False, src: Path = SRC) -> dict[str, set[str]]:
    """{module: the trilemma modules it imports} (``from pkg import mod`` counts as importing ``mod``)."""
    mods = modules(src)

    def resolve(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, is_pkg) in mods.items():
        visitor = _Imports(everywhere)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        package = name if is_pkg else name.rpartition(".")[0]
        targets = set()
        for module, names, level in visitor.found:
            if level:
                base = package.split(".")[:len(package.split(".")) - (level - 1)]
                module = ".".join(base + ([module] if module else []))
            for item in names or [None]:
                full = f"{module}.{item}" if item else module
                target = full if full in mods else resolve(module)
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def describe(graph, comps) -> str:
    return "\n".join(f"{comp}: " + ", ".join(f"{a} -> {b}" for a in comp for b in sorted(graph[a] & set(comp)))
                     for comp in comps)


@pytest.mark.parametrize("everywhere", [False, True], ids=["module_level", "with_function_level"])
def test_no_import_cycles(everywhere):
    graph = import_graph(everywhere)
    assert len(graph) > 50 and "trilemma.dag" in graph["trilemma.schema.models"]   # the graph was read
    comps = cycles(graph)
    assert not comps, "import cycles among src/trilemma modules:\n" + describe(graph, comps)


def test_cycle_check_finds_a_cycle(tmp_path):
    pkg = tmp_path / "trilemma"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from trilemma import b\n")
    (pkg / "b.py").write_text("def f():\n    from trilemma.a import g\n")
    assert cycles(import_graph(False, tmp_path)) == []
    assert cycles(import_graph(True, tmp_path)) == [["trilemma.a", "trilemma.b"]]


# ----------------------------------------------------------------------------- torch-free DAG and validation
def _poisoned_env(tmp_path) -> dict:
    """PYTHONPATH with a ``torch`` package first that raises on import."""
    poison = tmp_path / "poison" / "torch"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text(
        'raise ImportError("torch imported: the DAG and config validation must not need it (tests/test_imports.py)")\n')
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(poison.parent), os.environ.get("PYTHONPATH")) if p)}


PROBE = f"""
import importlib, sys
for m in {TORCH_FREE!r}:
    importlib.import_module(m)
from trilemma import cli, config, dag
for p in {PROFILES!r}:
    cfg = config.load(p)
    jobs = dag.jobs(cfg)
    dag.by_output(cfg), dag.final_targets(cfg), [j.param_values(cfg) for j in jobs]
    print(p, len(jobs), "jobs")
assert cli.main(["check-config", "--profile", "toy"]) == 0
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, loaded
print("torch not loaded")
"""


def test_dag_and_config_do_not_import_torch(tmp_path):
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **_poisoned_env(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "torch not loaded" in proc.stdout and "ci_images" in proc.stdout


def test_check_config_and_snakemake_dry_run_without_torch(tmp_path, repo_copy):
    env = _poisoned_env(tmp_path)
    proc = run_cmd([str(BIN / "trilemma"), "check-config", "--profile", "toy"], cwd=repo_copy, env=env)
    assert "configuration valid" in proc.stdout
    proc = run_cmd(["snakemake", "-n", "--cores", "1", "--config", "profile=ci"], cwd=repo_copy, env=env)
    assert "This was a dry-run" in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- start-up of the jobs (issue 21)
LIGHT_PROBE = """
import sys
import torch
from trilemma.evaluation import fidelity
g = torch.Generator().manual_seed(0)
a, b = torch.randn(3000, 8, generator=g, dtype=torch.float64), torch.randn(3000, 8, generator=g, dtype=torch.float64)
fd, pr = fidelity.frechet_distance(a, b + 0.1), fidelity.precision_recall(a[:, :2], b[:, :2], max_samples=1000)
heavy = sorted(m for m in ("torchvision", "torch._dynamo", "torch_fidelity", "torch_fidelity.utils") if m in sys.modules)
assert not heavy, heavy
import torch_fidelity.metric_fid as mf, torch_fidelity.metric_prc as mp   # the whole package, as images.py loads it
ref = mf.fid_statistics_to_metric(mf.fid_features_to_statistics(a), mf.fid_features_to_statistics(b + 0.1), False)
out = mp.prc_features_to_metric(a[:1000, :2].float(), b[:1000, :2].float(), prc_neighborhood=3, verbose=False)
assert fd == float(ref[mf.KEY_METRIC_FID]), (fd, ref)
assert fidelity.precision_recall(a[:1000, :2], b[:1000, :2]) == (out[mp.KEY_METRIC_PRECISION], out[mp.KEY_METRIC_RECALL])
fidelity._metric_fid.cache_clear()
assert fidelity._metric_fid() is mf and fidelity.frechet_distance(a, b + 0.1) == fd
print("light ok")
"""


def test_toy_metrics_skip_the_image_stack():
    """2-D evaluation runs torch-fidelity's own metric code without torchvision / torch._dynamo (1.3 s
    of start-up per evaluation job), with the same numbers as the whole package."""
    proc = subprocess.run([sys.executable, "-c", LIGHT_PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "light ok" in proc.stdout, proc.stdout + proc.stderr


def test_command_reports_its_timing_and_exits_cleanly():
    """``trilemma <verb>`` ends with one timing line on stderr (start-up vs compute) and, skipping the
    interpreter's teardown, still delivers its whole stdout and exit status."""
    from trilemma.jobclock import parse
    proc = run_cmd([str(BIN / "trilemma"), "check-config", "--profile", "toy"], cwd=REPO)
    assert "configuration valid" in proc.stdout
    timing = parse(proc.stderr)
    assert timing["verb"] == "check-config" and 0 < timing["startup_cpu_s"] < 30 and timing["compute_wall_s"] >= 0


if __name__ == "__main__":
    graph = import_graph("--all" in sys.argv)
    if "-v" in sys.argv:
        for a in sorted(graph):
            for b in sorted(graph[a]):
                print(f"{a} -> {b}")
    comps = cycles(graph)
    print(f"{sum(map(len, graph.values()))} import edges among {len(graph)} modules "
          f"({'every import' if '--all' in sys.argv else 'module level'}); cycles: {len(comps)}")
    if comps:
        print(describe(graph, comps))
