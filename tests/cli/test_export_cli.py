"""`relayq export` and `relayq restore` as an operator runs them (in-process through
`relayq.cli.main.main`, output captured)."""

from __future__ import annotations

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
