"""The model a server holds, and following an alias: load the new version in the background, verify it, swap.

``ModelHolder(registry, "churn@production")`` loads the version the ref names. When the ref is
an alias (``NAME@ALIAS``, ``NAME@latest`` included), ``start()`` polls it every ``poll``
seconds on a daemon thread; when it names another version, that version is loaded from its
artifact (whose sha256 the artifact store checks on every read), verified by scoring one
synthetic row, and only then published by replacing one attribute. A request reads
``holder.current`` once and uses that ``Loaded`` for everything it does, so it is answered by
exactly one fully loaded version and can name it. A version that fails to load (a corrupt or
missing artifact, weights that do not fit) is refused, logged, and not retried until the alias
moves again; the old version keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelyardError

if TYPE_CHECKING:
    from ..models.predictor import Predictor
    from ..records.versions import Version
    from ..registry import Registry

__all__ = ["DEFAULT_POLL", "Loaded", "ModelHolder", "load_version", "smoke_rows"]

log = logging.getLogger("modelyard.serve")

DEFAULT_POLL = 1.0


@dataclass(frozen=True, eq=False)
class Loaded:
    """One fully loaded version: its registry record and its rebuilt, verified model."""

    version: Version
    predictor: Predictor
    loaded_at: float = field(default_factory=time.time)

    @property
    def id(self) -> str:
        """The version's full id."""
        return self.version.id

    @property
    def ref(self) -> str:
        """``NAME/NUMBER``."""
        return self.version.ref


def smoke_rows(predictor: Predictor) -> dict[str, list[Any]]:
    """One synthetic raw row for ``predictor``'s schema: 0 for numbers, the first category for categories."""
    return {c.name: [c.categories[0] if c.kind == "categorical" and c.categories else 0.0]
            for c in predictor.schema.columns}


def load_version(registry: Registry, ref: str) -> Loaded:
    """The version ``ref`` names, rebuilt from its checksum-verified artifact and checked on one synthetic row."""
    from ..models.predictor import Predictor
    from ..store.artifacts import state_from_bytes

    version = registry.get(ref)
    label = f"{version.ref} (id {version.short_id})"
    try:
        state = state_from_bytes(registry.artifacts.get(version.artifact))  # sha256 checked on read
    except ModelyardError as e:
        raise type(e)(f"cannot load {label}: {e}") from e
    predictor = Predictor.from_parts(version.predictor_config(), state)
    out = predictor.predict(smoke_rows(predictor), unknown="ignore")
    if len(out) != 1 or (predictor.task.value == "regression" and not np.isfinite(np.asarray(out, float)).all()):
        raise ModelyardError(f"{label} does not score a synthetic row; retrain or re-register it")
    return Loaded(version, predictor)


class ModelHolder:
    """Holds the loaded version a ref names; for an alias, follows its moves and swaps versions atomically."""

    def __init__(self, registry: Registry, ref: str, *, poll: float = DEFAULT_POLL,
                 on_switch: Callable[[Loaded, Loaded], None] | None = None):
        if not poll > 0:
            raise ModelyardError(f"the alias poll interval must be > 0 seconds, got {poll!r}")
        self.registry = registry
        self.ref = ref
        self.poll = float(poll)
        self.on_switch = on_switch
        self.follows = "@" in ref
        self._current = load_version(registry, ref)
        self._refused: str | None = None  # a version id that failed to load, not retried until the alias moves
        self._problem: str | None = None  # the last resolve error logged
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.switches = 0

    @property
    def current(self) -> Loaded:
        """The version answering now (read it once per request)."""
        return self._current

    def check(self) -> bool:
        """Look at the alias once; load, verify and publish the version it names if it moved. True on a switch."""
        if not self.follows:
            return False
        try:
            target = self.registry.resolve(self.ref).id
        except ModelyardError as e:
            if str(e) != self._problem:  # say it once, not at every poll
                log.warning("cannot resolve %s (%s); still serving %s", self.ref, e, self._current.ref)
                self._problem = str(e)
            return False
        self._problem = None
        old = self._current
        if target == old.id or target == self._refused:
            return False
        log.info("%s moved from %s to version id %s; loading it in the background", self.ref, old.ref, target[:12])
        try:
            new = load_version(self.registry, target)
        except Exception as e:  # noqa: BLE001 - any failure (corrupt bytes, bad weights, a bug) keeps the old version serving
            self._refused = target
            log.error("REFUSED version id %s for %s: %s; still serving %s (id %s)",
                      target[:12], self.ref, e, old.ref, old.version.short_id)
            return False
        self._refused = None
        self._current = new  # one attribute store: a request sees the old or the new version, never a mix
        self.switches += 1
        log.warning("%s now serves %s (id %s), was %s (id %s)", self.ref, new.ref, new.version.short_id,
                    old.ref, old.version.short_id)
        if self.on_switch is not None:
            self.on_switch(old, new)
        return True

    def start(self) -> ModelHolder:
        """Follow the alias on a daemon thread (nothing to do for a fixed ref)."""
        if self.follows and self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"follow {self.ref}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.check()
            except Exception:  # never let the follower die; the next poll tries again
                log.exception("following %s failed; retrying in %.1f s", self.ref, self.poll)
