"""The object-store interface that export and restore need, and `open_store(uri)`.

Coordination between exporters is done with compare-and-set on ETags, never with locks: an object
is created only if absent (`If-None-Match: *`) and replaced only if it still has the ETag the
writer read (`If-Match: <etag>`). A lost race raises `PreconditionFailed` (HTTP 412), and the
caller re-reads and tries again.

Backends (one module each): `file:///dir` (relayq.export.filestore), `s3://bucket/prefix`
(relayq.export.s3store) and `memory://name` (here: for tests; one store per name and process).
Keys are relative to the store's root and use `/` as separator; `check_key` is the one rule
every backend applies, so that no key (from a manifest or a command line) reaches outside the
store's root or prefix.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

from ..errors import InvalidArgument, NotFound, RelayqError

Data = bytes | BinaryIO  # what a put accepts: bytes, or a binary file positioned at its start


class PreconditionFailed(RelayqError):
    """A conditional put lost: the object exists (put-if-absent) or has changed or gone
    (put-if-match). Re-read and try again."""

    code = "precondition_failed"


class ObjectNotFound(NotFound):
    pass


class StoreUnavailable(RelayqError):
    """The store could not be reached or refused the request for another reason."""

    code = "store_unavailable"


@dataclass(frozen=True, slots=True)
class Stored:
    data: bytes
    etag: str


class ObjectStore(ABC):
    """Just what export needs: get with ETag, conditional puts, list, delete, and a streaming
    download for large objects."""

    uri: str

    @abstractmethod
    def get(self, key: str) -> Stored:
        """The object and its ETag; ObjectNotFound if there is none."""

    @abstractmethod
    def download(self, key: str, out: BinaryIO) -> None:
        """Streams the object into `out` (bounded memory); ObjectNotFound if there is none."""

    @abstractmethod
    def put_if_absent(self, key: str, data: Data) -> str:
        """Creates the object; PreconditionFailed if it exists. Returns the new ETag."""

    @abstractmethod
    def put_if_match(self, key: str, data: Data, etag: str) -> str:
        """Replaces the object if its ETag is still `etag`; PreconditionFailed if it changed or
        is gone. Returns the new ETag."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Keys that start with `prefix`, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Removes the object; no error if it is already gone."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


MAX_KEY_BYTES = 1024  # S3's limit on a key


def check_key(key: object) -> str:
    """`key` if it names an object inside the store, else InvalidArgument: `/`-separated
    segments, none empty, `.`, `..` or hidden (a leading `.`: the file store's own files), no
    backslash or control character, at most MAX_KEY_BYTES."""
    if not isinstance(key, str) or not key or len(key.encode("utf-8", "replace")) > MAX_KEY_BYTES:
        raise InvalidArgument(f"invalid object key {key!r:.100}: expected 1-{MAX_KEY_BYTES} "
                              "bytes")
    if "\\" in key or any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in key) or any(
            part in ("", ".", "..") or part.startswith(".") for part in key.split("/")):
        raise InvalidArgument(f"invalid object key {key!r:.100}: it must stay inside the store "
                              "(no empty, '.', '..' or hidden segments)")
    return key


def read_all(data: Data) -> bytes:
    return data if isinstance(data, bytes) else data.read()


ETAG_CHARS = 32


def content_etag(data: bytes) -> str:
    """The ETag of the file and memory stores: a hash of the content."""
    return hashlib.sha256(data).hexdigest()[:ETAG_CHARS]


class MemoryStore(ObjectStore):
    """Objects in a dict, for tests. Thread-safe; the ETag is a hash of the content."""

    def __init__(self, uri: str = "memory://") -> None:
        self.uri = uri
        self._objects: dict[str, Stored] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Stored:
        check_key(key)
        with self._lock:
            if key not in self._objects:
                raise ObjectNotFound(f"{self.uri}: no object {key}")
            return self._objects[key]

    def download(self, key: str, out: BinaryIO) -> None:
        out.write(self.get(key).data)

    def put_if_absent(self, key: str, data: Data) -> str:
        body = read_all(data)
        check_key(key)
        with self._lock:
            if key in self._objects:
                raise PreconditionFailed(f"{self.uri}: {key} already exists")
            return self._store(key, body)

    def put_if_match(self, key: str, data: Data, etag: str) -> str:
        body = read_all(data)
        check_key(key)
        with self._lock:
            current = self._objects.get(key)
            if current is None or current.etag != etag:
                raise PreconditionFailed(f"{self.uri}: {key} has changed")
            return self._store(key, body)

    def _store(self, key: str, body: bytes) -> str:
        # The ETag also depends on the previous one, so rewriting equal content still changes it.
        previous = self._objects.get(key)
        etag = content_etag(body + (previous.etag.encode() if previous else b""))
        self._objects[key] = Stored(body, etag)
        return etag

    def list(self, prefix: str) -> Iterator[str]:
        with self._lock:
            keys = sorted(k for k in self._objects if k.startswith(prefix))
        return iter(keys)

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)


_MEMORY_STORES: dict[str, MemoryStore] = {}
_MEMORY_LOCK = threading.Lock()


def open_store(uri: str, *, s3_endpoint_url: str | None = None) -> ObjectStore:
    """The store for `file:///dir`, `s3://bucket[/prefix]` or `memory://[name]` (the same
    memory store for the same name within one process). `s3_endpoint_url` points S3 at any
    S3-compatible server; credentials come from the standard AWS chain."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        from .filestore import FileStore

        if parts.netloc not in ("", "localhost") or not parts.path:
            raise InvalidArgument(f"expected file:///absolute/dir, got {uri!r}")
        return FileStore(parts.path)
    if scheme == "s3":
        from .s3store import S3Store

        if not parts.netloc:
            raise InvalidArgument(f"expected s3://bucket[/prefix], got {uri!r}")
        return S3Store(parts.netloc, parts.path.strip("/"), endpoint_url=s3_endpoint_url)
    if scheme == "memory":
        with _MEMORY_LOCK:
            return _MEMORY_STORES.setdefault(uri, MemoryStore(uri))
    raise InvalidArgument(f"unsupported store {uri!r}: use file:///dir, s3://bucket/prefix "
                          "or memory://")
