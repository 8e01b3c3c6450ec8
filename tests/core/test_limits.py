"""relayq.limits is the one definition of every limit and default: no module of the package
writes one of its values again (the scripts are checked by tests/test_scripts.py, the OpenAPI
document by tests/api/test_openapi.py)."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

import relayq
from relayq import limits

PACKAGE = Path(relayq.__file__).parent
# Developer tools keep numbers of their own (workload sizes, ports); they are no rule of relayq.
TOOLS = {"bench.py", "chaos.py", "demo.py", "devstack.py", "redis_process.py", "api/bench.py",
         "api/process.py", "cli/bench.py", "cli/chaos.py", "cli/dev.py"}
# Values below 255 (and 1000, 1_000_000: milliseconds and microseconds per second) are too
# common in code to tell apart from a limit; every other value of a limit is checked.
TOO_COMMON = {1000, 1_000_000}
# A number that equals a limit by chance, with what it is instead.
NOT_A_LIMIT = {
    ("throttle.py", 10_000): "addresses the auth throttle tracks",
    ("export/restore.py", 10_000): "jobs between two progress reports",
}


def limit_values() -> set[int | float]:
    values: set[int | float] = set()
    for value in limits.lua_constants().values():
        numbers = value.values() if isinstance(value, dict) else [value]
        for number in numbers:
            values.update(number if isinstance(number, tuple) else [number])
    return {v for v in values if v >= 255 and v not in TOO_COMMON}


def core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if p.name != "limits.py" and "tools" not in p.relative_to(PACKAGE).parts
                  and p.relative_to(PACKAGE).as_posix() not in TOOLS)


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_module_writes_a_limit_again(path: Path) -> None:
    values, name = limit_values(), path.relative_to(PACKAGE).as_posix()
    copies = []
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type == tokenize.NUMBER:
            value = ast.literal_eval(token.string)
            if value in values and (name, value) not in NOT_A_LIMIT:
                copies.append(f"line {token.start[0]}: {token.string}")
    assert not copies, f"import these from relayq.limits instead: {copies}"


def test_the_settings_have_a_default_and_a_range_each() -> None:
    assert set(limits.SETTING_DEFAULTS) == set(limits.SETTING_RANGES)
    for name, (lo, hi) in limits.SETTING_RANGES.items():
        assert lo <= limits.SETTING_DEFAULTS[name] <= hi, name

