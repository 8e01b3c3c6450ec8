"""The public surface of `relayq` (relayq/__init__.py): every exported name resolves to what its
module defines, type checkers see the same names, and importing the package loads none of the
heavy parts until a name that needs them is used."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import relayq


def test_every_exported_name_comes_from_its_module() -> None:
    for name, module in relayq._EXPORTS.items():
        value = getattr(relayq, name)
        assert value is getattr(importlib.import_module(module, "relayq"), name), name
    assert sorted(relayq.__all__) == sorted(relayq._EXPORTS)
    assert set(relayq.__all__) <= set(dir(relayq))


def test_type_checkers_see_the_same_names() -> None:
    tree = ast.parse(Path(relayq.__file__).read_text())
    checked = next(node for node in tree.body if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    seen = {(f".{imp.module}", alias.asname or alias.name) for imp in checked.body
            if isinstance(imp, ast.ImportFrom) for alias in imp.names}
    assert seen == {(module, name) for name, module in relayq._EXPORTS.items()}


def test_importing_the_package_loads_nothing_heavy_until_used() -> None:
    probe = ("import sys, relayq; before = [m for m in ('redis', 'urllib3', 'relayq.worker') "
             "if m in sys.modules]; relayq.Queue; print(before, 'redis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[] True"
