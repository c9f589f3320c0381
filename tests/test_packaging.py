"""The wheel carries everything a site needs, and the migrations match the models."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("django_openai_realtime-*.whl")
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


def test_wheel_contents(wheel):
    expected = {
        "django_realtime/py.typed",
        "django_realtime/migrations/0001_initial.py",
        "django_realtime/static/django_realtime/realtime.js",
        "django_realtime/static/django_realtime/realtime.css",
        "django_realtime/templates/django_realtime/widget.html",
        "django_realtime/management/commands/realtime_mint.py",
        "django_realtime/management/commands/realtime_prune_audit.py",
        "django_realtime/testing/__init__.py",
        "django_realtime/management/commands/realtime_prune.py",
        "django_realtime/locale/fr/LC_MESSAGES/django.mo",
        "django_realtime/locale/fr/LC_MESSAGES/django.po",
        "django_realtime/templatetags/django_realtime.py",
        "django_realtime/templatetags/realtime.py",
        "django_realtime/openapi.json",
        "django_realtime/sip/__init__.py",
        "django_realtime/sip/apps.py",
        "django_realtime/sip/migrations/0001_initial.py",
        "django_realtime/sip/templates/admin/realtime_sip/siproute/change_list.html",
        "django_realtime/control/__init__.py",
        "django_realtime/control/sideband/__init__.py",
        "django_realtime/control/sideband/connector.py",
        "django_realtime/tools/__init__.py",
        "django_realtime/client/__init__.py",
        "django_realtime/admin/__init__.py",
    }
    assert expected <= wheel, sorted(expected - wheel)
    # Every file of the package in the checkout ships, whatever its kind.
    shipped = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "django_realtime").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert shipped <= wheel, sorted(shipped - wheel)
    assert not [name for name in wheel if name.startswith(("tests/", "example_project/"))]
    assert not [name for name in wheel if name.endswith((".pyc", ".sqlite3"))]


@pytest.mark.django_db
def test_no_missing_migrations():
    out = StringIO()
    call_command("makemigrations", "django_realtime", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
