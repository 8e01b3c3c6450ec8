"""Reading request input: the JSON body (an object with known fields only, no nulls where a value
is expected) and query parameters (numbers in ASCII digits only). Ranges of job options are
checked by `Queue` itself; this module checks what only HTTP can get wrong (not JSON, unknown or
missing fields, wrong types).

A body is parsed with bounded memory: before `json.loads` builds anything, an upper bound of
the values it would build is counted (in C, by `bytes.count`) and a body over
`ServerConfig.max_json_values` (`--max-json-values`) is refused with 413. The bytes of a body
are bounded already (`--max-request-bytes`); the count bounds what a small value costs, e.g. a
16 MiB `[{},{},...]` would be 5.6 million dicts (~500 MiB).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from flask import request

from ..errors import InvalidArgument, InvalidJson, PayloadTooLarge
from ..options import check_int, check_str, is_digits
from .services import services


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def values_at_most(raw: bytes) -> int:
    """An upper bound of the JSON values in `raw`: every value but the first of a container
    follows a `,` or a `:`, and every container's first one follows its `[` or `{` (the same
    bytes inside strings only make the bound higher)."""
    return 1 + raw.count(b",") + raw.count(b":") + raw.count(b"[") + raw.count(b"{")


def json_body(allowed: Collection[str], required: Collection[str] = ()) -> dict[str, Any]:
    """The request body as a JSON object. An empty body counts as `{}`."""
    body = parse_json(request.get_data(cache=True), services().config.max_json_values)
    return check_fields(body, allowed, required)


def parse_json(raw: bytes, limit: int) -> Any:
    """The JSON value of a request body of at most `limit` values (`{}` when empty)."""
    if not raw.strip():
        return {}
    if values_at_most(raw) > limit:
        raise PayloadTooLarge(f"request body has more than {limit} JSON values "
                              "(the server's --max-json-values)")
    try:  # as json.loads(raw, parse_constant=...) does, without making a decoder each time
        return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise InvalidJson(f"request body is not valid JSON: {e}") from None


def check_fields(body: Any, allowed: Collection[str], required: Collection[str] = (),
                 what: str = "request body") -> dict[str, Any]:
    """`body` if it is an object with only `allowed` fields, all `required` ones present."""
    if not isinstance(body, dict):
        raise InvalidArgument(f"{what} must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidArgument(f"unknown field {unknown[0]!r} in {what} "
                              f"(known: {', '.join(sorted(allowed))})")
    for name in required:
        if name not in body:
            raise InvalidArgument(f"{what} needs the field {name!r}")
    return body


def optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...],
             default: Any = None) -> Any:
    """`body[name]` checked to be of `kind` (bool is never an int here), or `default`."""
    if name not in body:
        return default
    value = body[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("integer" if k is int else "number" if k is float else
                            "boolean" if k is bool else "string" for k in kinds)
        raise InvalidArgument(f"{name} must be a {names}")
    return value


def optional_int(body: dict[str, Any], name: str, lo: int, hi: int, default: int) -> int:
    return check_int(optional(body, name, int, default), name, lo, hi)


def required_str(body: dict[str, Any], name: str, max_bytes: int = 1024) -> str:
    return check_str(optional(body, name, str), name, max_bytes)


def check_query(allowed: Collection[str]) -> None:
    """Refuses query parameters other than `allowed`, and any given twice (a typo such as
    `?limt=5` must not pass silently)."""
    for name in request.args:
        if name not in allowed:
            raise InvalidArgument(f"unknown query parameter {name!r} "
                                  f"(known: {', '.join(sorted(allowed))})")
        if len(request.args.getlist(name)) > 1:
            raise InvalidArgument(f"query parameter {name!r} given more than once")


def query_int(name: str, lo: int, hi: int, default: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    if not is_digits(text, len(str(hi))):
        raise InvalidArgument(f"{name} must be an integer between {lo} and {hi}")
    return check_int(int(text), name, lo, hi)
