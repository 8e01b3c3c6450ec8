"""API keys over HTTP: create (the secret is in this one reply only), list, revoke. A key may
only create or revoke keys whose scopes it holds itself, and the last admin key cannot be revoked
(relayq.auth has the rule)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..auth import check_scopes
from ..limits import MAX_KEY_NAME_BYTES
from .body import json_body, required_str
from .security import current_key, requires
from .services import services

bp = Blueprint("keys", __name__, url_prefix="/api/keys")


@bp.post("")
@requires("keys:admin")
def create() -> Any:
    body = json_body(("name", "scopes"), ("name", "scopes"))
    name = required_str(body, "name", MAX_KEY_NAME_BYTES)
    scopes = check_scopes(body["scopes"])
    record, key = services().api_keys.create(name, scopes, by=current_key())
    return {**record.to_dict(), "key": key}, 201


@bp.get("")
@requires("keys:admin")
def list_keys() -> Any:
    return {"keys": [k.to_dict() for k in services().api_keys.list()]}


@bp.delete("/<key_id>")
@requires("keys:admin")
def revoke(key_id: str) -> Any:
    services().api_keys.revoke(key_id, by=current_key(), keep_an_admin=True)
    return {"id": key_id, "revoked": True}
