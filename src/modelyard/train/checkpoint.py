"""Training checkpoints: written every K epochs by rank 0, read back by ``--resume``; never pickled.

Layout of ``DIR/epoch-000004/``: ``rank-R.safetensors`` per rank (module weights, best weights,
optimizer tensors, torch RNG state: what differs between ranks under local SGD), ``shared.safetensors``
(the data-order generator), and ``meta.json`` (epoch, step, early-stopping state, history,
scheduler and optimizer settings, the configuration, and the sha256 of every file). A checkpoint
is written into a temporary folder and renamed, then ``LATEST`` is replaced atomically, so a
crash leaves the previous checkpoint intact. The last ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..records.training import EpochLog

__all__ = ["Checkpointer", "config_key", "latest_checkpoint"]

FORMAT = 1


def config_key(config: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-safe configuration (names a default checkpoint folder)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None."""
    d = Path(directory)
    latest = d / "LATEST"
    if latest.is_file():
        path = d / latest.read_text().strip()
        if (path / "meta.json").is_file():
            return path
    done = sorted(p for p in d.glob("epoch-*") if (p / "meta.json").is_file()) if d.is_dir() else []
    return done[-1] if done else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class Checkpointer:
    """Saves the loop's state every ``every`` epochs into ``directory`` and, with ``resume``, restores the latest."""

    def __init__(
        self, directory: str | Path, *, every: int | None, resume: bool, config: Mapping[str, Any], keep: int = 2
    ):
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise TrainingError(f"checkpoint_every must be an int >= 1 (epochs), got {every!r}; e.g. --checkpoint-every 2")
        self.directory = Path(directory)
        self.every = every
        self.resume = resume
        self.config = json.loads(json.dumps(dict(config), default=str))
        self.keep = max(1, keep)
        self.resumed_from: int | None = None

    # -- saving --
    def maybe_save(self, state: Any, hook: Any) -> Path | None:
        """Write a checkpoint if this epoch is a multiple of ``every`` (every rank must call this)."""
        if not self.every or state.epoch % self.every:
            return None
        return self.save(state, hook)

    def save(self, state: Any, hook: Any) -> Path | None:
        """Gather every rank's state and write one checkpoint from rank 0."""
        import torch
        from safetensors.torch import save as st_save

        comm = hook.comm
        tensors = {f"module.{k}": v for k, v in state.module.state_dict().items()}
        if state.best_state is not None:
            tensors.update({f"best.{k}": v for k, v in state.best_state.items()})
        opt_state = state.optimizer.state_dict()
        for idx, entry in opt_state["state"].items():
            for name, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"opt.{idx}.{name}"] = value
                elif value is not None:
                    tensors[f"opt.{idx}.{name}"] = torch.tensor(value)
        tensors["rng.torch"] = torch.get_rng_state()
        blob = st_save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})
        blobs = comm.gather(np.frombuffer(blob, dtype=np.uint8))
        if comm.rank != 0:
            return None
        name = f"epoch-{state.epoch:06d}"
        tmp = self.directory / f".tmp-{name}-{os.getpid()}"
        final = self.directory / name
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        files = {}
        for r, b in enumerate(blobs):
            _write_bytes(tmp / f"rank-{r}.safetensors", b.tobytes())
            files[f"rank-{r}.safetensors"] = _sha256(tmp / f"rank-{r}.safetensors")
        _write_bytes(tmp / "shared.safetensors", st_save({"generator": state.generator.get_state()}))
        files["shared.safetensors"] = _sha256(tmp / "shared.safetensors")
        sched = state.scheduler.state_dict() if state.scheduler is not None else None
        meta = {
            "format": FORMAT,
            "epoch": state.epoch,
            "step": state.step,
            "world_size": comm.world_size,
            "best_loss": state.best_loss if math.isfinite(state.best_loss) else None,
            "best_epoch": state.best_epoch,
            "bad": state.bad,
            "history": [h.to_dict() for h in state.history],
            "scheduler": {k: v for k, v in sched.items() if k != "lr_lambdas"} if sched is not None else None,
            "param_groups": opt_state["param_groups"],
            "config": self.config,
            "files": files,
        }
        _write_bytes(tmp / "meta.json", json.dumps(meta, indent=1, default=str).encode())
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = self.directory / f".LATEST.{os.getpid()}"
        _write_bytes(pointer, name.encode())
        os.replace(pointer, self.directory / "LATEST")
        old = sorted(p for p in self.directory.glob("epoch-*") if p.is_dir() and p.name != name)
        for p in old[: max(0, len(old) - (self.keep - 1))]:
            shutil.rmtree(p, ignore_errors=True)
        return final

    # -- resuming --
    def restore(self, state: Any, hook: Any) -> None:
        """Load the latest checkpoint into ``state`` (when resuming); refuses a different configuration."""
        if not self.resume:
            return
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = latest_checkpoint(self.directory)
        if path is None:
            raise TrainingError(
                f"--resume found no checkpoint in {str(self.directory)!r}; train with --checkpoint-every K first "
                "(with the same data and settings), or drop --resume"
            )
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise TrainingError(f"checkpoint {str(path)!r} has format {meta.get('format')!r}, expected {FORMAT}")
        diff = sorted(k for k in set(meta["config"]) | set(self.config) if meta["config"].get(k) != self.config.get(k))
        if diff:
            detail = "; ".join(f"{k}: {meta['config'].get(k)!r} then, {self.config.get(k)!r} now" for k in diff)
            raise TrainingError(
                f"checkpoint {str(path)!r} was written with different settings ({detail}); resume with the same "
                "settings, or start fresh without --resume"
            )
        rank = hook.comm.rank
        mine = f"rank-{rank}.safetensors"
        for fname in (mine, "shared.safetensors"):
            if _sha256(path / fname) != meta["files"].get(fname):
                raise TrainingError(
                    f"checkpoint file {str(path / fname)!r} does not match its sha256 (corrupt or truncated); "
                    "delete that checkpoint folder to resume from the one before"
                )
        try:
            tensors = load_file(str(path / mine))
            shared = load_file(str(path / "shared.safetensors"))
        except (SafetensorError, OSError) as e:
            raise TrainingError(f"cannot read checkpoint {str(path)!r}: {e}; delete it to resume from the one before") from e
        state.module.load_state_dict({k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")})
        best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
        state.best_state = best or None
        opt_state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, name = k.split(".", 2)
                opt_state.setdefault(int(idx), {})[name] = v
        state.optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
        if state.scheduler is not None and meta["scheduler"] is not None:
            state.scheduler.load_state_dict({**meta["scheduler"], "lr_lambdas": [None] * len(meta["param_groups"])})
        torch.set_rng_state(tensors["rng.torch"])
        state.generator.set_state(shared["generator"])
        state.epoch = int(meta["epoch"])
        state.step = int(meta["step"])
        state.best_loss = math.inf if meta["best_loss"] is None else float(meta["best_loss"])
        state.best_epoch = int(meta["best_epoch"])
        state.bad = int(meta["bad"])
        state.history[:] = [EpochLog.from_dict(h) for h in meta["history"]]
        self.resumed_from = state.epoch
