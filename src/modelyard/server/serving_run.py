"""Running the serving endpoint: settings, the app factory each worker process calls, and uvicorn with N workers.

With ``workers > 1`` every worker is a separate process (uvicorn's supervisor, spawned) that
calls ``app_from_environment``: it opens the store, loads the version and follows the alias on
its own, so each answer still names the version that gave it. The settings reach the workers
as JSON in ``MODELYARD_SERVE_SETTINGS``; the token does not (each worker reads the token file).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any

from .serving import DEFAULT_MAX_BODY, ServingApp

__all__ = ["ENV", "ServeSettings", "app_from_environment", "build_app", "run_serving"]

ENV = "MODELYARD_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServeSettings:
    """What ``modelyard serve`` was asked: the store, the ref and how to guard and follow it."""

    ref: str
    store: str | None = None
    poll: float = 1.0
    token_file: str | None = None  # set on non-loopback binds: requests need the token it holds
    loopback: bool = True
    max_body: int = DEFAULT_MAX_BODY
    unknown: str = "error"
    threads: int | None = None  # torch threads per worker (None: leave as is)

    def to_json(self) -> str:
        """The settings as one JSON object."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        """Inverse of ``to_json``."""
        return cls(**json.loads(text))


def build_app(settings: ServeSettings, yard: Any = None) -> ServingApp:
    """Open the store (unless ``yard`` is given), load the version and wrap it in the ASGI app (not yet following)."""
    from ..serve.holder import ModelHolder
    from ..serve.threads import limit_threads
    from ..yard import Yard
    from .security import load_or_create_token, loopback_hosts

    if settings.threads:
        limit_threads(settings.threads)
    yard = yard if yard is not None else Yard(settings.store)
    holder = ModelHolder(yard.registry, settings.ref, poll=settings.poll)
    token = None
    if settings.token_file is not None:
        token = load_or_create_token(os.path.dirname(settings.token_file))
    return ServingApp(holder, token=token, token_file=settings.token_file,
                      allowed_hosts=loopback_hosts() if settings.loopback else None,
                      max_body=settings.max_body, unknown=settings.unknown)


def app_from_environment() -> ServingApp:
    """The app of one worker process, from ``$MODELYARD_SERVE_SETTINGS`` (uvicorn's factory)."""
    return build_app(ServeSettings.from_json(os.environ[ENV]))


def _fast_protocols() -> dict[str, str]:
    """uvloop and httptools when installed (the ``serve`` extra): they halve uvicorn's per-request cost."""
    import importlib.util

    out = {}
    if importlib.util.find_spec("httptools") is not None:
        out["http"] = "httptools"
    if importlib.util.find_spec("uvloop") is not None:
        out["loop"] = "uvloop"
    return out


def run_serving(settings: ServeSettings, sock: socket.socket, *, workers: int = 1, app: ServingApp | None = None) -> None:
    """Serve on the listening ``sock`` until interrupted: in this process, or in ``workers`` processes."""
    import uvicorn

    common = {"log_level": "warning", "access_log": False, "lifespan": "on", "timeout_keep_alive": 30,
              **_fast_protocols()}
    if workers <= 1:
        config = uvicorn.Config(app if app is not None else build_app(settings), **common)
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    os.environ[ENV] = settings.to_json()
    if settings.threads:  # set before the workers import torch
        os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    config = uvicorn.Config("modelyard.server.serving_run:app_from_environment", factory=True, workers=workers, **common)
    import inspect

    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.30 passes the server's run
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
    else:
        Multiprocess(config, sockets=[sock]).run()
