"""The code -> HTTP status table of the server and the code -> exception table of the core agree:
every error code relayq can raise is answered with a status chosen for it, and an error reply's
code comes back in the SDK as the exception that has that code."""

from __future__ import annotations

import pytest

from relayq import errors
from relayq.api.statuses import STATUSES, headers_of, status_of
from relayq.export import manifest, snapshot, store


def all_codes() -> set[str]:
    classes = [errors.RelayqError, store.PreconditionFailed, store.StoreUnavailable,
               manifest.InvalidManifest, snapshot.InvalidSnapshot]
    return set(errors.ERRORS) | {cls.code for cls in classes}


def test_every_error_code_has_a_status_and_no_status_is_for_a_code_that_is_gone() -> None:
    assert set(STATUSES) == all_codes()


@pytest.mark.parametrize("code", sorted(errors.ERRORS))
def test_a_code_comes_back_as_its_own_class(code: str) -> None:
    error = errors.error_for(code, "why")
    assert type(error) is errors.ERRORS[code] and error.code == code and error.message == "why"


def test_not_found_is_a_job_not_found_where_the_reply_is_about_a_job() -> None:
    assert type(errors.error_for("not_found", about_job=True)) is errors.JobNotFound
    assert type(errors.error_for("not_found")) is errors.NotFound


def test_an_unknown_code_keeps_its_code() -> None:
    error = errors.error_for("from_a_newer_server", "new")
    assert type(error) is errors.RelayqError and error.code == "from_a_newer_server"
    assert status_of(error) == 500


def test_statuses_and_headers() -> None:
    assert status_of(errors.PayloadTooLarge("big")) == 413
    assert status_of(errors.InvalidPayload("bad")) == 400
    assert status_of(errors.JobNotFound("gone")) == 404
    busy = errors.RedisBusy("OOM")
    assert (status_of(busy), headers_of(busy)) == (503, {"Retry-After": "1"})
    assert headers_of(errors.TooManyRequests(retry_after_s=7)) == {"Retry-After": "7"}
    assert headers_of(errors.Unauthorized()) == {"WWW-Authenticate": 'Bearer realm="relayq"'}
