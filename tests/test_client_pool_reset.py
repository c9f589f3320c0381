"""``client.reset()`` while requests are in flight: they finish, then the client closes.

Real HTTP on 127.0.0.1 (httpcore's pool and sockets, not an in-process transport): a
server that holds its answer until the test releases it, so the reset lands while the
request is really in flight (gates, no sleeps).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from django_realtime import client
from django_realtime.client import pool

PAYLOAD = {
    "expires_after": {"anchor": "created_at", "seconds": 60},
    "session": {"type": "realtime"},
}


class HeldServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HeldHandler)
        self.received = threading.Event()
        self.release = threading.Event()


class HeldHandler(BaseHTTPRequestHandler):
    server: HeldServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.set()
        self.server.release.wait(10)
        body = json.dumps(
            {"value": "ek_held", "expires_at": 1_900_000_000, "session": {"type": "realtime"}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def held(settings: Any) -> Iterator[HeldServer]:
    server = HeldServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "API_BASE": f"http://{host}:{port}/v1",
        "MAX_RETRIES": 0,
    }
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_a_reset_lets_the_request_in_flight_finish_then_closes_its_client(held):
    results: list[Any] = []
    caller = threading.Thread(
        target=lambda: results.append(client.create_client_secret(PAYLOAD)), daemon=True
    )
    caller.start()
    assert held.received.wait(5), "the request never reached the server"
    in_flight = client.get_client()

    client.reset()  # e.g. set_transport() or a test's teardown, mid-request

    assert not in_flight.is_closed  # closing now would cut the request off
    assert client.get_client() is not in_flight  # new requests get a new client
    held.release.set()
    caller.join(5)
    assert [r.value for r in results] == ["ek_held"]
    assert in_flight.is_closed  # closed by its last request, not left to the collector
    assert pool._retired == set()
    assert pool._in_flight == {}


def test_a_reset_with_nothing_in_flight_closes_at_once(held):
    held.release.set()
    assert client.create_client_secret(PAYLOAD).value == "ek_held"
    idle = client.get_client()
    client.reset()
    assert idle.is_closed
    assert pool._in_flight == {}
