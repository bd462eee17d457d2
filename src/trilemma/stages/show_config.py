"""``trilemma config``: print a profile's resolved configuration; write (or check) the generated files
that hold it: each profile's params file (``config.params_file``: what DVC reads, and the golden file
tests/test_profiles.py pins) and the JSON schema generated from the models (issue 17)."""
from __future__ import annotations

from pathlib import Path

from trilemma import config


def add_arguments(p):
    p.add_argument("--schema", action="store_true", help="print the JSON schema instead (generated from the models)")
    p.add_argument("--write", action="store_true",
                   help="write every profile's params file and the JSON schema (make dvc.yaml runs it)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file differs")


def generated(root: Path | str = ".") -> dict[str, str]:
    """{path: text} of every generated config file: each profile's params file and the JSON schema."""
    out = {}
    for profile in config.profiles(root):
        cfg, source = config.resolve(profile, root)
        out[config.params_file(profile)] = config.render(config.validate(cfg, source), source)
    out[str(config.SCHEMA_FILE)] = config.schema_text()
    return out


def run(args):
    if not (args.write or args.check):
        if args.schema:
            print(config.schema_text(), end="")
            return
        cfg, source = config.resolve(args.profile)
        print(config.render(config.validate(cfg, source), source), end="")
        return
    edited = [config.params_file(p) for p in config.profiles() if config.params_edit(p)[1] is not None]
    texts = generated()
    stale = [p for p, t in texts.items() if not Path(p).exists() or Path(p).read_text() != t]
    if args.write:   # an experiment's edit (dvc exp run -S) is kept until the profile's file says so
        for path in edited:
            print(f"kept {path}: edited after generation (dvc exp run -S?); put the change into the "
                  "profile's file to make it permanent")
        stale = [p for p in stale if p not in edited]
    if args.check:
        if stale:
            raise SystemExit(f"out of date: {', '.join(stale)}: run `trilemma config --write` (make dvc.yaml)")
        print("the generated config files are up to date")
        return
    for path in stale:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(texts[path])
        print(f"wrote {path}")
