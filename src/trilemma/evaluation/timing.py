"""The clock: time per 100 samples, as DDGAN's Table 1 (wall-clock for one batch of 100 after
warm-up; here the median of several repeats), with the device synchronised and named."""
from __future__ import annotations

import platform
import statistics
import time
from typing import Callable

import torch


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu ({cpu}, {torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''})"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_batch(run: Callable[[], object], *, device: torch.device, repeats: int = 5,
                   warmup: int = 1) -> dict:
    """Median wall-clock seconds of ``run()`` over ``repeats`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": repeats, "device": device_name(device)}
