"""Codecs turn a queue's typed payloads into JSON text and back (`Queue[T]`).

A codec has `encode(value) -> str` and `decode(text) -> value`. `JsonCodec` (the default) takes
any JSON-serialisable value; `DataclassCodec(cls)` round-trips a dataclass (nested dataclasses,
lists and optionals included) through JSON objects; `codec_for(type)` picks one for a type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Generic, Protocol, TypeVar

from .errors import InvalidPayload

T = TypeVar("T")

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_loads = json.loads


class Codec(Protocol[T]):
    def encode(self, value: T) -> str: ...

    def decode(self, text: str) -> T: ...


def dumps(value: Any) -> str:
    """Compact JSON text for `value`, or InvalidPayload naming what is not JSON."""
    try:
        return _dumps(value)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidPayload(f"not JSON-serialisable: {e}") from None


class JsonCodec:
    """Plain JSON values: dict, list, str, int, float, bool, None."""

    def encode(self, value: Any) -> str:
        return dumps(value)

    def decode(self, text: str) -> Any:
        return _loads(text)


class DataclassCodec(Generic[T]):
    """A dataclass as a JSON object of its fields; nested dataclasses are rebuilt on decode."""

    def __init__(self, cls: type[T]) -> None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        self.cls = cls

    def encode(self, value: T) -> str:
        if not isinstance(value, self.cls):
            raise InvalidPayload(f"expected a {self.cls.__name__}, got {type(value).__name__}")
        return dumps(dataclasses.asdict(value))  # type: ignore[call-overload]

    def decode(self, text: str) -> T:
        return _build(self.cls, _loads(text))


def _build(tp: Any, value: Any) -> Any:
    """Rebuilds `value` (decoded JSON) as type `tp`, following dataclass field types."""
    if value is None:
        return None
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        return tp(**{k: _build(hints.get(k, Any), v) for k, v in value.items() if k in names})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple, set, frozenset) and args and isinstance(value, list):
        return origin(_build(args[0], v) for v in value)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _build(args[1], v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None) and dataclasses.is_dataclass(arg):
                return _build(arg, value)
    return value


def codec_for(payload_type: type | None) -> Codec[Any]:
    """The codec for a payload type: a dataclass codec for dataclasses, else plain JSON."""
    if payload_type is not None and dataclasses.is_dataclass(payload_type):
        return DataclassCodec(payload_type)
    return JsonCodec()
