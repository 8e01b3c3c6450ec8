"""The layering of docs/architecture.md holds: `lint-imports` keeps every contract of
pyproject.toml, and every module directly under relayq/ is named by them (as core or as an
edge), so a new module cannot slip past the contracts by being in no list."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EDGES = {"worker", "api", "export", "metrics", "cli", "tools", "gateway", "aio", "testing"}


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def test_every_module_of_the_package_is_core_or_an_edge():
    core = {m.removeprefix("relayq.") for m in contracts()[0]["source_modules"]}
    assert not core & EDGES
    found = {p.stem for p in (ROOT / "relayq").glob("*.py") if p.stem != "__init__"}
    found |= {p.name for p in (ROOT / "relayq").iterdir()
              if p.is_dir() and (p / "__init__.py").exists()}
    unclassified = found - core - EDGES
    assert not unclassified, (
        f"{sorted(unclassified)}: add each to the core contract in pyproject.toml "
        "([tool.importlinter]) or, if it is an edge, to EDGES here and to the edge contracts")
    assert not (core | EDGES) - found, "the contracts name modules that no longer exist"


def test_lint_imports_keeps_every_contract():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is not installed: pip install '.[test]'")
    run = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
