"""``modelyard ui``: serve the web dashboard and its REST API over one store (uvicorn)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_store_arg, listening_socket, token_folder

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register the ``ui`` command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "ui", help="open the web dashboard and REST API",
        description="Serve the dashboard (studies, models, lineage, aliases, comparisons) and its REST API "
        "(OpenAPI at /api/openapi.json). Binds to 127.0.0.1 unless --host says otherwise; on any other address, "
        "every request (with --public-read: every change) needs the token stored in the store folder's ui-token "
        "file, which is checked with the request's size before its body is read.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    add_store_arg(p)
    p.add_argument("--read-only", action="store_true", help="refuse every change (alias moves, rollbacks, deletes, saved comparisons)")
    p.add_argument("--public-read", action="store_true",
                   help="on a non-loopback address, let anyone who can reach the server read without the token "
                        "(changes still need it)")
    p.add_argument("--data-root", action="append", metavar="DIR",
                   help="folder comparisons may read datasets from (repeatable; default: the working directory)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``modelyard ui``."""
    import os
    import sys

    from modelyard.errors import ModelyardError
    from modelyard.server.runner import require_web_extra, serve_on

    require_web_extra()
    from modelyard.server.app import create_app
    from modelyard.server.security import TOKEN_FILE, is_loopback, load_or_create_token, loopback_hosts
    from modelyard.yard import Yard

    if not 0 <= args.port <= 65535:
        raise ModelyardError(f"--port must be between 0 and 65535, got {args.port}; e.g. --port 8765")
    roots = args.data_root or [os.getcwd()]
    for r in roots:
        if not os.path.isdir(r):
            raise ModelyardError(f"--data-root {r!r} is not a folder; pass an existing folder")
    import modelyard.store.trials
    import modelyard.store.versions  # noqa: F401  (declare every table so opening a new store creates them all)

    yard = Yard(args.store)
    yard.db.ping()
    loopback = is_loopback(args.host)
    token = token_file = None
    if not loopback:
        folder = token_folder(yard)
        token = load_or_create_token(folder)
        token_file = str(folder / TOKEN_FILE)
    read_only = args.read_only or yard.db.read_only  # a store on a read-only mount can still be browsed
    app = create_app(
        yard, token=token, allow_mutations=not read_only, allowed_hosts=loopback_hosts() if loopback else None,
        data_roots=roots, token_file=token_file, public_read=args.public_read,
    )
    sock = listening_socket(args.host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"modelyard dashboard at http://{shown}:{port}/  (store {yard.db.safe_url}; Ctrl-C stops)", flush=True)
    print(f"REST API: http://{shown}:{port}/api/openapi.json", flush=True)
    if token is not None:
        need = "changes need" if args.public_read else "every request needs"
        print(f"bound to a non-loopback address: {need} the token in {token_file} (mode 0600)", flush=True)
        if sys.stdout.isatty():  # shown once, on the terminal only: never into a log file stdout is sent to
            print(f"open http://{shown}:{port}/#/studies?token={token} to use it in this browser", flush=True)
    if read_only:
        why = "" if args.read_only else " (the store cannot be written)"
        print(f"read-only{why}: alias moves, rollbacks, deletes and comparisons (which are saved) are refused",
              flush=True)
    try:
        serve_on(app, sock)
    finally:
        sock.close()
        yard.close()
    print("stopped", file=sys.stderr)
    return 0
