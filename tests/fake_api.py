"""A STAND-IN for relayq-server, only for the dashboard tests, until the real server lands.

It serves web/ under the strict Content-Security-Policy the real server is to send
(`default-src 'self'`) and implements the routes the dashboard calls, as web/README.md specifies
them, over the real `Queue` API and a real Redis. It is deliberately small: no scopes, one key.
When relayq-server exists, the dashboard tests should run against it instead.

Test hooks: `sessions=True` adds the optional POST/DELETE /api/session cookie route;
`drop_streams()` ends every open event stream (the dashboard must reconnect by itself);
`event_requests` records how each GET /api/events authenticated.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

import relayq
from relayq.errors import RelayqError
from relayq.job import parse_job_id
from relayq.queue import stats_many
from relayq.redis_process import free_port

WEB = Path(__file__).resolve().parent.parent / "web"
CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
SESSION_COOKIE = "relayq_session"


class FakeApi:
    def __init__(self, redis_url: str, *, key: str = "test-key", sessions: bool = False,
                 stats_interval: float = 0.3) -> None:
        self.redis = relayq.connect(redis_url)
        self.redis_url = redis_url
        self.key = key
        self.sessions = sessions
        self.stats_interval = stats_interval
        self.generation = 0
        self.stopping = threading.Event()
        self.event_requests: list[dict[str, Any]] = []
        self.app = self._build()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakeapi",
                                        daemon=True)

    def start(self) -> FakeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self.redis.close()

    def drop_streams(self) -> None:
        self.generation += 1

    # -- the app ------------------------------------------------------------------------

    def _authorized(self) -> bool:
        if request.headers.get("Authorization") == f"Bearer {self.key}":
            return True
        if request.path == "/api/events":
            if request.args.get("access_token") == self.key:
                return True
            return self.sessions and request.cookies.get(SESSION_COOKIE) == "s-" + self.key
        return False

    def _queue(self, name: str) -> relayq.Queue[Any]:
        return relayq.Queue(name, self.redis)

    def _build(self) -> Flask:
        app = Flask("fake_api", static_folder=None)
        fake = self

        @app.before_request
        def auth() -> Any:
            if request.path.startswith("/api/") and not fake._authorized():
                return error(401, "unauthorized", "missing or invalid API key")
            return None

        @app.after_request
        def headers(response: Response) -> Response:
            response.headers["Content-Security-Policy"] = CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response

        @app.errorhandler(RelayqError)
        def relayq_error(e: RelayqError) -> Any:
            return error(e.http_status, e.code, e.message)

        @app.errorhandler(HTTPException)
        def http_error(e: HTTPException) -> Any:
            return error(e.code or 500, "http_error", e.description or "")

        @app.get("/")
        def index() -> Any:
            return send_from_directory(WEB, "index.html")

        @app.get("/<path:path>")
        def static_file(path: str) -> Any:
            return send_from_directory(WEB, path)

        @app.route("/api/session", methods=["POST", "DELETE"])
        def session() -> Any:
            if not fake.sessions:
                abort(404)
            response = Response(status=204)
            if request.method == "POST":
                response.set_cookie(SESSION_COOKIE, "s-" + fake.key, httponly=True,
                                    samesite="Strict", path="/api/events")
            else:
                response.delete_cookie(SESSION_COOKIE, path="/api/events")
            return response

        @app.get("/api/queues")
        def queues() -> Any:
            names = relayq.list_queues(fake.redis)
            return {"queues": [s.to_dict() for s in stats_many(fake.redis, names)]}

        @app.get("/api/queues/<q>")
        def queue_stats(q: str) -> Any:
            return fake._queue(q).stats().to_dict()

        @app.post("/api/queues/<q>/<action>")
        def pause(q: str, action: str) -> Any:
            if action not in ("pause", "resume"):
                abort(404)
            getattr(fake._queue(q), action)()
            return {}

        @app.route("/api/queues/<q>/rate-limit", methods=["PUT", "DELETE"])
        def rate_limit(q: str) -> Any:
            if request.method == "DELETE":
                fake._queue(q).clear_rate_limit()
            else:
                body = request.get_json()
                fake._queue(q).set_rate_limit(body["rate"], body.get("burst"))
            return {}

        @app.post("/api/queues/<q>/jobs")
        def enqueue(q: str) -> Any:
            body = dict(request.get_json())
            result = fake._queue(q).enqueue(body.pop("payload"), **body)
            return jsonify(result._asdict()), 200 if result.duplicate else 201

        @app.get("/api/queues/<q>/dead")
        def dead(q: str) -> Any:
            jobs, cursor = fake._queue(q).dead(int(request.args.get("limit", 50)),
                                               request.args.get("cursor"))
            return {"jobs": [j.to_dict() for j in jobs], "next_cursor": cursor}

        @app.post("/api/queues/<q>/dead/requeue")
        def requeue_all(q: str) -> Any:
            return {"requeued": fake._queue(q).requeue_all_dead()}

        @app.post("/api/queues/<q>/dead/<job_id>/requeue")
        def requeue_one(q: str, job_id: str) -> Any:
            return {"requeued": fake._queue(q).requeue_dead(job_id)}

        @app.delete("/api/queues/<q>/dead")
        def purge_all(q: str) -> Any:
            return {"purged": fake._queue(q).purge_all_dead()}

        @app.delete("/api/queues/<q>/dead/<job_id>")
        def purge_one(q: str, job_id: str) -> Any:
            return {"purged": fake._queue(q).purge_dead(job_id)}

        @app.route("/api/jobs/<job_id>", methods=["GET", "DELETE"])
        def job(job_id: str) -> Any:
            q = fake._queue(parse_job_id(job_id)[0])
            if request.method == "DELETE":
                q.cancel(job_id)
                return {"state": "cancelled"}
            return q.get(job_id).to_dict()

        @app.get("/api/events")
        def events() -> Any:
            fake.event_requests.append({"query": dict(request.args),
                                        "cookie": SESSION_COOKIE in request.cookies})
            return Response(fake._stream(), mimetype="text/event-stream",
                            headers={"Cache-Control": "no-store"})

        def error(status: int, code: str, message: str) -> Any:
            return jsonify({"error": {"code": code, "message": message}}), status

        return app

    def _stream(self) -> Iterator[str]:
        """`stats` snapshots every stats_interval, and each job state change from the
        scripts' Pub/Sub channel as a `job` event with full job ids."""
        generation = self.generation
        client = relayq.connect(self.redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe("relayq:{*}:events")
        next_stats = 0.0
        try:
            yield "retry: 500\n\n"
            while not self.stopping.is_set() and generation == self.generation:
                if time.monotonic() >= next_stats:
                    names = relayq.list_queues(client)
                    snapshot = {"queues": [s.to_dict() for s in stats_many(client, names)]}
                    yield f"event: stats\ndata: {json.dumps(snapshot)}\n\n"
                    next_stats = time.monotonic() + self.stats_interval
                message = pubsub.get_message(timeout=0.05)
                if message:
                    change = json.loads(message["data"])
                    change["ids"] = [f"{change['queue']}.{i}" for i in change["ids"]]
                    yield f"event: job\ndata: {json.dumps(change)}\n\n"
        finally:
            pubsub.close()
            client.close()
