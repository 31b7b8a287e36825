"""Running an app: the check that the web extra is installed, and serving on a bound socket with uvicorn."""

from __future__ import annotations

import socket
from typing import Any

from ..errors import ModelyardError

__all__ = ["require_web_extra", "serve_on"]


def require_web_extra(what: str = "the dashboard") -> None:
    """Raise one clear sentence when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ModelyardError(f"{what} needs uvicorn and fastapi; pip install 'modelyard[ui]'") from None


def serve_on(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on the listening ``sock`` until interrupted (no access log, no lifespan)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
