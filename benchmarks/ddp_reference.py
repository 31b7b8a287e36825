"""A minimal hand-written torchrun + DDP training script: the baseline of ``benchmarks/distributed.py``.

What a user would write for the job ``modelyard train data.parquet --nodes N`` does: read this
rank's rows by Parquet row groups, split them 65/15/20 at random, standardize with the local
training rows, train ``Linear(d, 1)`` with Adam (lr 1e-2) on a global batch split evenly across
ranks, all-reduce the validation loss each epoch and the test accuracy at the end. Rank 0 prints
one JSON line with the unix time of its first optimizer step and of the end.

    torchrun --standalone --nproc-per-node 2 benchmarks/ddp_reference.py data.parquet --target y --epochs 2 --batch 1024
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--target", default="y")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=1024, help="global batch")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(a.seed)

    pf = pq.ParquetFile(a.data)
    n = pf.metadata.num_rows
    lo, hi = n * rank // world, n * (rank + 1) // world
    starts = np.cumsum([0] + [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])
    groups = [i for i in range(pf.num_row_groups) if starts[i] < hi and starts[i + 1] > lo]
    table = pf.read_row_groups(groups).slice(lo - int(starts[groups[0]]), hi - lo)
    feats = [c for c in table.column_names if c != a.target]
    X = np.column_stack([table.column(c).to_numpy() for c in feats]).astype(np.float32)
    y = table.column(a.target).to_numpy().astype(np.float32)

    rng = np.random.default_rng(a.seed + rank)
    perm = rng.permutation(len(X))
    n_tr, n_va = int(0.65 * len(X)), int(0.15 * len(X))
    tr, va, te = perm[:n_tr], perm[n_tr : n_tr + n_va], perm[n_tr + n_va :]
    mean, std = X[tr].mean(0), X[tr].std(0) + 1e-12
    X = (X - mean) / std
    Xtr, ytr = torch.from_numpy(X[tr]), torch.from_numpy(y[tr])
    Xva, yva = torch.from_numpy(X[va]), torch.from_numpy(y[va])
    Xte, yte = torch.from_numpy(X[te]), torch.from_numpy(y[te])

    model = DDP(torch.nn.Linear(X.shape[1], 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    local_batch = max(1, a.batch // world)
    steps = torch.tensor([math.ceil(len(Xtr) / local_batch)])
    dist.all_reduce(steps, op=dist.ReduceOp.MAX)  # every rank takes the same number of steps
    gen = torch.Generator().manual_seed(a.seed + rank)
    first = None
    for _ in range(a.epochs):
        model.train()
        order = torch.randperm(len(Xtr), generator=gen)
        for s in range(int(steps)):
            idx = order[(s * local_batch) % len(Xtr) :][:local_batch]
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(Xtr[idx])[:, 0], ytr[idx])
            loss.backward()
            opt.step()
            if first is None:
                first = time.time()
        model.eval()
        with torch.no_grad():
            v = torch.tensor([F.binary_cross_entropy_with_logits(model(Xva)[:, 0], yva, reduction="sum").item(), len(yva)])
            dist.all_reduce(v)
    with torch.no_grad():
        acc = torch.tensor([((model(Xte)[:, 0] > 0).float() == yte).sum().item(), len(yte)], dtype=torch.float64)
        dist.all_reduce(acc)
    if rank == 0:
        print(json.dumps({"first_step_unix": first, "end_unix": time.time(), "val_loss": float(v[0] / v[1]),
                          "accuracy": float(acc[0] / acc[1]), "threads": torch.get_num_threads(),
                          "omp": os.environ.get("OMP_NUM_THREADS")}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
