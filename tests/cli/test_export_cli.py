"""`relayq export` and `relayq restore` as an operator runs them (in-process through
`relayq.cli.main.main`, output captured)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from relayq import Queue
from relayq.cli import main as cli
from relayq.export import manifest as manifests
from relayq.export import open_store
from tests.support.export import populate, wipe
from tests.support.helpers import keyspace


@pytest.fixture(autouse=True)
def only_these_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser is built from COMMANDS; these tests need only export and restore (other
    subcommands are other branches' work)."""
    monkeypatch.setattr(cli, "COMMANDS", ["export", "restore"])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_then_restore_after_losing_redis(
        q: Queue, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(q, ready=5)
    uri = f"file://{tmp_path}/backups"
    code, out, err = run(capsys, "export", "--to", uri, "--queue", q.name, "--redis", redis_url,
                         "--keep", "3", "--json")
    assert code == 0, err
    exported = json.loads(out)
    assert exported["queue"] == q.name and exported["jobs"] == 10
    code, out, err = run(capsys, "export", "--to", uri, "--queue", q.name, "--redis", redis_url)
    assert code == 0 and "export " in err and "100%" in err  # the progress bar, on stderr
    assert out.splitlines()[0].split() == ["QUEUE", "JOBS", "BYTES", "SECONDS", "SNAPSHOT"]

    wipe(q)
    code, out, err = run(capsys, "restore", "--from", uri, "--queue", q.name, "--redis",
                         redis_url, "--dry-run", "--json")
    assert code == 0 and json.loads(out)["statuses"] == {"present": 0, "absent": 10}
    assert keyspace(q.redis, q.name) == {}
    code, out, err = run(capsys, "restore", "--from", uri, "--queue", q.name, "--redis",
                         redis_url, "--snapshot", exported["key"])
    assert code == 0, err
    assert "restore: ok" in out and "check " in err and "restore " in err
    assert q.stats().ready == 6  # 5 ready, and the running one came back ready


def test_export_all_queues(r: object, redis_url: str, queue_name: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    for suffix in ("a", "b"):
        Queue(f"{queue_name}-{suffix}", r).enqueue({"x": suffix})
    uri = f"file://{tmp_path}/all"
    code, out, err = run(capsys, "export", "--to", uri, "--all", "--redis", redis_url, "--json")
    assert code == 0, err
    exported = {json.loads(line)["queue"] for line in out.splitlines()}
    assert {f"{queue_name}-a", f"{queue_name}-b"} <= exported
    store = open_store(uri)
    assert manifests.load(store, f"{queue_name}-a")[0].sequence == 1


def test_errors_are_one_line_and_change_nothing(
        q: Queue, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"file://{tmp_path}/errs"
    q.enqueue({"x": 1})
    run(capsys, "export", "--to", uri, "--queue", q.name, "--redis", redis_url, "--json")
    current, _ = manifests.load(open_store(uri), q.name)
    path = tmp_path / "errs" / current.latest
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    before = keyspace(q.redis, q.name)
    code, out, err = run(capsys, "restore", "--from", uri, "--queue", q.name, "--redis",
                         redis_url)
    assert code == 1 and "snapshot is" in err and len(err.strip().splitlines()) == 1
    assert keyspace(q.redis, q.name) == before
    code, _, err = run(capsys, "restore", "--from", uri, "--queue", "nothing-here", "--redis",
                       redis_url)
    assert code == 1 and "no snapshot of queue nothing-here" in err
    code, _, err = run(capsys, "export", "--to", "ftp://x", "--all", "--redis", redis_url)
    assert code == 2 and "unsupported store" in err
    code, _, err = run(capsys, "export", "--to", uri, "--all", "--every", "soon", "--redis",
                       redis_url)
    assert code == 2 and "invalid duration" in err
    with pytest.raises(SystemExit) as usage:
        cli.main(["export", "--to", uri, "--queue", q.name, "--all"])
    assert usage.value.code == 2


def endpoint_args(store_uri: str, request: pytest.FixtureRequest) -> list[str]:
    if store_uri.startswith("s3:"):
        return ["--s3-endpoint-url", request.getfixturevalue("s3_endpoint")]
    return []


def test_a_key_outside_the_store_is_a_one_line_usage_error_and_is_never_read(
        q: Queue, redis_url: str, store_uri: str, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A good snapshot lies where `..` would lead (beside the store's root, or outside the S3
    prefix): had it been read, the restore would have written its job."""
    q.enqueue({"x": 1})
    extra = endpoint_args(store_uri, request)
    code, out, err = run(capsys, "export", "--to", store_uri, "--queue", q.name, "--redis",
                         redis_url, "--json", *extra)
    assert code == 0, err
    store = open_store(store_uri, s3_endpoint_url=(extra or [None])[-1])
    data = store.get(json.loads(out)["key"]).data
    outside = open_store(store_uri.rpartition("/")[0], s3_endpoint_url=(extra or [None])[-1])
    outside.put_if_absent("outside.ndjson.gz", data)
    wipe(q)
    for key in ("../outside.ndjson.gz", "../../etc/passwd",
                f"{q.name}/snapshots/../../../outside.ndjson.gz", "/etc/passwd"):
        code, out, err = run(capsys, "restore", "--from", store_uri, "--queue", q.name,
                             "--redis", redis_url, "--snapshot", key, *extra)
        assert code == 2 and "invalid" in err and len(err.strip().splitlines()) == 1, err
    assert keyspace(q.redis, q.name) == {}


def test_a_tampered_manifest_or_header_is_a_one_line_error(
        q: Queue, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"file://{tmp_path}/store"
    q.enqueue({"x": 1})
    run(capsys, "export", "--to", uri, "--queue", q.name, "--redis", redis_url, "--json")
    store = open_store(uri)
    manifest_path = tmp_path / "store" / manifests.manifest_key(q.name)
    good_manifest = manifest_path.read_text()
    current = json.loads(good_manifest)
    snapshot = store.get(current["latest"]).data
    header, *jobs = gzip.decompress(snapshot).splitlines(keepends=True)

    def restore() -> tuple[int, str]:
        code, _, err = run(capsys, "restore", "--from", uri, "--queue", q.name, "--redis",
                           redis_url)
        assert len(err.strip().splitlines()) == 1, err
        return code, err

    wipe(q)
    for entry_change in ({"key": "../../etc/passwd"}, {"sequence": "7x"}, {"jobs": -1}):
        entry = {**current["snapshots"][-1], **entry_change}
        manifest_path.write_text(json.dumps({**current, "snapshots": [entry],
                                             "latest": entry["key"]}))
        code, err = restore()
        assert code == 1 and "manifest of queue" in err and "unreadable" in err
    manifest_path.write_text(json.dumps({**current, "sequence": "many"}))
    assert restore() == (1, f"relayq restore: manifest of queue {q.name} is unreadable: "
                            "sequence must be a non-negative integer, got 'many'\n")

    def publish(lines: list[bytes]) -> None:
        data = gzip.compress(b"".join(lines))
        entry = {**current["snapshots"][-1], "bytes": len(data),
                 "sha256": hashlib.sha256(data).hexdigest()}
        manifest_path.write_text(json.dumps({**current, "snapshots": [entry]}))
        (tmp_path / "store" / current["latest"]).write_bytes(data)

    publish([json.dumps({**json.loads(header), "sequence": "abc"}).encode() + b"\n", *jobs])
    code, err = restore()
    assert code == 1 and "snapshot header: sequence must be an integer" in err
    deep = json.dumps({**json.loads(jobs[0]), "payload": "@"}).replace(
        '"@"', "[" * 995 + "]" * 995)
    publish([header, deep.encode() + b"\n"])
    code, err = restore()
    assert code == 1 and "line 2:" in err and "nested" in err
    assert keyspace(q.redis, q.name) == {}


def test_max_payload_bytes_lets_a_queue_with_larger_payloads_be_restored(
        r: object, redis_url: str, queue_name: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    big = Queue(queue_name, r, max_payload_bytes=4 * 2**20)
    big.configure(max_payload_bytes=4 * 2**20)
    big.enqueue("x" * (3 * 2**20))
    uri = f"file://{tmp_path}/big"
    assert run(capsys, "export", "--to", uri, "--queue", queue_name, "--redis", redis_url,
               "--json")[0] == 0
    wipe(big)
    big.configure(max_payload_bytes=4 * 2**20)
    argv = ["restore", "--from", uri, "--queue", queue_name, "--redis", redis_url, "--json"]
    code, _, err = run(capsys, *argv)
    assert code == 1 and "line 2 is longer than 2621440 bytes" in err  # the default: 1 MiB
    code, out, err = run(capsys, *argv, "--max-payload-bytes", str(4 * 2**20))
    assert code == 0 and json.loads(out)["statuses"] == {"ok": 1}, err
    with pytest.raises(SystemExit) as usage:  # refused by argparse, as every range check is
        run(capsys, *argv, "--max-payload-bytes", "0")
    assert usage.value.code == 2
