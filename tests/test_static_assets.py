"""Static properties of the shipped assets (size, no external URLs, CSP-safe constructs).

What realtime.js *does* is tested in real Chromium (tests/browser/), not by looking for
substrings here.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import django_realtime

STATIC = Path(django_realtime.__file__).parent / "static" / "django_realtime"
JS = STATIC / "realtime.js"
CSS = STATIC / "realtime.css"
MAX_GZIPPED_JS = 9 * 1024  # issues 9 and 10: relay mode choice, minutes countdown (was 8 KiB)


def test_js_gzipped_size_budget():
    size = len(gzip.compress(JS.read_bytes(), compresslevel=9))
    assert size <= MAX_GZIPPED_JS, f"realtime.js is {size} bytes gzipped (budget {MAX_GZIPPED_JS})"


@pytest.mark.parametrize("path", [JS, CSS], ids=lambda p: p.name)
def test_no_external_urls(path):
    text = path.read_text()
    assert not re.search(r"(?i)\b(?:https?|wss?):|(?<![:\w])//[a-z0-9.-]+\.[a-z]{2,}", text)
    assert "@import" not in text


def test_css_has_no_url_references():
    assert "url(" not in CSS.read_text()


def test_js_is_csp_friendly():
    text = JS.read_text()
    for forbidden in (
        "eval(",
        "new Function",
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        'setAttribute("style"',
        ".cssText",
    ):
        assert forbidden not in text, forbidden
    # string-form timers are eval in disguise
    assert not re.search(r"setTimeout\(\s*['\"]", text)


def _node() -> str | None:
    return shutil.which("node") or ("/usr/bin/node" if Path("/usr/bin/node").exists() else None)


@pytest.mark.skipif(_node() is None, reason="node is not installed")
def test_node_parses_js():
    result = subprocess.run(
        [_node(), "--check", str(JS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
