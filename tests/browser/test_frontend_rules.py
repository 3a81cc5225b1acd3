"""The front end's ground rules, checked in its source: no inline code, no HTML from strings."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "templates").glob("*.html"))
SCRIPTS = sorted((ROOT / "static").rglob("*.js"))
OWN_SCRIPTS = sorted((ROOT / "static" / "js").glob("*.js"))
VENDOR = ROOT / "static" / "vendor" / "socket.io"


def test_there_is_something_to_check():
    assert {p.name for p in TEMPLATES} >= {"base.html", "index.html", "bin.html"}
    assert (ROOT / "static" / "js" / "bin.js") in OWN_SCRIPTS


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_hold_no_inline_code_or_unescaped_output(template):
    """The CSP forbids inline script and style; autoescaping must never be switched off."""
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html, re.I), "style attribute"
    assert "<style" not in html
    assert not re.search(r"\|\s*safe\b|Markup|autoescape\s+false", html)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_never_parse_strings_as_html_or_code(script):
    source = script.read_text()
    for banned in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert banned not in source, f"{banned} in {script.name}"


@pytest.mark.parametrize("script", OWN_SCRIPTS, ids=lambda p: p.name)
def test_own_scripts_stay_small(script):
    assert len(script.read_text().splitlines()) < 300


def imported_by(module: str, seen: set[str] | None = None) -> set[str]:
    """Every module that static/js/<module>.js imports, directly or not."""
    seen = set() if seen is None else seen
    source = (ROOT / "static" / "js" / f"{module}.js").read_text()
    for name in re.findall(r'from "\./([a-z]+)\.js"', source):
        if name not in seen:
            seen.add(name)
            imported_by(name, seen)
    return seen


def test_bin_page_preloads_every_module_it_imports():
    listed = re.search(r"for module in \[([^\]]*)\]", (ROOT / "templates" / "bin.html").read_text())
    assert listed, "the modulepreload list is gone from bin.html"
    preloaded = set(re.findall(r'"([a-z]+)"', listed.group(1)))
    assert preloaded == imported_by("bin")


def test_vendored_socketio_client_names_its_source_and_licence():
    version = (VENDOR / "VERSION").read_text()
    assert "socket.io-client" in version and "4.8.4" in version
    digest = hashlib.sha256((VENDOR / "socket.io.min.js").read_bytes()).hexdigest()
    assert digest in version, "socket.io.min.js differs from the file VERSION describes"
    assert "MIT License" in (VENDOR / "LICENSE").read_text()
