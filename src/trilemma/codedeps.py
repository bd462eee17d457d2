"""A job's code dependencies, derived from imports (issue 16): the files of ``src/trilemma`` that its
entry modules import, transitively, read with :mod:`ast` (nothing is imported, so the DAG stays
torch-free).

Two rules keep the derived lists as sharp as the DAG needs:

- *Branches are the DAG's to name.*  In the modules of :data:`BRANCHING` an import inside a function
  is a branch that a job may not take (``trilemma train`` imports the GAN stage only for GAN models,
  the sampler builders one family's module, :mod:`trilemma.modality` the image modules only on image
  profiles); only their module-level imports are followed, and the DAG names the branches a job
  takes as extra entry modules (``dag_base.ENTRIES``).  Everywhere else every import is followed,
  inside functions too.
- *The DAG's own modules are not followed* (:data:`DAG_MODULES`: config loading, the DAG, paths,
  the command line).  What they decide reaches a job through its command line and its declared
  config keys, which both front-ends already track; following them would make every job depend on
  every edit of the DAG.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PKG = "src/trilemma/"
ROOT = Path(__file__).resolve().parent          # src/trilemma

DAG_MODULES = frozenset({"trilemma", "trilemma.config", "trilemma.dag", "trilemma.dag_base", "trilemma.dag_guidance",
                         "trilemma.dag_oracle", "trilemma.dag_deck", "trilemma.paths", "trilemma.keys",
                         "trilemma.errors", "trilemma.cli", "trilemma.jobclock", "trilemma.codedeps"})


BRANCHING = frozenset({"trilemma.artifacts", "trilemma.models.registry", "trilemma.sampling.builders",
                       "trilemma.modality", "trilemma.stages.train", "trilemma.stages.train_gan",
                       "trilemma.stages.sample", "trilemma.stages.evaluate", "trilemma.stages.fetch_data",
                       "trilemma.stages.deck_study", "trilemma.stages.report", "trilemma.reporting.deck",
                       "trilemma.training.tasks.gan"})


def module_file(name: str) -> Path | None:
    """``trilemma.a.b`` -> src/trilemma/a/b.py (or its package's __init__.py); None outside the package."""
    if name != "trilemma" and not name.startswith("trilemma."):
        return None
    parts = name.split(".")[1:]
    for path in ((ROOT.joinpath(*parts[:-1], parts[-1] + ".py"),) if parts else ()) + (ROOT.joinpath(*parts, "__init__.py"),):
        if path.is_file():
            return path
    return None


def _module_level(tree: ast.Module):
    """The statements executed at import: the module's own, and those of its ``if``/``try`` blocks."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            stack += node.body + node.orelse + getattr(node, "finalbody", []) + [
                s for h in getattr(node, "handlers", []) for s in h.body]


@lru_cache(maxsize=None)
def imports(name: str) -> frozenset[str]:
    """The ``trilemma`` modules that module ``name`` imports (at module level only in :data:`BRANCHING`)."""
    path = module_file(name)
    if path is None:
        return frozenset()
    out, tree = set(), ast.parse(path.read_text(), str(path))
    for node in (_module_level(tree) if name in BRANCHING else ast.walk(tree)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:   # no relative imports here
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return frozenset(m for m in out if module_file(m))


def closure(entries) -> list[str]:
    """The repository paths of ``entries`` (module names or src/trilemma/... paths) and of every
    ``trilemma`` module they import, transitively, by the rules above."""
    seen = {_name(e) for e in entries}   # an entry is kept even when it is one of the DAG's modules
    todo = [m for e in seen for m in imports(e)]
    while todo:
        name = todo.pop()
        if name in seen or name in DAG_MODULES:
            continue
        seen.add(name)
        todo += imports(name)
    files = (module_file(n) for n in seen)
    return sorted(PKG + f.relative_to(ROOT).as_posix() for f in files if f.stat().st_size)   # empty __init__s: no code


def _name(entry: str) -> str:
    if entry.startswith(PKG):
        rel = entry[len(PKG):].removesuffix(".py").removesuffix("/__init__")
        return "trilemma." + rel.replace("/", ".")
    return entry
