"""Test instrumentation (tests/test_ddp_images.py): with this directory on PYTHONPATH and
``RANK_BATCHES_DIR`` set, every Python process that trains with the shared loop -- the torchrun
workers a verb re-launches itself as included -- writes ``<dir>/rank<RANK>.json``: for each of the
task's modules, the batch sizes its forward calls saw, and torch's global seed (dropout masks).  A rank that works on its slice of the global
batch sees global / world examples per call; one that works on the whole batch sees them all."""
import os

if os.environ.get("RANK_BATCHES_DIR"):
    import atexit
    import json
    from pathlib import Path

    from trilemma.training import loop

    import torch

    _seen: dict[str, set[int]] = {}
    _seed: list[int] = []   # torch's global seed (dropout masks) when the first forward ran
    _train = loop.train

    def _record(name, inputs):
        _seen.setdefault(name, set()).add(int(inputs[0].shape[0]))
        if not _seed:
            _seed.append(torch.initial_seed())

    def train(task, *args, **kwargs):
        for name, module in task.modules.items():
            module.register_forward_pre_hook(lambda mod, inputs, name=name: _record(name, inputs))
        return _train(task, *args, **kwargs)

    @atexit.register
    def _write():
        if _seen:
            out = Path(os.environ["RANK_BATCHES_DIR"]) / f"rank{os.environ.get('RANK', '0')}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"batches": {k: sorted(v) for k, v in _seen.items()}, "torch_seed": _seed[0]}))

    loop.train = train
