"""The example project behind `make demo` loads, migrates and seeds (twice, idempotently)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DEMO_DB": str(tmp_path / "demo.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT / "example_project",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def test_example_project_checks_migrates_and_seeds(tmp_path):
    _manage(tmp_path, "check", "--fail-level", "ERROR")
    _manage(tmp_path, "migrate", "--noinput", "-v", "0")
    first = _manage(tmp_path, "seed_demo").stdout
    second = _manage(tmp_path, "seed_demo").stdout
    assert "Demo user: demo / password: " in first
    assert first != second  # a fresh password each run
    counts = _manage(
        tmp_path,
        "shell",
        "-c",
        "from django_realtime.models import SessionPreset;"
        "from django_realtime.sip.models import SipRoute;"
        "print(sorted(SessionPreset.objects.values_list('slug', 'session_type')),"
        " SipRoute.objects.count())",
    ).stdout
    assert "[('assistant', 'realtime'), ('dictation', 'transcription')] 1" in counts
    # issue 10: the demo tool on the voice preset, a usage limit, stored transcripts; the
    # database check (E020) finds every server tool registered.
    seeded = _manage(
        tmp_path,
        "shell",
        "-c",
        "from django_realtime.models import SessionPreset, UsageLimit;"
        "from django_realtime.tools import registry;"
        "p = SessionPreset.objects.get(slug='assistant');"
        "print(p.server_tools, p.store_transcripts, UsageLimit.objects.count(),"
        " 'time_in_city' in registry)",
    ).stdout
    assert "['time_in_city'] True 1 True" in seeded
    _manage(tmp_path, "check", "--database", "default", "--fail-level", "ERROR")
