"""Content-addressed artifact storage: bytes keyed by their sha256, written atomically, verified on every read.

Layout under the root (a folder or any fsspec URL such as ``s3://bucket/prefix``)::

    sha256/ab/abcdef...      the bytes whose sha256 hex digest is abcdef...
    packs/                   local stores only: blobs under 1 MiB, appended to pack files (see ``packs``)
    tmp/                     local stores only: files being written (renamed into place when complete)

A local store appends small blobs (every linear model, most MLPs and forests of a registry)
to a pack file and indexes them after their bytes are written, so a reader never sees a partial
blob and a registration creates no file: creating one costs more than the rest of a small
registration. A larger blob is written to ``tmp/`` and renamed into place, so a killed process
leaves at most a stray temporary file. With ``fsync=True`` (``MODELYARD_DURABLE=1``) the bytes
are fsynced before they are indexed or renamed and before the database row that names them is
written, so the weights survive a power loss whenever the row does. On object stores (S3, GCS,
Azure) a single PUT is already all-or-nothing, so every object is written to its final key;
other fsspec filesystems get a temporary key and a move. Identical bytes have one key, so
they are stored once. Storage options for fsspec (e.g. ``endpoint_url`` for an
S3-compatible server) come from the URL's query string or the ``storage_options`` argument.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from ..errors import ArtifactError, CorruptArtifactError, StoreError
from .packs import PACK_LIMIT, Location, PackStore, fsync_dir

__all__ = ["ArtifactStore", "Location", "digest_of", "split_storage_url", "state_from_bytes", "state_to_bytes"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SCALARS = "modelyard.scalars"
_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"}


def digest_of(data: bytes) -> str:
    """sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


_LITTLE = sys.byteorder == "little"


def _json_bytes(obj: Any) -> bytes:
    try:
        import orjson
    except ImportError:  # pragma: no cover - the same bytes, slower
        return json.dumps(obj, separators=(",", ":")).encode()
    return orjson.dumps(obj)


_SAFETENSORS_DTYPES = {"f8": "F64", "f4": "F32", "f2": "F16", "i8": "I64", "i4": "I32", "i2": "I16", "i1": "I8",
                       "u8": "U64", "u4": "U32", "u2": "U16", "u1": "U8", "b1": "BOOL"}


def state_to_bytes(state: Mapping[str, Any]) -> bytes:
    """Named numeric arrays as safetensors bytes: deterministic (equal arrays, equal bytes) and free of code.

    Written directly in the safetensors layout (a little-endian u64 header length, a JSON header
    padded with spaces to 8 bytes, then each array's little-endian bytes in name order), which
    costs a fifth of the library's writer for the small states of a registry; ``state_from_bytes``
    reads it with the safetensors library, which validates every offset.
    """
    import numpy as np

    header: dict[str, Any] = {}
    chunks: list[bytes] = []
    scalars: list[str] = []
    offset = 0
    for name, value in sorted((str(k), v) for k, v in state.items()):
        arr = np.asarray(value)
        code = _SAFETENSORS_DTYPES.get(f"{arr.dtype.kind}{arr.dtype.itemsize}") if arr.dtype.kind in "biuf" else None
        if code is None:
            raise ArtifactError(
                f"state array {name!r} has dtype {arr.dtype}, which safetensors cannot store; a model's state() "
                "must return numeric or boolean arrays"
            )
        if arr.ndim == 0:  # safetensors reads 0-d tensors back as shape (1,): record them to restore the shape
            scalars.append(name)
            arr = arr.reshape(1)
        data = (arr if arr.dtype.byteorder in "<|" or (arr.dtype.byteorder == "=" and _LITTLE) else
                arr.astype(arr.dtype.newbyteorder("<"))).tobytes()  # C order, contiguous or not
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if scalars:
        header["__metadata__"] = {_SCALARS: json.dumps(scalars)}
    text = _json_bytes(header)
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def state_from_bytes(data: bytes) -> dict[str, Any]:
    """Inverse of ``state_to_bytes``."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        arrays = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError) as e:
        raise CorruptArtifactError(f"the artifact is not valid safetensors data ({e})") from e
    for name in json.loads((header.get("__metadata__") or {}).get(_SCALARS, "[]")):
        arrays[name] = arrays[name].reshape(())
    return arrays


def split_storage_url(url: str) -> tuple[str, dict[str, Any]]:
    """``s3://b/p?endpoint_url=http://h:9000&anon=false`` -> ``("s3://b/p", {"endpoint_url": ..., "anon": False})``."""
    base, sep, query = url.partition("?")
    if not sep:
        return url, {}
    options: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        low = value.lower()
        options[key] = True if low == "true" else False if low == "false" else value
    return base, options


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class ArtifactStore:
    """Bytes addressed by sha256 under a folder or fsspec URL: ``put`` is idempotent and atomic, ``get`` verifies."""

    def __init__(self, url: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None,
                 fsync: bool = False):
        base, query_options = split_storage_url(str(url))
        self.fsync = fsync
        self.url = base
        self.storage_options = {**query_options, **dict(storage_options or {})}
        self._local = _is_local(base)
        self._fs: Any = None
        if self._local:
            self._root = Path(base.removeprefix("file://")).expanduser().absolute()
            self.url = str(self._root)
            self._packs: PackStore | None = PackStore(self._root, fsync=fsync)
        else:
            self._root = None
            self._packs = None

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    def close(self) -> None:
        """Release open pack files (a later write opens them again)."""
        if self._packs is not None:
            self._packs.close()

    # --- public API -------------------------------------------------------------------
    def put(self, data: bytes) -> str:
        """Store ``data`` (once: equal bytes share one key) and return its sha256 digest."""
        data = bytes(data)
        digest = digest_of(data)
        try:
            if self._local:
                self._put_local(digest, data)
            else:
                self._put_remote(digest, data)
        except StoreError:
            raise
        except Exception as e:  # OSError, botocore/network errors, permission errors ...
            raise ArtifactError(
                f"cannot write artifact {digest[:12]} to {self.url}: {type(e).__name__}: {e}; check that the "
                "location exists and is writable (and its credentials/endpoint for object storage)"
            ) from e
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes stored under ``digest``, verified against it (CorruptArtifactError on a mismatch)."""
        self._check(digest)
        try:
            packed = self._packs.read(digest) if self._packs is not None else None
            if packed is not None:
                data = packed
            elif self._local:
                data = self._path(digest).read_bytes()
            else:
                data = self._filesystem().cat_file(self._key(digest))
        except FileNotFoundError:
            raise ArtifactError(
                f"artifact {digest} is missing from {self.url}; the store's files were moved or deleted, or "
                "MODELYARD_ARTIFACTS points elsewhere than where the model was registered"
            ) from None
        except Exception as e:
            raise ArtifactError(
                f"cannot read artifact {digest[:12]} from {self.url}: {type(e).__name__}: {e}; check that the "
                "location is reachable"
            ) from e
        actual = digest_of(data)
        if actual != digest:
            raise CorruptArtifactError(
                f"artifact {digest} at {self.url} is corrupted: its bytes hash to {actual[:12]}, not {digest[:12]} "
                f"({len(data)} bytes); restore the file from a backup or re-register the model"
            )
        return data

    def exists(self, digest: str) -> bool:
        """Whether bytes are stored under ``digest`` (not verified)."""
        self._check(digest)
        if self._packs is not None:
            return self._packs.locate(digest) is not None or self._path(digest).is_file()
        return bool(self._filesystem().exists(self._key(digest)))

    def stored(self, digest: str) -> bool:
        """Whether bytes are stored under ``digest`` now, as every other process sees it (no cache is trusted).

        The registry asks this inside a version's transaction, where no gc can delete (see
        ``Registry.gc``): a pack's indexes are read up to their ends, a loose file is looked up,
        an object store is asked (its listing cache dropped first).
        """
        self._check(digest)
        if self._packs is not None:
            return self._packs.known(digest, fresh=True) or self._path(digest).is_file()
        fs = self._filesystem()
        key = self._key(digest)
        _forget(fs, key)
        return bool(fs.exists(key))

    def size(self, digest: str) -> int:
        """Bytes stored under ``digest``; ArtifactError when missing."""
        self._check(digest)
        try:
            if self._local:
                where = self._packs.locate(digest)  # type: ignore[union-attr]
                return where.length if where is not None else self._path(digest).stat().st_size
            return int(self._filesystem().size(self._key(digest)))
        except FileNotFoundError:
            raise ArtifactError(f"artifact {digest} is missing from {self.url}") from None

    def delete(self, digest: str) -> bool:
        """Remove the bytes under ``digest``; returns whether anything was removed."""
        self._check(digest)
        try:
            if self._local:
                packed = self._packs.delete(digest)  # type: ignore[union-attr]
                try:
                    self._path(digest).unlink()
                except FileNotFoundError:
                    return packed
            else:
                fs = self._filesystem()
                key = self._key(digest)
                if not fs.exists(key):  # object stores delete missing keys without complaint
                    return False
                fs.rm_file(key)
        except FileNotFoundError:
            return False
        return True

    def digests(self) -> Iterator[tuple[str, float]]:
        """Every stored digest with its modification time (seconds since the epoch)."""
        if self._local:
            found = dict(self._packs.live())  # type: ignore[union-attr]
            base = self._root / "sha256"  # type: ignore[operator]
            for sub in sorted(base.iterdir()) if base.is_dir() else ():
                for f in sorted(sub.iterdir()) if sub.is_dir() else ():
                    if _HEX64.match(f.name):
                        found[f.name] = max(found.get(f.name, 0.0), f.stat().st_mtime)
            yield from sorted(found.items())
            return
        fs = self._filesystem()
        prefix = self._join("sha256")
        try:
            infos = fs.find(prefix, detail=True)
        except FileNotFoundError:
            return
        for path, info in sorted(infos.items()):
            name = path.rsplit("/", 1)[-1]
            if _HEX64.match(name):
                yield name, _mtime(info)

    def locate(self, digest: str) -> Location:
        """Where a local store keeps ``digest``'s bytes (a pack and the range in it, or a file of their own)."""
        self._check(digest)
        if not self._local:
            raise ArtifactError(f"{self.url} is not a local folder; its artifacts have keys, not locations")
        where = self._packs.locate(digest)  # type: ignore[union-attr]
        if where is not None:
            return where
        path = self._path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ArtifactError(f"artifact {digest} is missing from {self.url}") from None
        return Location(path, 0, st.st_size, st.st_mtime)

    def compact(self) -> int:
        """Reclaim the space of deleted blobs in a local store's packs; returns the bytes freed (0 elsewhere)."""
        if self._packs is None:
            return 0
        try:
            return self._packs.compact()
        except OSError as e:
            raise ArtifactError(f"cannot compact the packs in {self.url}: {e}; check that it is writable") from e

    # --- internals --------------------------------------------------------------------
    def _check(self, digest: str) -> None:
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ArtifactError(f"{digest!r} is not a sha256 digest (64 lowercase hex characters)")

    def _path(self, digest: str) -> Path:
        return self._root / "sha256" / digest[:2] / digest  # type: ignore[operator]

    def _join(self, *parts: str) -> str:
        return "/".join([self.url.rstrip("/"), *parts])

    def _key(self, digest: str) -> str:
        return self._join("sha256", digest[:2], digest)

    def _filesystem(self) -> Any:
        if self._fs is None:
            import fsspec

            try:
                self._fs, _ = fsspec.core.url_to_fs(self.url, **self.storage_options)
            except (ImportError, ValueError) as e:
                raise StoreError(
                    f"cannot open artifact storage {self.url!r} ({e}); for s3:// install s3fs "
                    "(pip install 'modelyard[s3]'), and check the storage options"
                ) from e
        return self._fs

    def _put_local(self, digest: str, data: bytes) -> None:
        packs = self._packs
        assert packs is not None
        if len(data) < PACK_LIMIT:
            if packs.known(digest):
                stored = packs.read(digest)
                if stored is not None and digest_of(stored) == digest:
                    packs.touch(digest)  # a fresh time: gc's age guard protects a blob that is being reused
                    return  # already stored; a damaged copy is superseded below
            packs.append(digest, data)
            return
        final = os.path.join(self._root, "sha256", digest[:2], digest)
        try:
            with open(final, "rb") as f:
                if digest_of(f.read()) == digest:
                    os.utime(final)  # a fresh mtime: gc's age guard protects a blob that is being reused
                    return  # already stored; a damaged copy is replaced below
        except FileNotFoundError:
            pass
        tmp_dir = os.path.join(self._root, "tmp")
        tmp = os.path.join(tmp_dir, f"{digest}.{secrets.token_hex(8)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(tmp, flags, 0o644)
        except FileNotFoundError:  # the first write into this store: make its folders, all 256 prefixes at once
            os.makedirs(tmp_dir, exist_ok=True)
            for i in range(256):  # (so no later write pays for a mkdir)
                os.makedirs(os.path.join(self._root, "sha256", f"{i:02x}"), exist_ok=True)
            fd = os.open(tmp, flags, 0o644)
        done = False
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if self.fsync:  # on disk before any database row names them, even across a power loss
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.replace(tmp, final)
            except FileNotFoundError:  # the first blob with this two-character prefix
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(tmp, final)
            done = True
        finally:
            if not done:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        if self.fsync:
            fsync_dir(Path(final).parent)

    def _put_remote(self, digest: str, data: bytes) -> None:
        fs = self._filesystem()
        key = self._key(digest)
        _forget(fs, key)  # a listing cached before another process's gc would say the object is still there
        try:
            if int(fs.size(key)) == len(data):
                return
        except FileNotFoundError:
            pass
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if protocol in _OBJECT_STORES:
            fs.pipe_file(key, data)  # one PUT: the object appears complete or not at all
        else:
            tmp = self._join("tmp", f"{digest}.{secrets.token_hex(8)}.tmp")
            fs.makedirs(self._join("tmp"), exist_ok=True)
            fs.makedirs(self._join("sha256", digest[:2]), exist_ok=True)
            fs.pipe_file(tmp, data)
            fs.mv(tmp, key)


def _forget(fs: Any, key: str) -> None:
    """Drop what an fsspec filesystem cached about ``key`` (s3fs keeps listings; a deletion elsewhere is not in them)."""
    invalidate = getattr(fs, "invalidate_cache", None)
    if invalidate is not None:
        invalidate(key)


def _mtime(info: Mapping[str, Any]) -> float:
    for key in ("LastModified", "mtime", "last_modified", "created"):
        v = info.get(key)
        if v is None:
            continue
        if hasattr(v, "timestamp"):
            return float(v.timestamp())
        try:
            return float(v)
        except (TypeError, ValueError):
            continue
    return time.time()
