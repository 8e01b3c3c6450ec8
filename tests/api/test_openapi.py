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
