"""The upstream resetting connections (a real socket on 127.0.0.1 that answers every
connection with a TCP reset): clear 502 JSON, one finished audit row, nothing pending.

The cache and database outages need real Redis and PostgreSQL processes: see
``tests/scaleout/test_crash_and_outages.py``.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from django_realtime import client as upstream_client
from django_realtime.models import AuditLogEntry, SessionPreset
from tests.api_helpers import assert_error, only_audit_row
from tests.conftest import OFFER_SDP, CheckedAPIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def resetting_upstream() -> Iterator[tuple[str, list[int]]]:
    """``(base URL, accepted connections)`` of a listener that resets every connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.recv(65536)
            # SO_LINGER 0: close() sends RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", accepted
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@pytest.mark.parametrize("endpoint", ["mint", "relay"])
def test_upstream_resetting_connections_is_502_json_with_a_finished_row(
    api_client: CheckedAPIClient,
    preset: SessionPreset,
    settings: Any,
    resetting_upstream: tuple[str, list[int]],
    endpoint: str,
) -> None:
    base, accepted = resetting_upstream
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "API_BASE": base, "MAX_RETRIES": 2}
    upstream_client.set_transport(None)
    upstream_client.reset()
    if endpoint == "mint":
        response = api_client.post(
            "/realtime/client-secrets/", {"preset": "assistant"}, format="json"
        )
    else:
        response = api_client.generic(
            "POST", "/realtime/calls/?preset=assistant", OFFER_SDP, content_type="application/sdp"
        )
    assert_error(response, 502, "upstream_error")
    assert len(accepted) == 3  # the first try and two retries, each reset
    row = only_audit_row()
    assert row.outcome == "upstream_error"
    assert row.upstream_status is None
    assert not AuditLogEntry.objects.filter(outcome="pending").exists()
