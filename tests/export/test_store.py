"""The object stores: the S3-compatible test server's own conditional behaviour first, then one
contract for every backend, and compare-and-set under races (threads and processes)."""

from __future__ import annotations

import io
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from relayq import InvalidArgument
from relayq.export import ObjectNotFound, ObjectStore, PreconditionFailed, open_store
from relayq.export.store import MemoryStore


def test_the_s3_server_answers_412_to_conditional_conflicts(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as absent:
        s3_client.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert absent.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    etag = s3_client.head_object(Bucket=bucket, Key="k")["ETag"]
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"three", IfMatch=etag)
    with pytest.raises(ClientError) as stale:
        s3_client.put_object(Bucket=bucket, Key="k", Body=b"four", IfMatch=etag)
    assert stale.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3_client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"three"


@pytest.fixture(params=["memory", "file", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "file":
        return open_store(f"file://{tmp_path}")
    return open_store(request.getfixturevalue("s3_uri"),
                      s3_endpoint_url=request.getfixturevalue("s3_endpoint"))


def test_put_if_absent_never_overwrites(any_store: ObjectStore) -> None:
    etag = any_store.put_if_absent("q/a.json", b"first")
    with pytest.raises(PreconditionFailed):
        any_store.put_if_absent("q/a.json", b"second")
    got = any_store.get("q/a.json")
    assert got.data == b"first" and got.etag == etag


def test_put_if_match_is_compare_and_set(any_store: ObjectStore) -> None:
    with pytest.raises(PreconditionFailed):
        any_store.put_if_match("m.json", b"x", '"nothing"')  # missing object
    first = any_store.put_if_absent("m.json", b"v1")
    second = any_store.put_if_match("m.json", b"v2", first)
    assert second != first
    with pytest.raises(PreconditionFailed):
        any_store.put_if_match("m.json", b"v3", first)  # stale
    assert any_store.get("m.json") == type(any_store.get("m.json"))(b"v2", second)


def test_list_download_delete(any_store: ObjectStore, tmp_path: Path) -> None:
    for key in ("q/snapshots/2026/b.gz", "q/snapshots/2026/a.gz", "q/manifest.json", "r/x"):
        any_store.put_if_absent(key, key.encode())
    assert list(any_store.list("q/snapshots/")) == ["q/snapshots/2026/a.gz",
                                                     "q/snapshots/2026/b.gz"]
    assert list(any_store.list("q/")) == ["q/manifest.json", "q/snapshots/2026/a.gz",
                                          "q/snapshots/2026/b.gz"]
    big = bytes(range(256)) * 20_000
    any_store.put_if_absent("big", big)
    with (tmp_path / "out").open("wb") as f:
        any_store.download("big", f)
    assert (tmp_path / "out").read_bytes() == big
    any_store.delete("r/x")
    any_store.delete("r/x")  # already gone: no error
    with pytest.raises(ObjectNotFound):
        any_store.get("r/x")
    with pytest.raises(ObjectNotFound), (tmp_path / "out2").open("wb") as f:
        any_store.download("r/x", f)


def test_racing_creates_have_exactly_one_winner(any_store: ObjectStore) -> None:
    wins, losses = [], []
    barrier = threading.Barrier(8)

    def create(i: int) -> None:
        barrier.wait()
        try:
            any_store.put_if_absent("race", str(i).encode())
            wins.append(i)
        except PreconditionFailed:
            losses.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert any_store.get("race").data == str(wins[0]).encode()


def _increment(uri: str, times: int) -> None:
    store = open_store(uri)
    for _ in range(times):
        while True:
            current = store.get("counter")
            try:
                store.put_if_match("counter", str(int(current.data) + 1).encode(), current.etag)
                break
            except PreconditionFailed:
                continue


def test_file_store_compare_and_set_holds_across_processes(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}"
    open_store(uri).put_if_absent("counter", b"0")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_increment, args=(uri, 40)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    assert open_store(uri).get("counter").data == b"160"


def test_file_store_never_shows_temporary_files(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.put_if_absent("q/x", b"1")
    (tmp_path / "q" / ".tmp-leftover").write_bytes(b"half")
    assert list(store.list("")) == ["q/x"]


@pytest.mark.parametrize("key", ["../etc/passwd", "q/../../x", "/etc/passwd", "q//x", "q/./x",
                                 "q/.tmp-x", "q\\..\\x", "", "k" * 1025])
def test_a_key_that_would_leave_the_store_is_refused_by_every_backend(
        any_store: ObjectStore, key: str) -> None:
    """(issue 20: `../../etc/passwd` as a key gave a traceback; on S3 it leaves the prefix)"""
    for attempt in (lambda: any_store.get(key), lambda: any_store.put_if_absent(key, b"x"),
                    lambda: any_store.put_if_match(key, b"x", "e"), lambda: any_store.delete(key),
                    lambda: any_store.download(key, io.BytesIO())):
        with pytest.raises(InvalidArgument, match="invalid object key"):
            attempt()


@pytest.mark.parametrize("uri", ["ftp://x", "file://host/dir", "s3://", "nonsense"])
def test_bad_store_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidArgument):
        open_store(uri)


def test_memory_stores_are_shared_by_name() -> None:
    assert open_store("memory://shared-a") is open_store("memory://shared-a")
    assert open_store("memory://shared-a") is not open_store("memory://shared-b")
