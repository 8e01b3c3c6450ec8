"""relayq-server serves the dashboard (web/) as web/README.md asks: every file of the page at its
path with its exact Content-Type, the strict CSP, nosniff and no-cache, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayq.api.dashboard import CSP
from tests.support.http import Api
from tests.support.server import ROOT

WEB = ROOT / "web"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml; charset=utf-8"}
PAGE_FILES = sorted(p for p in WEB.rglob("*") if p.suffix in TYPES)


def url_of(path: Path) -> str:
    relative = path.relative_to(WEB).as_posix()
    return "/" if relative == "index.html" else "/" + relative


def test_the_page_is_all_there() -> None:
    assert {url_of(p) for p in PAGE_FILES} >= {"/", "/css/app.css", "/js/main.js",
                                               "/js/views/queue.js", "/favicon.svg"}


@pytest.mark.parametrize("path", PAGE_FILES, ids=url_of)
def test_every_file_is_served_with_its_type_and_the_strict_headers(api: Api,
                                                                   path: Path) -> None:
    reply = api.call("GET", url_of(path), key=None)
    assert reply.status == 200
    assert reply.body == path.read_bytes()
    assert reply.headers["Content-Type"] == TYPES[path.suffix]
    assert reply.headers["Content-Security-Policy"] == CSP
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Cache-Control"] == "no-cache"


def test_an_unchanged_file_is_revalidated_not_resent(api: Api) -> None:
    first = api.call("GET", "/js/main.js", key=None)
    again = api.call("GET", "/js/main.js", key=None,
                     headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and again.body is None


@pytest.mark.parametrize("path", [
    "/README.md", "/index.html.bak", "/css/missing.css", "/css/app.js", "/js/README.md",
    "/js/.hidden.js", "/js/..%2F..%2Fpyproject.toml", "/js/views/..%2Fmain.js",
    "/js/%2e%2e", "/lua/claim.lua", "/web/index.html", "/js/views/x/y.js",
])
def test_anything_else_is_a_404(api: Api, path: str) -> None:
    reply = api.call("GET", path, key=None)
    assert (reply.status, reply.code) == (404, "not_found")
