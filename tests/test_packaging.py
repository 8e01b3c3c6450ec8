"""The wheel carries the Lua scripts and the dashboard, so a non-editable install works, and
declares the pytest plugin (relayq.testing)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_every_script_and_the_dashboard(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("relayq-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in (ROOT / "lua").rglob("*.lua"):
        assert f"relayq/lua/{script.relative_to(ROOT / 'lua')}" in names
    for page_file in (ROOT / "web").rglob("*.*"):
        assert f"relayq/web/{page_file.relative_to(ROOT / 'web')}" in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    declared = zipfile.ZipFile(wheel).read(entry_points).decode()  # the pytest plugin
    assert "[pytest11]\nrelayq.testing.plugin = relayq.testing.plugin" in declared, declared
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    probe = ("import relayq.scripts as s; print(s.lua_dir()); "
             "assert {'claim', 'enqueue', 'ack'} <= set(s.SCRIPTS); "
             "from relayq.api.dashboard import web_dir; print(web_dir())")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True, timeout=60,
                         capture_output=True, text=True, env={"PYTHONPATH": str(target)})
    assert out.stdout.split() == [str(target / "relayq" / "lua"), str(target / "relayq" / "web")]
