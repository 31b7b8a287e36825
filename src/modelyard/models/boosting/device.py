"""Where and on how many threads XGBoost runs: CUDA when a GPU is present (as the torch families do), else CPU.

CUDA is detected without importing torch (``modelyard train --model gradient_boosting`` does not
need it): an XGBoost build with CUDA, and the CUDA driver reporting at least one device.
"""

from __future__ import annotations

import ctypes
import os
import sys

from ...errors import TrainingError

__all__ = ["cpu_cores", "cuda_available", "pick_device", "threads"]


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _driver_devices() -> int:
    """CUDA devices the driver sees (0 without a driver)."""
    torch = sys.modules.get("torch")
    if torch is not None:  # already loaded: ask it, it may have initialized CUDA already
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return int(count.value)
    return 0


def cuda_available() -> bool:
    """Whether XGBoost can train on a CUDA device here."""
    import xgboost

    if not xgboost.build_info().get("USE_CUDA"):
        return False
    return _driver_devices() > 0


def pick_device(name: str | None) -> str:
    """XGBoost's ``device``: the one named (``cpu``, ``cuda``, ``cuda:N``), else ``cuda`` when available, else ``cpu``."""
    if name is None:
        return "cuda" if cuda_available() else "cpu"
    low = name.strip().lower()
    if low == "cpu":
        return "cpu"
    if low == "cuda" or (low.startswith("cuda:") and low[5:].isdigit()):
        if not cuda_available():
            raise TrainingError(f"device {name!r} was asked for but CUDA is not available; use --device cpu")
        return low
    raise TrainingError(f"unknown device {name!r}; use cpu, cuda or cuda:N")


def threads(config_threads: int | None, n_jobs: int) -> int:
    """XGBoost's ``nthread``: the run's thread setting, else ``n_jobs``, where -1 means every core."""
    if config_threads:
        return int(config_threads)
    return cpu_cores() if n_jobs == -1 else max(1, int(n_jobs))
