"""``modelyard serve REF``: an HTTP endpoint scoring rows with a version, following NAME@ALIAS without a restart."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_store_arg, duration

__all__ = ["add_parser", "parse_size", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``serve`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="serve a version over HTTP (follows NAME@ALIAS)",
        description="Serve a version: POST /predict (JSON rows or columns, Arrow IPC, Parquet), GET /metadata, "
        "GET /health, GET /openapi.json. Served as NAME@ALIAS, it follows the alias: a moved alias is loaded and "
        "checked in the background and then answers, without a failed request. Binds 127.0.0.1 unless --host says "
        "otherwise; on any other address requests need the token in the store folder's ui-token file.",
    )
    p.add_argument("ref", help="NAME@ALIAS (followed), NAME/NUMBER or a version id prefix")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=1, help="PyTorch threads per worker (default 1)")
    p.add_argument("--poll", type=duration, default=1.0, help="seconds between looks at the alias (default 1)")
    p.add_argument("--unknown", choices=("error", "warn"), default="error",
                   help="a category never seen in training: refuse the request with 422 (default) or score it "
                        "as unseen with a logged warning")
    p.add_argument("--max-body", default="64MB", help="largest request body (default 64MB; e.g. 512KB, 1GB)")
    add_store_arg(p)
    p.set_defaults(func=run)


def parse_size(text: str) -> int:
    """``64MB``, ``512KB``, ``1GB`` or bytes -> bytes."""
    from modelyard.errors import ParamError

    t = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except (ValueError, KeyError):
        raise ParamError(f"cannot read size {text!r}; use bytes or a suffix like 512KB, 64MB, 1GB") from None
    if not value >= 1:
        raise ParamError(f"size must be at least 1 byte, got {text!r}")
    return int(value)


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard serve``."""
    import importlib.util
    import logging
    import sys

    from modelyard.errors import ModelyardError, ParamError

    if importlib.util.find_spec("uvicorn") is None:
        raise ModelyardError("modelyard serve needs uvicorn; pip install 'modelyard[serve]'")
    from modelyard.server.security import TOKEN_FILE, is_loopback, load_or_create_token
    from modelyard.server.serving_run import ServeSettings, build_app, run_serving
    from modelyard.yard import Yard

    from .common import listening_socket, token_folder

    if not 0 <= args.port <= 65535:
        raise ParamError(f"--port must be between 0 and 65535, got {args.port}; e.g. --port 8080")
    if not 1 <= args.workers <= 64:
        raise ParamError(f"--workers must be between 1 and 64, got {args.workers}")
    if not 1 <= args.threads <= 256:
        raise ParamError(f"--threads must be between 1 and 256, got {args.threads}")
    if not 0.05 <= args.poll <= 3600:
        raise ParamError(f"--poll must be between 0.05 and 3600 seconds, got {args.poll}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("modelyard.store").setLevel(logging.WARNING)
    yard = Yard(args.store)
    loopback = is_loopback(args.host)
    token_file = None
    if not loopback:
        folder = token_folder(yard)
        load_or_create_token(folder)
        token_file = str(folder / TOKEN_FILE)
    settings = ServeSettings(ref=args.ref, store=args.store, poll=args.poll, token_file=token_file, loopback=loopback,
                             max_body=parse_size(args.max_body), unknown=args.unknown, threads=args.threads)
    app = build_app(settings, yard)  # loads the version here first: a bad ref fails now, with exit 2
    loaded = app.holder.current
    sock = listening_socket(args.host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    following = " (following the alias)" if app.holder.follows else ""
    print(f"serving {loaded.ref} (id {loaded.version.short_id}) as {args.ref}{following} at http://{shown}:{port}/predict "
          f"with {args.workers} worker(s); OpenAPI at /openapi.json; Ctrl-C stops", flush=True)
    if token_file is not None:
        print(f"bound to a non-loopback address: requests need 'Authorization: Bearer TOKEN' with the token in "
              f"{token_file}", flush=True)
    try:
        run_serving(settings, sock, workers=args.workers, app=app if args.workers <= 1 else None)
    finally:
        sock.close()
        yard.close()
    print("stopped", file=sys.stderr)
    return 0
