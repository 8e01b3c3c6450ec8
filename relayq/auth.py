"""The API key store: scoped keys kept in Redis as hashes only, used by the HTTP server (to
authenticate requests and serve /api/keys) and by `relayq keys` (straight on Redis, for bootstrap).

A key reads ``rq_<id>_<secret>``: `id` is 16 hex digits that name the key (safe to log and to
show in lists), `secret` is 256 random bits. Redis keeps one HASH field per key in
``relayq:apikeys``: id -> JSON ``{"name", "scopes", "sha256", "created_at"}``, where `sha256` is
the digest of the secret; the secret itself is never stored and is shown only once, at creation.
Lookup is O(1) (HGET by id) and the digests are compared with `hmac.compare_digest`, also when
the id is unknown (against a digest no secret has), so that a check takes the same time whether
or not the id exists. The record is read on every request (only its parsed form is kept, by
its text: `verify`), so a revoked key is refused by the very next request (the server batches
lookups of concurrent requests into one HMGET, each sent after its request arrived:
relayq.api.group_commit).

Who may manage keys, through the API (one rule, `check_manage`, for creating and revoking): a key
may only create or revoke keys whose every scope it holds itself (`admin` holds them all), so a
`keys:admin` key manages `keys:admin` keys and nothing stronger; and the API never revokes the
last key holding `admin` (409 `last_admin_key`), so no request can lock every administrator out.
An operator working straight on Redis (`relayq keys --redis`) is bound by neither: whoever holds
Redis can always make a new admin key.

Sessions stand in for a key where a client cannot send a header (the dashboard's EventSource):
`open_session` makes a random token and keeps only its SHA-256 in ``relayq:session:<sha256>``
(value: the key's id, with a TTL); `authenticate_session` finds the key again and checks that it
still exists, so revoking the key ends its sessions too; `close_session` ends one at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .connection import RedisClient, redis_errors
from .errors import Forbidden, InvalidArgument, LastAdminKey, NotFound, Unauthorized
from .keys import API_KEYS, session
from .limits import MAX_KEY_NAME_BYTES
from .options import check_str
from .rfc3339 import format_ms

ADMIN = "admin"
SCOPES = ("jobs:write", "jobs:read", "jobs:work", "queues:admin", "keys:admin", ADMIN)
KEY_FORMAT = re.compile(r"rq_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
KEY_ID = re.compile(r"[0-9a-f]{16}")
SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
NO_DIGEST = "0" * 64  # compared against when the id is unknown (no secret hashes to it)
PARSED_KEYS = 1024  # stored records a KeyStore keeps parsed (verify): bounded memory


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: int  # epoch ms

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes),
                "created_at": format_ms(self.created_at)}


def check_scopes(scopes: Any) -> tuple[str, ...]:
    """The scopes, checked: a non-empty list of known scope names (duplicates dropped)."""
    if isinstance(scopes, str) or not isinstance(scopes, Iterable) or isinstance(scopes, dict):
        raise InvalidArgument(f"scopes must be a list of: {', '.join(SCOPES)}")
    names = list(scopes)
    unknown = [s for s in names if s not in SCOPES]
    if unknown or not names:
        shown = ", ".join(map(repr, unknown)) if unknown else "none given"
        raise InvalidArgument(f"bad scopes ({shown}): use some of {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(names))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Creates, lists, revokes and checks API keys in `relayq:apikeys`."""

    def __init__(self, redis: RedisClient,
                 lookup: Callable[[str], str | None] | None = None) -> None:
        """`lookup`: how a key's stored record is read by id (default: one HGET; the server
        shares the round trip with other requests: relayq.api.group_commit)."""
        self.redis = redis
        self._lookup = lookup or self._hget
        self._parsed: dict[str, tuple[str, str, ApiKey]] = {}

    def create(self, name: str, scopes: Iterable[str], *,
               by: ApiKey | None = None) -> tuple[ApiKey, str]:
        """A new key: its record and the full key string (shown to the user once). `by`: the
        key asking, over the API, which must hold every scope it grants (`check_manage`)."""
        record, full, stored = self._new(name, scopes)
        if by is not None:
            check_manage(by, record.scopes, "create")
        with redis_errors():
            self.redis.hset(API_KEYS, record.id, stored)
        return record, full

    def create_first(self, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str] | None:
        """Creates a key only if the store holds none (atomically, so that servers starting
        together make one bootstrap key between them); None when keys already exist."""
        record, full, stored = self._new(name, scopes)

        def create_if_empty(pipe: Any) -> bool:
            if pipe.hlen(API_KEYS):
                return False
            pipe.multi()
            pipe.hset(API_KEYS, record.id, stored)
            return True

        with redis_errors():
            created = self.redis.transaction(create_if_empty, API_KEYS, value_from_callable=True)
        return (record, full) if created else None

    @staticmethod
    def _new(name: str, scopes: Iterable[str]) -> tuple[ApiKey, str, str]:
        check_str(name, "name", MAX_KEY_NAME_BYTES)
        record = ApiKey(secrets.token_hex(8), name, check_scopes(scopes),
                        int(time.time() * 1000))
        secret = secrets.token_urlsafe(32)
        stored = json.dumps({"name": record.name, "scopes": list(record.scopes),
                             "sha256": _digest(secret), "created_at": record.created_at})
        return record, f"rq_{record.id}_{secret}", stored

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (never with secrets: the store has none)."""
        with redis_errors():
            stored = self.redis.hgetall(API_KEYS)
        keys = [self._record(key_id, text) for key_id, text in stored.items()]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    def revoke(self, key_id: str, *, by: ApiKey | None = None,
               keep_an_admin: bool = False) -> None:
        """Deletes a key; requests using it (and its sessions) are refused from now on.
        NotFound if unknown. `by`: the key asking, over the API, which must hold every scope of
        the key it revokes (`check_manage`); `keep_an_admin`: refuse (LastAdminKey) to delete
        the last key holding `admin`. Checked and deleted in one transaction, so two requests
        revoking the last two admin keys at once cannot both succeed."""
        if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
            raise NotFound(f"no API key {key_id!r}")

        def check_and_delete(pipe: Any) -> None:
            text = pipe.hget(API_KEYS, key_id)
            if text is None:
                raise NotFound(f"no API key {key_id!r}")
            target = self._record(key_id, text)
            if by is not None:
                check_manage(by, target.scopes, "revoke")
            if keep_an_admin and ADMIN in target.scopes and not any(
                    ADMIN in self._record(other, value).scopes
                    for other, value in pipe.hgetall(API_KEYS).items() if other != key_id):
                raise LastAdminKey(f"key {key_id} is the last key with the admin scope: create "
                                   "another admin key before revoking it")
            pipe.multi()
            pipe.hdel(API_KEYS, key_id)

        with redis_errors():
            self.redis.transaction(check_and_delete, API_KEYS)

    def authenticate(self, key: str) -> ApiKey:
        """The stored key that `key` (the full ``rq_<id>_<secret>`` string) proves; Unauthorized
        when it is malformed, unknown or revoked, or its secret does not match."""
        key_id, secret = parse_key(key)
        return self.verify(key_id, secret, self._lookup(key_id))

    def verify(self, key_id: str, secret: str, text: str | None) -> ApiKey:
        """The key whose stored record (`text`, just read; None: there is none) `secret`
        proves; Unauthorized otherwise. The parsed record is remembered by its text (`_parsed`),
        so the next request of the same key skips the JSON; the record is still read from Redis
        every time and the secret's digest compared every time, so a revoked key is refused at
        once."""
        parsed = self._parsed.get(key_id) if text is not None else None
        if parsed is not None and parsed[0] == text:
            if not hmac.compare_digest(parsed[1], _digest(secret)):
                raise Unauthorized("unknown or revoked API key")
            return parsed[2]
        # The same work for an unknown id as for a wrong secret: hash, then compare two digests
        # of equal length in constant time. Nothing depends on the id beyond the O(1) lookup.
        stored = NO_DIGEST if text is None else json.loads(text)["sha256"]
        if not hmac.compare_digest(stored, _digest(secret)) or text is None:
            raise Unauthorized("unknown or revoked API key")
        key = self._record(key_id, text)
        if len(self._parsed) >= PARSED_KEYS:
            self._parsed.clear()
        self._parsed[key_id] = (text, stored, key)
        return key

    def _hget(self, key_id: str) -> str | None:
        with redis_errors():
            return self.redis.hget(API_KEYS, key_id)

    def get(self, key_id: str) -> ApiKey:
        """The stored key with this id; Unauthorized once it is revoked."""
        return self._record(key_id, self._stored(key_id))

    def _stored(self, key_id: str) -> str:
        with redis_errors():
            text = self.redis.hget(API_KEYS, key_id)
        if text is None:
            raise Unauthorized("unknown or revoked API key")
        return text

    def open_session(self, key: ApiKey, ttl_s: int) -> str:
        """A new session token standing for `key` for `ttl_s` seconds (Redis keeps only the
        token's digest)."""
        token = secrets.token_urlsafe(32)
        with redis_errors():
            self.redis.set(session(_digest(token)), key.id, ex=ttl_s)
        return token

    def close_session(self, token: str) -> None:
        """Ends a session at once (nothing happens for a malformed or unknown token)."""
        if SESSION_TOKEN.fullmatch(token):
            with redis_errors():
                self.redis.delete(session(_digest(token)))

    def authenticate_session(self, token: str) -> ApiKey:
        """The key a session token stands for; Unauthorized when the token is malformed,
        unknown or expired, or its key has been revoked."""
        if not SESSION_TOKEN.fullmatch(token):
            raise Unauthorized("malformed session cookie: sign in again")
        with redis_errors():
            key_id = self.redis.get(session(_digest(token)))
        if key_id is None:
            raise Unauthorized("unknown or expired session: sign in again")
        return self.get(key_id)

    @staticmethod
    def _record(key_id: str, text: str) -> ApiKey:
        record = json.loads(text)
        return ApiKey(key_id, record["name"], tuple(record["scopes"]), int(record["created_at"]))


def parse_key(key: str) -> tuple[str, str]:
    """The id and secret of a full ``rq_<id>_<secret>`` key; Unauthorized when malformed."""
    match = KEY_FORMAT.fullmatch(key)
    if match is None:
        raise Unauthorized("malformed API key")
    return match[1], match[2]


def check_manage(holder: ApiKey, scopes: Iterable[str], verb: str) -> None:
    """The rule for managing keys through the API: a key may only create or revoke (`verb`) a
    key whose every scope it holds itself (`admin` holds them all). Forbidden otherwise."""
    missing = [s for s in scopes if not holder.allows(s)]
    if missing:
        raise Forbidden(f"cannot {verb} a key with scopes this key does not hold: "
                        f"{', '.join(missing)}")
