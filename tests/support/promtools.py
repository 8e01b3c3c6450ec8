"""Helpers for the metrics and deployment tests: parse an exposition, run `promtool`, run a real
Prometheus server (Debian's `prometheus` package, installed by .ci/run) on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from relayq.tools.redis_process import free_port
from tests.support.helpers import wait_until


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not on PATH: apt-get install prometheus (.ci/run does)"
    return path


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition: (name, labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def exported_names(text: str) -> set[str]:
    """Every series name an exposition can produce, including families that have no sample
    yet (a labelled counter before its first event): counters give `_total`, histograms their
    `_bucket`, `_sum` and `_count`."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


class Prometheus:
    """A running Prometheus: `query(expr)` answers the instant vector's result list."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("/api/v1/query", query=expr)["result"]


@contextmanager
def prometheus_server(config: str, directory: Path) -> Iterator[Prometheus]:
    """Starts `prometheus` with `config` (YAML text) on a free loopback port, waits until it is
    ready, and stops it afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "prometheus.yml"
    config_file.write_text(config)
    port = free_port()
    log = (directory / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [binary("prometheus"), f"--config.file={config_file}",
         f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.path={directory / 'data'}"],
        stdout=log, stderr=subprocess.STDOUT)
    server = Prometheus(port)

    def ready() -> bool:
        assert proc.poll() is None, (directory / "prometheus.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(ready, timeout=30, interval=0.1, message="prometheus to be ready")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def http_get(url: str, timeout: float = 2.0) -> str | None:
    """The body of a GET, or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode()
    except OSError:
        return None


def wait_for_sample(url: str, name: str, value: float, timeout: float = 20.0,
                    **labels: str) -> str:
    """Polls a /metrics URL until `name{labels}` reads `value`; returns that exposition."""
    def check() -> str | None:
        text = http_get(url)
        return text if text and sample(text, name, **labels) == value else None

    return wait_until(check, timeout=timeout, interval=0.1,
                      message=f"{name}{labels} == {value} at {url}")
