"""The sideband client: URL and auth, re-dial, the end of a call, the bounded queue.

Against the fake on 127.0.0.1 over a real WebSocket where the fake can show it, and
through the injectable connector for faults the fake cannot produce on demand.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from django_realtime import client as upstream_client
from django_realtime.control.sideband import (
    Sideband,
    WebsocketsConnector,
    sideband_headers,
    sideband_url,
)
from django_realtime.exceptions import (
    CallNotFound,
    RealtimeConfigurationError,
    SendQueueFull,
    SessionConfigError,
    SidebandClosed,
    SidebandError,
    UpstreamAuthenticationError,
)
from django_realtime.testing import script
from django_realtime.testing.sideband import FakeSidebands

pytestmark = pytest.mark.anyio

KEY = "sk-test-sideband-key"


@pytest.fixture
def realtime(settings: Any) -> dict[str, Any]:
    settings.DJANGO_REALTIME = {"API_KEY": KEY, "API_BASE": "https://api.openai.com/v1"}
    return dict(settings.DJANGO_REALTIME)


# --- URL and auth ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.openai.com/v1", "wss://api.openai.com/v1/realtime?call_id=rtc_1"),
        ("http://127.0.0.1:8765/v1/", "ws://127.0.0.1:8765/v1/realtime?call_id=rtc_1"),
        (
            "https://res.openai.azure.com/openai/v1",
            "wss://res.openai.azure.com/openai/v1/realtime?call_id=rtc_1",
        ),
    ],
)
def test_url_is_derived_from_api_base(settings: Any, base: str, expected: str) -> None:
    settings.DJANGO_REALTIME = {"API_BASE": base}
    assert sideband_url("rtc_1") == expected


def test_sideband_url_setting_wins(settings: Any) -> None:
    settings.DJANGO_REALTIME = {"SIDEBAND_URL": "wss://proxy.example/rt?tenant=a"}
    assert sideband_url("rtc_1") == "wss://proxy.example/rt?tenant=a&call_id=rtc_1"


def test_malformed_call_id_and_base_are_refused(settings: Any) -> None:
    settings.DJANGO_REALTIME = {"API_BASE": "https://api.openai.com/v1"}
    for bad in ("", "rtc_1&x=1", "../rtc", "rtc 1"):
        with pytest.raises(SidebandError):
            sideband_url(bad)
    settings.DJANGO_REALTIME = {"API_BASE": "ftp://api.openai.com/v1"}
    with pytest.raises(RealtimeConfigurationError, match="API_BASE"):
        sideband_url("rtc_1")


def test_headers_like_rest_bearer_and_azure(settings: Any) -> None:
    settings.DJANGO_REALTIME = {"API_KEY": KEY, "ORGANIZATION": "org-1", "PROJECT": "proj-1"}
    headers = sideband_headers()
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["OpenAI-Organization"] == "org-1"
    assert headers["OpenAI-Project"] == "proj-1"
    assert "OpenAI-Beta" not in headers
    settings.DJANGO_REALTIME = {"API_KEY": "azure-key", "AUTH_STYLE": "api-key"}
    headers = sideband_headers()
    assert headers["api-key"] == "azure-key"
    assert "Authorization" not in headers


def test_ephemeral_key_is_refused_without_echoing_it(settings: Any) -> None:
    settings.DJANGO_REALTIME = {"API_KEY": "ek_abcdef0123456789"}
    with pytest.raises(RealtimeConfigurationError) as info:
        sideband_headers()
    assert "ek_abcdef" not in str(info.value)
    assert "standard API key" in str(info.value)


# --- against the fake on 127.0.0.1 ---------------------------------------------------


async def _until_call_over(sideband: Sideband) -> list[dict[str, Any]]:
    """Every event until the sideband reports the call is over (``CallNotFound``)."""
    seen: list[dict[str, Any]] = []
    try:
        async for event in sideband:
            seen.append(event)
    except CallNotFound:
        return seen
    raise AssertionError("the sideband ended without CallNotFound")


async def _next_of(sideband: Sideband, kind: str, limit: int = 50) -> dict[str, Any]:
    for _ in range(limit):
        event = await asyncio.wait_for(sideband.__anext__(), 5)
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind}")


async def test_attach_receive_and_send_over_a_real_websocket(
    realtime_sidebands: FakeSidebands,
) -> None:
    call = realtime_sidebands.virtual_call({"type": "realtime", "instructions": "Preset."})
    async with Sideband(call.id) as sideband:
        created = await _next_of(sideband, "session.created")
        assert created["session"]["instructions"] == "Preset."
        await sideband.send(
            {"type": "session.update", "session": {"type": "realtime", "instructions": "New."}}
        )
        await sideband.send({"type": "response.create"})
        updated = await _next_of(sideband, "session.updated")
        assert updated["session"]["instructions"] == "New."
        await _next_of(sideband, "response.done")
    assert realtime_sidebands.sent_types(call.id) == ["session.update", "response.create"]
    request = realtime_sidebands.attempts[-1]
    assert request == (call.id, 101)


async def test_dropped_with_1001_is_redialled_without_ending(
    realtime_sidebands: FakeSidebands,
) -> None:
    call = realtime_sidebands.virtual_call()
    async with Sideband(call.id) as sideband:
        await _next_of(sideband, "session.created")
        thread = realtime_sidebands.play_in_background(
            call.id,
            [
                script.drop_sideband(1001),
                script.wait_sideband(),
                script.tamper(instructions="Changed after the drop."),
            ],
        )
        # The re-dialled socket gets its own session.created, then the tamper.
        await _next_of(sideband, "session.created")
        updated = await _next_of(sideband, "session.updated")
        await asyncio.to_thread(thread.join, 5)
        assert updated["session"]["instructions"] == "Changed after the drop."
        assert sideband.close_codes == [1001]
        assert sideband.connections == 2
        assert call.state == "active"


async def test_unknown_call_is_not_found_on_connect(realtime_sidebands: FakeSidebands) -> None:
    with pytest.raises(CallNotFound) as info:
        await Sideband("rtc_unknown000").connect()
    assert info.value.status_code == 404
    assert info.value.error_code == "call_id_not_found"


async def test_rest_hangup_ends_the_sideband_with_call_not_found(
    realtime_sidebands: FakeSidebands,
) -> None:
    call = realtime_sidebands.virtual_call()
    async with Sideband(call.id) as sideband:
        await upstream_client.ahangup_call(call.id)
        events = [event["type"] for event in await _until_call_over(sideband)]
    assert events == ["session.created"]
    assert sideband.close_codes == [1000]
    assert realtime_sidebands.attempts[-1] == (call.id, 404)


async def test_wrong_key_is_an_authentication_error(
    realtime_sidebands: FakeSidebands, settings: Any
) -> None:
    call = realtime_sidebands.virtual_call()
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "API_KEY": "not-a-server-key"}
    with pytest.raises(UpstreamAuthenticationError) as info:
        await Sideband(call.id).connect()
    assert info.value.status_code == 401
    assert "not-a-server-key" not in str(info.value)


async def test_fake_refuses_an_ephemeral_key_sent_anyway(
    realtime_sidebands: FakeSidebands,
) -> None:
    call = realtime_sidebands.virtual_call()
    connector = WebsocketsConnector()
    with pytest.raises(CallNotFound):  # the API answers ek_ with 404 on the sideband
        await connector(sideband_url(call.id), {"Authorization": "Bearer ek_0123456789"})
    with pytest.raises(UpstreamAuthenticationError):
        await connector(sideband_url(call.id), {})
    assert [status for _, status in realtime_sidebands.attempts] == [404, 401]


async def test_keepalive_pings_are_answered(realtime_sidebands: FakeSidebands) -> None:
    call = realtime_sidebands.virtual_call()
    connection = await WebsocketsConnector(ping_interval=0.02, ping_timeout=0.5)(
        sideband_url(call.id), sideband_headers()
    )
    try:
        await asyncio.sleep(0.2)  # several ping/pong rounds; a lost pong would close it
        latency = connection.latency  # type: ignore[attr-defined]
        assert latency > 0
        json.loads(await connection.recv())
    finally:
        await connection.close()


# --- faults through the connector ------------------------------------------------------


class Conn:
    """A scripted connection: ``feed`` server messages or a close; records sends."""

    def __init__(self, *, fail_sends: int = 0, gate: asyncio.Event | None = None) -> None:
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.fail_sends = fail_sends
        self.gate = gate
        self.closed_with: int | None = None

    def feed(self, *items: Any) -> None:
        for item in items:
            self.inbox.put_nowait(item)

    def drop(self, code: int = 1001) -> None:
        self.inbox.put_nowait(ConnectionClosed(Close(code, "bye"), None))

    async def recv(self) -> str:
        item = await self.inbox.get()
        if isinstance(item, BaseException):
            self.inbox.put_nowait(item)  # closed stays closed
            raise item
        return item if isinstance(item, str) else json.dumps(item)

    async def send(self, message: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_sends:
            self.fail_sends -= 1
            self.drop(1006)
            raise ConnectionClosed(None, None)
        self.sent.append(json.loads(message))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code


class Connector:
    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.dialled: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, url: str, headers: dict[str, str]) -> Conn:
        self.dialled.append((url, headers))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _sideband(connector: Connector, **kw: Any) -> tuple[Sideband, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return Sideband("rtc_test", connector=connector, sleep=sleep, jitter=lambda: 0.0, **kw), slept


async def test_dial_failures_back_off_exponentially_with_jitter(realtime: Any) -> None:
    conn = Conn()
    connector = Connector(OSError("refused"), SidebandError("503"), OSError("reset"), conn)
    sideband, slept = _sideband(connector, backoff_initial=0.5)
    await sideband.connect()
    assert slept == [0.25, 0.5, 1.0]  # half of 0.5, 1, 2 with jitter 0
    assert connector.dialled[0][0] == "wss://api.openai.com/v1/realtime?call_id=rtc_test"
    assert connector.dialled[0][1]["Authorization"] == f"Bearer {KEY}"
    await sideband.close()
    assert conn.closed_with == 1000


async def test_jitter_spreads_the_delay(realtime: Any) -> None:
    sideband = Sideband(
        "rtc_test",
        connector=Connector(OSError(), Conn()),
        sleep=lambda s: asyncio.sleep(0),
        jitter=lambda: 0.999,
    )
    await sideband.connect()
    assert sideband.delays == [pytest.approx(0.25 * 0.9995)]
    await sideband.close()


async def test_gives_up_after_max_redials(realtime: Any) -> None:
    sideband, slept = _sideband(Connector(*[OSError()] * 4), max_redials=3)
    with pytest.raises(SidebandClosed) as info:
        await sideband.connect()
    assert info.value.attempts == 4
    assert len(slept) == 4


async def test_not_found_on_redial_ends_and_closes_are_redialled(realtime: Any) -> None:
    first, second = Conn(), Conn()
    first.feed({"type": "session.created"}, {"type": "response.done"})
    first.drop(1000)  # a clean close is not the end of the call
    second.feed({"type": "session.created"})
    second.drop(1001)
    connector = Connector(first, second, CallNotFound("gone", status_code=404))
    sideband, slept = _sideband(connector)
    async with sideband:
        seen = [event["type"] for event in await _until_call_over(sideband)]
    assert seen == ["session.created", "response.done", "session.created"]
    assert sideband.close_codes == [1000, 1001]
    assert slept == []  # both sockets had delivered events: re-dial at once


async def test_a_flapping_socket_backs_off(realtime: Any) -> None:
    flaps = [Conn() for _ in range(3)]
    for conn in flaps:
        conn.drop(1001)
    last = Conn()
    last.feed({"type": "session.created"})
    sideband, slept = _sideband(Connector(*flaps, last), backoff_initial=1.0)
    async with sideband:
        event = await sideband.__anext__()
    assert event["type"] == "session.created"
    assert slept == [0.5, 1.0, 2.0]


async def test_events_wait_out_a_redial_in_order(realtime: Any) -> None:
    first = Conn(fail_sends=1)
    first.feed({"type": "session.created"})
    second = Conn()
    second.feed({"type": "session.created"})
    sideband, _ = _sideband(Connector(first, second))
    async with sideband:
        await sideband.send({"type": "response.create", "n": 1})
        await sideband.send({"type": "response.create", "n": 2})
        assert (await sideband.__anext__())["type"] == "session.created"
        assert (await sideband.__anext__())["type"] == "session.created"  # after the re-dial
        await asyncio.wait_for(sideband.drain(), 5)
    assert first.sent == []
    assert [event["n"] for event in second.sent] == [1, 2]
    assert sideband.sent == 2


async def test_bounded_queue(realtime: Any) -> None:
    gate = asyncio.Event()
    conn = Conn(gate=gate)
    sideband, _ = _sideband(Connector(conn), queue_size=2)
    await sideband.connect()
    sideband.send_nowait({"type": "response.create", "n": 1})
    await asyncio.sleep(0)  # the writer takes n=1 and blocks on the gate
    sideband.send_nowait({"type": "response.create", "n": 2})
    sideband.send_nowait({"type": "response.create", "n": 3})
    with pytest.raises(SendQueueFull):
        sideband.send_nowait({"type": "response.create", "n": 4})
    assert sideband.unsent == 3
    waiting = asyncio.ensure_future(sideband.send({"type": "response.create", "n": 5}))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # send() waits for room instead of dropping
    gate.set()
    await asyncio.wait_for(waiting, 5)
    await asyncio.wait_for(sideband.drain(), 5)
    assert [event["n"] for event in conn.sent] == [1, 2, 3, 5]
    await sideband.close()


async def test_session_update_needs_session_type(realtime: Any) -> None:
    conn = Conn()
    sideband, _ = _sideband(Connector(conn))
    async with sideband:
        with pytest.raises(SessionConfigError) as info:
            await sideband.send({"type": "session.update", "session": {"instructions": "x"}})
        assert info.value.field == "session.type"
        with pytest.raises(SessionConfigError):
            sideband.send_nowait({"no": "type"})
        assert sideband.unsent == 0
    assert conn.sent == []


async def test_close_ends_iteration_and_refuses_sends(realtime: Any) -> None:
    conn = Conn()
    conn.feed("not json", [1, 2], {"type": "session.created"})
    sideband, _ = _sideband(Connector(conn))
    await sideband.connect()
    assert (await sideband.__anext__())["type"] == "session.created"  # junk skipped
    reader = asyncio.ensure_future(sideband.__anext__())
    await asyncio.sleep(0)
    await sideband.close()
    conn.drop(1000)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reader, 5)
    with pytest.raises(SidebandClosed):
        await sideband.send({"type": "response.create"})


async def test_a_socket_that_stops_answering_pings_is_redialled(settings: Any) -> None:
    """A raw WebSocket server that never answers pings: the keepalive closes the socket
    (1011), the sideband re-dials, and the second dial hears the call is over."""
    import base64
    import hashlib

    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        connections.append(1)
        if len(connections) > 1:
            body = b'{"error": {"code": "call_id_not_found", "message": "gone"}}'
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
            writer.close()
            return
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        payload = b'{"type": "session.created"}'
        writer.write(bytes([0x81, len(payload)]) + payload)
        await writer.drain()
        await reader.read()  # swallow pings; never answer
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings.DJANGO_REALTIME = {"API_KEY": KEY, "API_BASE": f"http://127.0.0.1:{port}/v1"}
    async with server:
        connector = WebsocketsConnector(ping_interval=0.05, ping_timeout=0.1)
        sideband = Sideband("rtc_ping", connector=connector)
        async with sideband:
            events = await asyncio.wait_for(_until_call_over(sideband), 10)
    assert [event["type"] for event in events] == ["session.created"]
    assert sideband.close_codes == [1011]
    assert len(connections) == 2
