"""Assertions shared by the mint and relay API tests."""

from __future__ import annotations

from typing import Any

from django_realtime.models import AuditLogEntry


def only_audit_row() -> AuditLogEntry:
    """The single audit row the request must have written."""
    rows = list(AuditLogEntry.objects.all())
    assert len(rows) == 1, rows
    return rows[0]


def assert_error(response: Any, status: int, code: str) -> None:
    """Our error shape: exactly ``{detail, code}``, a readable detail, never cached."""
    assert response.status_code == status, response.content
    assert response.json().keys() == {"detail", "code"}
    assert response.json()["code"] == code
    assert isinstance(response.json()["detail"], str)
    assert response.json()["detail"]
    assert response["Cache-Control"] == "no-store"
