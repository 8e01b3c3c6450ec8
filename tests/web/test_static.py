"""The dashboard's static files (web/), checked as files: nothing loaded from elsewhere, nothing
inline that a `default-src 'self'` Content-Security-Policy would block, every referenced file
present, every module reachable, and no API that parses data as HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
TEXT_FILES = sorted(p for p in WEB.rglob("*") if p.suffix in {".html", ".js", ".css", ".svg"})
JS_FILES = sorted(WEB.rglob("*.js"))
IMPORT = re.compile(r"""^\s*(?:import|export)\s[^;]*?\bfrom\s+["']([^"']+)["']""", re.MULTILINE)
URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}""")
XML_NAMESPACES = {"http://www.w3.org/2000/svg"}


class Page(HTMLParser):
    """Collects what index.html references and anything inline."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in attributes:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.inline.append("<style> element")
        if tag == "script":
            self._in_script = True
            if not attributes.get("src"):
                self.inline.append("<script> without src")
            elif attributes.get("type") != "module":
                self.inline.append(f"classic script {attributes['src']}")
        for name in ("src", "href"):
            value = attributes.get(name)
            if value and not value.startswith("#"):
                self.refs.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline script text")


def page() -> Page:
    parser = Page()
    parser.feed((WEB / "index.html").read_text())
    return parser


def test_index_has_nothing_inline_for_the_csp_to_block() -> None:
    assert page().inline == []


def test_every_file_index_references_exists_and_is_local() -> None:
    refs = page().refs
    assert {"css/app.css", "js/main.js", "favicon.svg"} <= set(refs)
    for ref in refs:
        assert not URL.match(ref) and not ref.startswith("/"), f"not a relative path: {ref}"
        assert (WEB / ref).is_file(), f"index.html references missing {ref}"


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(WEB)))
def test_no_external_urls(path: Path) -> None:
    text = path.read_text()
    for namespace in XML_NAMESPACES:  # an identifier, never fetched
        text = text.replace(namespace, "")
    found = URL.findall(text)
    assert not found, f"{path.name} refers to other hosts: {sorted(found)}"


def test_css_references_only_local_files() -> None:
    for css in WEB.rglob("*.css"):
        text = css.read_text()
        assert "@import" not in text
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", text):
            assert (css.parent / ref).is_file(), f"{css.name}: missing {ref}"


def test_every_import_resolves_and_every_module_is_used() -> None:
    reachable: set[Path] = set()
    todo = [WEB / "js" / "main.js"]
    while todo:
        module = todo.pop()
        if module in reachable:
            continue
        reachable.add(module)
        for spec in IMPORT.findall(module.read_text()):
            assert spec.startswith("./") or spec.startswith("../"), f"{module.name}: {spec}"
            target = (module.parent / spec).resolve()
            assert target.is_file(), f"{module.relative_to(WEB)} imports missing {spec}"
            todo.append(target)
    assert set(JS_FILES) == reachable, f"unused modules: {set(JS_FILES) - reachable}"


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: str(p.relative_to(WEB)))
def test_no_html_parsing_or_eval(path: Path) -> None:
    text = path.read_text()
    for api in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                "new Function", "setAttribute(\"style\"", ".style."):
        assert api not in text, f"{path.relative_to(WEB)} uses {api}"
