"""`file:///dir`: an object store on a local (or shared POSIX) filesystem.

Every write goes to a temporary file in the target's directory, is flushed and fsynced, and only
then appears under its name, so a reader never sees a half-written object and a crash leaves at
most a stray temporary file (ignored by `list`). Conditional writes are compare-and-set safe
across processes: the check and the rename happen under an exclusive `flock` on the store's lock
file. The ETag is a hash of the content (computed on `get`, which is used for small objects).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .store import (
    ETAG_CHARS,
    Data,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    Stored,
    StoreUnavailable,
    check_key,
    content_etag,
)

LOCK_NAME = ".relayq-store.lock"
TMP_PREFIX = ".tmp-"
CHUNK = 1024 * 1024


class FileStore(ObjectStore):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.uri = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreUnavailable(f"{self.uri}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def get(self, key: str) -> Stored:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.uri}: no object {key}") from None
        except OSError as e:
            raise StoreUnavailable(f"{self.uri}: {e}") from e
        return Stored(data, content_etag(data))

    def download(self, key: str, out: BinaryIO) -> None:
        try:
            with self._path(key).open("rb") as f:
                shutil.copyfileobj(f, out, CHUNK)
        except FileNotFoundError:
            raise ObjectNotFound(f"{self.uri}: no object {key}") from None
        except OSError as e:
            raise StoreUnavailable(f"{self.uri}: {e}") from e

    def _write_temp(self, path: Path, data: Data) -> tuple[Path, str]:
        """Writes `data` to a fsynced temporary file beside `path`, hashing it on the way;
        returns the file and the content's ETag."""
        digest = hashlib.sha256()
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                chunks = [data] if isinstance(data, bytes) else iter(lambda: data.read(CHUNK), b"")
                for chunk in chunks:
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise StoreUnavailable(f"{self.uri}: {e}") from e
        return Path(tmp), digest.hexdigest()[:ETAG_CHARS]

    def put_if_absent(self, key: str, data: Data) -> str:
        path = self._path(key)
        tmp, etag = self._write_temp(path, data)
        try:
            with self._locked():
                try:
                    os.link(tmp, path)  # atomic, and fails if the name exists
                except FileExistsError:
                    raise PreconditionFailed(f"{self.uri}: {key} already exists") from None
                self._sync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return etag

    def put_if_match(self, key: str, data: Data, etag: str) -> str:
        path = self._path(key)
        tmp, new_etag = self._write_temp(path, data)
        try:
            with self._locked():
                try:
                    current = content_etag(path.read_bytes())
                except FileNotFoundError:
                    current = None
                if current != etag:
                    raise PreconditionFailed(f"{self.uri}: {key} has changed")
                os.replace(tmp, path)
                self._sync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return new_etag

    @staticmethod
    def _sync_dir(directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def list(self, prefix: str) -> Iterator[str]:
        keys = []
        base = prefix.rpartition("/")[0]
        for dirpath, dirnames, filenames in os.walk(self._path(base) if base else self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as e:
            raise StoreUnavailable(f"{self.uri}: {e}") from e
