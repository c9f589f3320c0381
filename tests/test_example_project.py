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
        "from django_realtime.models import SessionPreset, SipRoute;"
        "print(sorted(SessionPreset.objects.values_list('slug', 'session_type')),"
        " SipRoute.objects.count())",
    ).stdout
    assert "[('assistant', 'realtime'), ('dictation', 'transcription')] 1" in counts
