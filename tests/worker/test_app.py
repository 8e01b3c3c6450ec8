"""The task App: registering tasks (by name, with a default), what handlers raise (`Retry`,
`Fail`), `current_job()` outside a handler, and `load_app`, whose every refusal says what was
wrong with the `--app` it was given."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayq.errors import RelayqError
from relayq.worker import App, Fail, Retry, Task, current_job, load_app
from tests.support.workers import recording_app


def test_a_task_is_named_after_its_function_or_its_given_name() -> None:
    app = App("shop")

    @app.task
    def send_receipt(payload):
        return ("sent", payload)

    @app.task(name="emails.send")
    def send(payload):
        return payload

    assert isinstance(send_receipt, Task) and send_receipt.name == "send_receipt"
    assert send.name == "emails.send"
    assert app.tasks == {"send_receipt": send_receipt, "emails.send": send}
    assert app.handler_for("send_receipt") is send_receipt
    assert app.handler_for("emails.send") is send and app.handler_for("send") is None
    assert send_receipt(1) == ("sent", 1)  # still callable as the function it wraps
    assert not send.is_async


def test_the_default_task_takes_every_type_without_a_task() -> None:
    app = App()

    @app.task
    def known(payload):
        return payload

    assert app.handler_for("other") is None and app.handler_for(None) is None

    @app.task(name="fallback", default=True)
    async def fallback(payload):
        return payload

    assert app.handler_for("other") is fallback and app.handler_for(None) is fallback
    assert app.handler_for("known") is known
    assert fallback.is_async and repr(fallback) == "Task('fallback', queue='default')"


def test_two_tasks_of_one_name_are_refused() -> None:
    app = App()

    @app.task
    def same(payload):
        return 1

    with pytest.raises(RelayqError, match="two tasks named 'same'"):
        @app.task(name="same")
        def other(payload):
            return 2

    assert app.handler_for("same") is same


def test_retry_and_fail_carry_what_the_executor_records() -> None:
    assert str(Retry()) == "retry requested" and Retry().delay_ms is None
    later = Retry("rate limited", delay_ms=1500)
    assert str(later) == "rate limited" and later.delay_ms == 1500
    assert str(Fail("invalid order")) == "invalid order"
    assert not isinstance(Fail(), Retry) and not isinstance(Retry(), Fail)


def test_current_job_outside_a_handler_says_so() -> None:
    with pytest.raises(RuntimeError, match=r"current_job\(\) called outside a relayq task"):
        current_job()


@pytest.fixture
def app_module(tmp_path: Path) -> Iterator[str]:
    """An importable module of our own: `apps_under_test` with `app`, `not_an_app` and a
    `broken` module whose own import fails."""
    (tmp_path / "apps_under_test.py").write_text(
        "from relayq import App\napp = App('mine')\nnot_an_app = 42\n")
    (tmp_path / "apps_broken_under_test.py").write_text("import a_module_nobody_has\n")
    sys.path.insert(0, str(tmp_path))
    yield "apps_under_test"
    sys.path.remove(str(tmp_path))
    for name in ("apps_under_test", "apps_broken_under_test"):
        sys.modules.pop(name, None)


def test_load_app_returns_the_app_a_spec_names(app_module: str) -> None:
    assert load_app("tests.support.workers:recording_app") is recording_app
    loaded = load_app(f"{app_module}:app")
    assert isinstance(loaded, App) and loaded.name == "mine"


LOOKED_IN = " (looked in the working directory {cwd} and on PYTHONPATH)"


@pytest.mark.parametrize(("spec", "says"), [
    ("apps_under_test", "--app expects module:attr, got 'apps_under_test'"),
    ("apps_under_test:", "--app expects module:attr, got 'apps_under_test:'"),
    (":app", "--app expects module:attr, got ':app'"),
    ("no_such_module_here:app",
     "cannot import 'no_such_module_here' for --app: No module named 'no_such_module_here'"
     + LOOKED_IN),
    ("apps_broken_under_test:app", "cannot import 'apps_broken_under_test' for --app: "
                                   "No module named 'a_module_nobody_has'" + LOOKED_IN),
    ("apps_under_test:not_an_app", "apps_under_test:not_an_app is not a relayq App (got int)"),
    ("apps_under_test:missing", "'apps_under_test' has no attribute 'missing' for --app"),
])
def test_load_app_says_what_is_wrong_with_a_spec(app_module: str, spec: str, says: str) -> None:
    with pytest.raises(RelayqError) as caught:
        load_app(spec)
    assert str(caught.value) == says.format(cwd=os.getcwd())
