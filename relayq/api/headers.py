"""Security headers on the API's own replies: everything under /api/ (JSON, the event stream,
204s) and the JSON of /healthz and /readyz. Other routes (a dashboard, /metrics) set their own.

- `X-Content-Type-Options: nosniff`: a browser never reads a reply as anything but its type;
- `Cache-Control: no-store` (unless the view chose, e.g. the event stream's no-cache): replies
  carry jobs, payloads and, once, a new API key; no cache may keep them;
- `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`: never framed, no URL leaks on.
"""

from __future__ import annotations

from flask import request
from flask.wrappers import Response

API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def security_headers(response: Response) -> Response:
    """after_request hook: the headers above on API replies, without overriding a view's."""
    if request.path.startswith("/api/") or response.mimetype == "application/json":
        for name, value in API_HEADERS.items():
            response.headers.setdefault(name, value)
    return response
