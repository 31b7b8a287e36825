"""What keeps the dashboard safe: the access token, loopback and Host checks, and input confinement.

- The token is generated on first start with ``secrets.token_urlsafe`` and kept in the store's
  folder as ``ui-token`` with 0600 permissions; there is no default password. Mutating endpoints
  (alias move, rollback, delete) require it whenever the server is bound to a non-loopback address.
- On a loopback bind, a Host allow-list defeats DNS rebinding and an Origin check defeats
  cross-site requests, so a web page the user visits cannot drive the local server.
- Dataset paths must resolve (symlinks included) under an allowed root; refs and names are
  matched against a strict pattern before they reach the store. Nothing is ever unpickled.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import DataError, StoreError

__all__ = [
    "TOKEN_FILE",
    "check_name",
    "check_ref",
    "host_allowed",
    "is_loopback",
    "load_or_create_token",
    "loopback_hosts",
    "resolve_dataset",
    "token_matches",
]

TOKEN_FILE = "ui-token"
_MIN_TOKEN_CHARS = 32
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(?:[/@:][A-Za-z0-9][A-Za-z0-9._\-]*)?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,199}$")
_MAX_REF = 256


def load_or_create_token(folder: str | os.PathLike[str]) -> str:
    """Read the token in ``folder/ui-token``, creating it (0600, random, atomic) on first start."""
    folder = Path(folder)
    path = folder / TOKEN_FILE
    if not path.exists():
        try:
            _create_token(folder, path)
        except OSError as e:  # e.g. a store on a read-only mount
            raise StoreError(
                f"cannot create the dashboard token {str(path)!r} ({e.strerror}); start `modelyard ui` once with "
                "write access to the store's folder, or serve on 127.0.0.1 (no token needed)"
            ) from e
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise StoreError(
            f"the dashboard token file {str(path)!r} is readable by other users (mode {mode:o}); "
            f"run chmod 600 {path} or delete it to generate a new one"
        )
    token = path.read_text().strip()
    if len(token) < _MIN_TOKEN_CHARS:
        raise StoreError(
            f"the dashboard token in {str(path)!r} is shorter than {_MIN_TOKEN_CHARS} characters; "
            "delete the file so a strong one is generated on the next start"
        )
    return token


def _create_token(folder: Path, path: Path) -> None:
    """Write a new random token to ``path`` (0600, atomically; a token another process wrote first is kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = folder / f".{TOKEN_FILE}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # never clobbers a token another process created first
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server reachable from this machine only."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def loopback_hosts() -> tuple[str, ...]:
    """Host names a browser uses to reach a loopback-bound server."""
    return ("127.0.0.1", "localhost", "::1")


def _split_host(value: str) -> str:
    v = value.strip().lower()
    if v.startswith("["):  # [::1]:8765
        return v[1:].split("]", 1)[0]
    if v.count(":") == 1:
        return v.split(":", 1)[0]
    return v


def host_allowed(header: str | None, allowed: Iterable[str]) -> bool:
    """Whether a Host (or Origin netloc) header names one of ``allowed`` (ports ignored)."""
    if not header:
        return False
    return _split_host(header) in {a.strip("[]").lower() for a in allowed}


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the expected one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def check_ref(ref: str) -> str:
    """Refuse a version ref that is not ``NAME``, ``NAME/NUMBER``, ``NAME@ALIAS`` or an id (prefix)."""
    if not isinstance(ref, str) or not ref or len(ref) > _MAX_REF or not _REF_RE.match(ref) or ".." in ref:
        raise DataError(
            f"ref {ref!r} is not a valid version ref; use NAME/NUMBER, NAME@ALIAS, NAME or a version id prefix "
            "(letters, digits, '.', '_' and '-')"
        )
    return ref


def check_name(name: str, what: str = "name") -> str:
    """Refuse a model, study or alias name outside ``[A-Za-z0-9][A-Za-z0-9._-]*`` (at most 200 characters)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise DataError(
            f"{what} {name!r} is not valid; use 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def resolve_dataset(spec: str, roots: Sequence[str | os.PathLike[str]]) -> str:
    """Return a loadable dataset spec: ``sklearn:NAME`` as is, or a file path confined to ``roots``."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError("dataset is empty; pass sklearn:NAME or a .csv/.parquet/.npz path under the working directory")
    spec = spec.strip()
    if spec.startswith("sklearn:"):
        from ..data.load import SKLEARN_DATASETS

        name = spec.split(":", 1)[1]
        if name not in SKLEARN_DATASETS:
            raise DataError(f"unknown bundled dataset {spec!r}; use one of "
                            + ", ".join(f"sklearn:{n}" for n in SKLEARN_DATASETS))
        return spec
    if "://" in spec or spec.startswith("~") or "\x00" in spec:
        raise DataError(
            f"dataset {spec!r} must be sklearn:NAME or a plain file path under the allowed folders; "
            "URLs and home-relative paths are refused by the dashboard"
        )
    resolved_roots = [Path(r).resolve() for r in roots]
    raw = Path(spec)
    candidates = [raw.resolve()] if raw.is_absolute() else [(r / raw).resolve() for r in resolved_roots]
    for path in candidates:
        if any(path.is_relative_to(r) for r in resolved_roots):
            if path.suffix.lower() not in (".csv", ".parquet", ".npz"):
                raise DataError(f"dataset {spec!r} must be a .csv, .parquet or .npz file")
            if path.is_file():
                return str(path)
    if any(any(c.is_relative_to(r) for r in resolved_roots) for c in candidates):
        raise DataError(f"dataset {spec!r} does not exist under {', '.join(map(str, resolved_roots))}; check the path")
    raise DataError(
        f"dataset {spec!r} is outside the folders the dashboard may read ({', '.join(map(str, resolved_roots))}); "
        "copy it under the working directory or start `modelyard ui` from its folder"
    )
