"""/api/openapi.json stays true: it is a valid OpenAPI 3.1 document, it names exactly the routes
the app serves, and schemathesis, generating valid and invalid requests for every operation,
finds no 5xx, no reply outside the document and no error reply that wrote anything (the
keyspace of the queue the path names, the queue list and the key store compared byte for byte).
(Every reply of the other API tests is checked
against the document too, by tests/support/http.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from relayq import limits
from relayq.api.app import create_app
from relayq.api.openapi import DOCUMENT
from relayq.api.services import ServerConfig
from tests.support.helpers import writable

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, negative_data_rejection]


@pytest.fixture(scope="session")
def api_schema(server) -> Any:
    return schemathesis.openapi.from_url(server.url + "/api/openapi.json")


def test_the_document_is_valid_openapi_3_1(api_schema: Any) -> None:
    api_schema.validate()


def test_the_document_names_exactly_the_routes_served(checker, redis_url: str) -> None:
    app = create_app(ServerConfig(redis_url=redis_url))
    served = {(method, re.sub(r"<([^>]+)>", r"{\1}", rule.rule))
              for rule in app.url_map.iter_rules()
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    documented = {(m.upper(), path) for path, ops in checker.document["paths"].items()
                  for m in ops}
    assert served == documented


def _has_input(operation: dict[str, Any]) -> bool:
    """Whether anything of a request to it can be made invalid (parameters, body, key)."""
    return bool(operation.get("parameters") or operation.get("requestBody")
                or operation.get("security", DOCUMENT["security"]))


# Every operation but the event stream (it never ends; its own tests read it), with valid
# requests and, where there is input to get wrong, invalid ones.
OPERATIONS = [(method.upper(), path, mode) for path, ops in DOCUMENT["paths"].items()
              for method, operation in ops.items() if path != "/api/events"
              for mode in [GenerationMode.POSITIVE] + (
                  [GenerationMode.NEGATIVE] if _has_input(operation) else [])]


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_generated_requests_get_no_5xx_documented_replies_and_no_writes_on_error(
        api_schema: Any, server, admin_key: str, r: Any, method: str, path: str,
        mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=8, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def generated(case: Any) -> None:
        if path.endswith("/claim") and isinstance(case.body, dict) and isinstance(
                case.body.get("wait_ms"), int) and case.body["wait_ms"] > 0:
            case.body["wait_ms"] = min(case.body["wait_ms"], 50)  # keep the run short
        before = writable(r, case.formatted_path)
        response = case.call_and_validate(base_url=server.url, checks=CHECKS, timeout=30,
                                          headers={"Authorization": f"Bearer {admin_key}"})
        if response.status_code >= 400:  # an error writes nothing
            assert writable(r, case.formatted_path) == before, (case.formatted_path, response)

    generated()


# Each bound of the document and the constant of relayq.limits it states.
BOUNDS = [
    (("NewJob", "priority", "minimum"), limits.MIN_PRIORITY),
    (("NewJob", "priority", "maximum"), limits.MAX_PRIORITY),
    (("Job", "priority", "maximum"), limits.MAX_PRIORITY),
    (("NewJob", "type", "maxLength"), limits.MAX_TYPE_BYTES),
    (("NewJob", "delay_ms", "maximum"), limits.MAX_DURATION_MS),
    (("NewJob", "max_attempts", "maximum"), limits.MAX_ATTEMPTS),
    (("NewJob", "idempotency_key", "maxLength"), limits.MAX_IDEMPOTENCY_KEY_BYTES),
    (("NewJob", "timeout_ms", "maximum"), limits.MAX_DURATION_MS),
    (("NewJob", "backoff_base_ms", "maximum"), limits.MAX_DURATION_MS),
    (("NewJob", "backoff_cap_ms", "maximum"), limits.MAX_DURATION_MS),
    (("Batch", "jobs", "maxItems"), limits.BATCH_LIMIT),
    (("Claim", "worker_id", "maxLength"), limits.MAX_WORKER_ID_BYTES),
    (("Claim", "count", "maximum"), limits.MAX_HTTP_CLAIM_COUNT),
    (("Claim", "wait_ms", "maximum"), limits.MAX_WAIT_MS),
    (("Claim", "visibility_ms", "maximum"), limits.MAX_VISIBILITY_MS),
    (("Heartbeat", "visibility_ms", "maximum"), limits.MAX_VISIBILITY_MS),
    (("Heartbeat", "lease", "maxLength"), limits.MAX_LEASE_BYTES),
    (("Nack", "delay_ms", "maximum"), limits.MAX_DURATION_MS),
    (("RateLimit", "rate", "minimum"), limits.MIN_RATE),
    (("RateLimit", "rate", "maximum"), limits.MAX_RATE),
    (("RateLimit", "burst", "maximum"), limits.MAX_BURST),
    (("NewKey", "name", "maxLength"), limits.MAX_KEY_NAME_BYTES),
    (("Job", "history", "maxItems"), limits.HISTORY_LIMIT),
]


@pytest.mark.parametrize(("where", "limit"), BOUNDS, ids=lambda v: ".".join(map(str, v))
                         if isinstance(v, tuple) else None)
def test_each_bound_is_the_limit_it_documents(where: tuple[str, str, str], limit: Any) -> None:
    schema, field, bound = where
    assert DOCUMENT["components"]["schemas"][schema]["properties"][field][bound] == limit


def _bounds(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every numeric bound in the document, with where it is."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("minimum", "maximum", "maxLength", "maxItems") and value not in (0, 1):
                found.append((f"{path}/{key}", value))
            found += _bounds(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _bounds(value, f"{path}/{i}")
    return found


def test_every_bound_of_the_document_is_a_limit() -> None:
    """A bound written into the document by hand is a copy that can drift from the code."""
    values = {v for v in vars(limits).values()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    strays = [(where, value) for where, value in _bounds(DOCUMENT) if value not in values]
    assert not strays
    assert len(_bounds(DOCUMENT)) >= len(BOUNDS)  # the walk found the bounds at all
    queue = DOCUMENT["components"]["parameters"]["queue"]["schema"]["pattern"]
    assert queue == f"^{limits.QUEUE_NAME_PATTERN}$"
    assert DOCUMENT["components"]["schemas"]["Job"]["properties"]["id"]["pattern"] == \
        f"^{limits.JOB_ID_PATTERN}$"
