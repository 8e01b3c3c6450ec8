"""The dashboard's files (web/, see web/README.md), public: `GET /` answers index.html, and
`/favicon.svg`, `/css/<name>`, `/js/<name>` and `/js/views/<name>` the files of those folders.
Only the dashboard's own kinds of file are served (HTML, CSS, JavaScript modules, SVG), each with
its exact Content-Type (module scripts are refused under any other type with `nosniff`); anything
else is a 404 like every unknown route.

Every reply of this blueprint carries the strict Content-Security-Policy the page is written for
(no inline script or style, nothing from another origin), `X-Content-Type-Options: nosniff` and
`Cache-Control: no-cache`: the files have no content hash in their names, so the browser
revalidates each one (a 304 by ETag) and never runs stale JavaScript after an upgrade.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from ..errors import NotFound
from .security import public

bp = Blueprint("dashboard", __name__)

CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
CONTENT_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                 ".svg": "image/svg+xml"}  # text/* are sent with "; charset=utf-8"
FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


def web_dir() -> Path:
    """Where the dashboard is: relayq/web/ inside an installed wheel (pyproject force-includes
    web/ there), else web/ of a source checkout."""
    for candidate in (Path(str(resources.files("relayq"))) / "web",
                      Path(__file__).resolve().parents[2] / "web"):
        if (candidate / "index.html").is_file():
            return candidate
    raise RuntimeError("relayq's dashboard files are missing (no web/index.html in the package "
                       "or the checkout)")


def _serve(folder: str, name: str) -> Response:
    """The file `name` of web/<folder>: 404 unless it is one of the dashboard's kinds."""
    suffix = Path(name).suffix
    directory = web_dir() / folder
    if not (FILE_NAME.fullmatch(name) and suffix in CONTENT_TYPES
            and (directory / name).is_file()):
        raise NotFound(f"no dashboard file {'/'.join(filter(None, (folder, name)))}")
    return send_from_directory(directory, name, mimetype=CONTENT_TYPES[suffix])


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/")
@public
def index() -> Response:
    return _serve("", "index.html")


@bp.get("/favicon.svg")
@public
def favicon() -> Response:
    return _serve("", "favicon.svg")


@bp.get("/css/<name>")
@public
def css(name: str) -> Response:
    return _serve("css", name)


@bp.get("/js/<name>")
@public
def js(name: str) -> Response:
    return _serve("js", name)


@bp.get("/js/views/<name>")
@public
def js_views(name: str) -> Response:
    return _serve("js/views", name)
