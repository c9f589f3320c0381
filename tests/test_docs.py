"""The reference pages of the docs name exactly what the code has.

The docs site is built (warnings as errors) by ``make docs``; these tests keep its
reference tables from drifting from the code: every ``DJANGO_REALTIME`` key has a row on
the settings page, and the system-check ids on the checks page are the ids the code can
emit.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import django_realtime
from django_realtime.conf import DEFAULTS

DOCS = Path(__file__).resolve().parent.parent / "docs"
PACKAGE = Path(django_realtime.__file__).parent

_TABLE_KEY = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", re.M)
_DOC_CHECK = re.compile(r"^\|\s*`django_realtime\.([EW]\d{3})`\s*\|", re.M)
_CODE_CHECK = re.compile(r'id=f"\{ID\}([EW]\d{3})"')


def test_every_setting_has_a_row_on_the_settings_page() -> None:
    documented = set(_TABLE_KEY.findall((DOCS / "settings.md").read_text()))
    assert set(DEFAULTS) <= documented, sorted(set(DEFAULTS) - documented)


def test_the_checks_page_lists_exactly_the_check_ids_of_the_code() -> None:
    in_code = {
        match
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
        for match in _CODE_CHECK.findall(path.read_text())
    }
    assert in_code, "no check ids found: did the checks change how they spell ids?"
    documented = _DOC_CHECK.findall((DOCS / "checks.md").read_text())
    assert len(documented) == len(set(documented)), "an id is listed twice"
    assert set(documented) == in_code


def test_the_docs_release_is_the_package_version() -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    assert conf["release"] == django_realtime.__version__
