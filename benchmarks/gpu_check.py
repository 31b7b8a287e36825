"""GPU check: every family trained on CUDA against the same run on CPU, and a 1-process NCCL group.

    python benchmarks/gpu_check.py [--epochs 10] [--json]

Meant for a machine with a GPU (a few seconds per family; well under 3 minutes in all); on a machine without
CUDA it runs the CPU side, reports every CUDA part as skipped, and exits 0. For each family it trains with
``device="cpu"`` and ``device="cuda"`` (same data, split and seed) and compares the held-out key metric: the
torch families run the same arithmetic in another order, XGBoost's GPU ``hist`` builds its own quantile cuts,
so the check allows a small tolerance rather than equality. random_forest is scikit-learn's and trains on CPU
only (reported as such). Then it creates a 1-process ``nccl`` process group, all-reduces a CUDA tensor and
checks the value. Exit code 1 if any CUDA check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

# family -> (dataset, params kept small so the check stays short)
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "logistic_regression": ("sklearn:breast_cancer", {}),
    "linear_regression": ("sklearn:diabetes", {}),
    "mlp": ("sklearn:breast_cancer", {"hidden_sizes": (32, 16)}),
    "random_forest": ("sklearn:breast_cancer", {"n_estimators": 50}),
    "gradient_boosting": ("sklearn:breast_cancer", {"n_estimators": 200}),
}
TOLERANCE = {"f1": 0.03, "accuracy": 0.03, "rmse": 0.05}  # absolute for f1/accuracy, relative for rmse


def cuda_status() -> tuple[bool, str]:
    """Whether torch sees CUDA, and the device's name."""
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device"
    return True, torch.cuda.get_device_name(0)


def train_on(family: str, data: str, params: dict[str, Any], device: str, epochs: int) -> dict[str, Any]:
    import modelyard as my
    from modelyard.train.metrics import KEY_METRIC

    ds = my.load_dataset(data)
    t0 = time.perf_counter()
    r = my.train(ds, model=family, params=params, device=device, epochs=epochs, seed=0)
    key = KEY_METRIC[ds.task]
    return {"metric": key, "value": float(r.metrics[key]), "seconds": time.perf_counter() - t0,
            "device_used": used_device(family, r, device)}


def used_device(family: str, result: Any, device: str) -> str:
    """Where the family actually trained."""
    if family == "random_forest":
        return "cpu (scikit-learn)"
    if family == "gradient_boosting":
        from modelyard.models.boosting.device import pick_device

        return f"xgboost {pick_device(device)}"
    return f"torch {device}"


def agrees(metric: str, cpu: float, gpu: float) -> bool:
    tol = TOLERANCE.get(metric, 0.05)
    if metric == "rmse":
        return abs(gpu - cpu) <= tol * max(abs(cpu), 1e-12)
    return abs(gpu - cpu) <= tol


def nccl_group() -> dict[str, Any]:
    """A 1-process NCCL group: all_reduce of a CUDA tensor gives the tensor back."""
    import torch
    import torch.distributed as dist

    from modelyard.train.launch import free_port

    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t0 = time.perf_counter()
    try:
        dist.init_process_group("nccl")
        t = torch.arange(4, dtype=torch.float32, device="cuda")
        dist.all_reduce(t)
        ok = torch.equal(t.cpu(), torch.arange(4, dtype=torch.float32))
        dist.destroy_process_group()
        return {"ok": bool(ok), "seconds": time.perf_counter() - t0}
    except Exception as e:  # noqa: BLE001 (report, do not crash the check)
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    args = p.parse_args()
    t_start = time.perf_counter()
    cuda, name = cuda_status()
    rows = []
    failed = False
    for family, (data, params) in FAMILIES.items():
        cpu = train_on(family, data, params, "cpu", args.epochs)
        row: dict[str, Any] = {"family": family, "data": data, "metric": cpu["metric"], "cpu": cpu["value"],
                               "cpu_seconds": cpu["seconds"]}
        if family == "random_forest":
            row.update(cuda="cpu only (scikit-learn)", status="n/a")
        elif not cuda:
            row.update(cuda="skipped (no CUDA)", status="skipped")
        else:
            try:
                gpu = train_on(family, data, params, "cuda", args.epochs)
                ok = agrees(cpu["metric"], cpu["value"], gpu["value"])
                row.update(cuda=gpu["value"], cuda_seconds=gpu["seconds"], device_used=gpu["device_used"],
                           status="ok" if ok else "DIFFERS")
                failed |= not ok
            except Exception as e:  # noqa: BLE001
                row.update(cuda=f"{type(e).__name__}: {e}", status="FAILED")
                failed = True
        rows.append(row)
    nccl = nccl_group() if cuda else {"ok": None, "skipped": "no CUDA"}
    failed |= cuda and not nccl.get("ok")
    summary = {"cuda": cuda, "device": name, "families": rows, "nccl_1_process": nccl,
               "seconds": time.perf_counter() - t_start, "failed": failed}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"CUDA: {name}")
        print("| family | data | metric | CPU | CUDA | status | device used | CPU s | CUDA s |")
        print("| --- | --- | --- | ---: | ---: | --- | --- | ---: | ---: |")
        for r in rows:
            cu = f"{r['cuda']:.4f}" if isinstance(r["cuda"], float) else r["cuda"]
            cs = f"{r['cuda_seconds']:.1f}" if "cuda_seconds" in r else "-"
            print(f"| {r['family']} | {r['data']} | {r['metric']} | {r['cpu']:.4f} | {cu} | {r['status']} | "
                  f"{r.get('device_used', '-')} | {r['cpu_seconds']:.1f} | {cs} |")
        print(f"nccl 1-process group: {nccl}")
        print(f"total {summary['seconds']:.0f} s; {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
