"""`relayq keys create|list|revoke`: API keys, straight in Redis (`--redis`, for bootstrap: no
server or key needed), or through a server's /api/keys with `--server` (and $RELAYQ_API_KEY).

    relayq keys create --name ci --scopes jobs:write,jobs:read --json
    relayq keys list
    relayq keys revoke 0123456789abcdef

The key itself is printed once, at creation; Redis keeps only its hash.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..auth import SCOPES, KeyStore
from ..client import Client
from ..commandline import add_redis, add_server, describe_redis
from ..connection import connect
from .common import print_json, print_table, safe_text


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("keys", help="create, list or revoke API keys",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("create", help="make a key (printed once)")
    s.add_argument("--name", required=True, help="what the key is for")
    s.add_argument("--scopes", required=True, metavar="SCOPE[,SCOPE...]",
                   help=f"some of: {', '.join(SCOPES)}")
    _add_target_args(s)
    s.set_defaults(handler=create)
    s = actions.add_parser("list", help="every key (never the secrets)")
    _add_target_args(s)
    s.set_defaults(handler=list_keys)
    s = actions.add_parser("revoke", help="delete a key: refused from the next request on")
    s.add_argument("id")
    _add_target_args(s)
    s.set_defaults(handler=revoke)


def _add_target_args(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    add_redis(target, help=": work on it directly (the default)")
    # no default: without --server the keys are made in Redis, even with $RELAYQ_SERVER set
    add_server(target, default_from_env=False, help=": go through its /api/keys instead")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


class _RedisKeys:
    def __init__(self, url: str) -> None:
        self.store = KeyStore(connect(url))

    def create(self, name: str, scopes: list[str]) -> dict[str, Any]:
        record, key = self.store.create(name, scopes)
        return {**record.to_dict(), "key": key}

    def list(self) -> list[dict[str, Any]]:
        return [k.to_dict() for k in self.store.list()]

    def revoke(self, key_id: str) -> None:
        self.store.revoke(key_id)


class _HttpKeys:
    def __init__(self, server: str) -> None:
        self.client = Client(server)

    def create(self, name: str, scopes: list[str]) -> dict[str, Any]:
        return self.client.create_key(name, scopes)

    def list(self) -> list[dict[str, Any]]:
        return self.client.list_keys()

    def revoke(self, key_id: str) -> None:
        self.client.revoke_key(key_id)


def _keys(args: argparse.Namespace) -> _RedisKeys | _HttpKeys:
    return _HttpKeys(args.server) if args.server else _RedisKeys(args.redis)


def _say_where(args: argparse.Namespace, verb: str) -> None:
    """After working on Redis straight, names it on stderr: a key made in another Redis than
    the server's silently does not work."""
    if not args.server:
        print(f"{args.prog}: {verb} {describe_redis(args.redis)}", file=sys.stderr)


def create(args: argparse.Namespace) -> int:
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    made = _keys(args).create(args.name, scopes)
    if args.json:
        print_json({name: made[name] for name in ("id", "key", "name", "scopes")})
    else:
        print(f"created key {made['id']} ({safe_text(made['name'])}: "
              f"{', '.join(made['scopes'])}).\n"
              "It is shown only this once; keep it safe:\n" + made["key"])
    _say_where(args, "wrote to")
    return 0


def list_keys(args: argparse.Namespace) -> int:
    keys = _keys(args).list()
    if args.json:
        print_json({"keys": keys})
    else:
        print_table(["id", "name", "scopes", "created_at"],
                    [[k["id"], k["name"], ",".join(k["scopes"]), k["created_at"]] for k in keys])
    _say_where(args, "read from")
    return 0


def revoke(args: argparse.Namespace) -> int:
    _keys(args).revoke(args.id)
    if args.json:
        print_json({"id": args.id, "revoked": True})
    else:
        print(f"revoked key {args.id}")
    _say_where(args, "wrote to")
    return 0
