"""Shared fixtures.

* every test starts with an empty cache (rate-limit counters) and a pristine
  upstream client, and ``client.sleep`` / ``client.async_sleep`` never really sleep;
* every log record of every test is captured at DEBUG and checked, at teardown, for
  the server's API key and any ``ek_`` secret minted during the test;
* ``upstream`` records what would have been sent to OpenAI (an ``httpx.MockTransport``
  through ``client.set_transport``) and answers like the GA API unless told otherwise;
* ``api_client`` is a DRF ``APIClient`` with ``enforce_csrf_checks=True``, logged in
  through the session, sending a valid CSRF token; every response it gets is checked
  for the API key.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import inspect
import itertools
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from rest_framework.test import APIClient

from django_realtime import client as upstream_client
from django_realtime import signals
from django_realtime.models import SessionPreset
from django_realtime.testing import FakeRealtimeAPI, MintedSecret
from tests import settings as test_settings

pytest_plugins = ["django_realtime.testing.pytest_plugin"]

API_KEY: str = test_settings.DJANGO_REALTIME["API_KEY"]
API_BASE: str = test_settings.DJANGO_REALTIME["API_BASE"]
CSRF_TOKEN = "a" * 16 + "B" * 16  # 32 chars of the CSRF alphabet

#: ``ek_`` values handed out during the current test (checked against every log record).
MINTED: list[str] = []

OFFER_SDP = (
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=mid:0\r\n"
    "a=sendrecv\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=mid:1\r\n"
    "a=sctp-port:5000\r\n"
)
ANSWER_SDP = (
    "v=0\r\n"
    "o=- 1 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
)


# --- isolation ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolate() -> Iterator[None]:
    cache.clear()
    MINTED.clear()
    upstream_client.set_transport(None)
    yield
    upstream_client.set_transport(None)
    upstream_client.reset()
    cache.clear()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every retry delay the client asked for, in order (nothing really sleeps)."""
    recorded: list[float] = []

    def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    async def fake_async_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(upstream_client, "sleep", fake_sleep)
    monkeypatch.setattr(upstream_client, "async_sleep", fake_async_sleep)
    return recorded


#: Where ``frozen_clock`` stops the wall clock (any instant works: it does not move).
FROZEN_AT = datetime.datetime(2026, 3, 2, 9, 0, 30, tzinfo=datetime.timezone.utc)


@pytest.fixture
def frozen_clock() -> Iterator[time_machine.Coordinates]:
    """Wall-clock time (``time.time``, ``datetime.now``) stands still until the test
    moves it with ``frozen_clock.shift(seconds)``; monotonic clocks, and so timeouts,
    run on. django-ratelimit's fixed window follows ``time.time()``, so a rate-limit
    test cannot straddle a window boundary by chance."""
    with time_machine.travel(FROZEN_AT, tick=False) as coordinates:
        yield coordinates


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _record_texts(record: logging.LogRecord) -> list[str]:
    texts = [str(record.msg), repr(record.args)]
    with contextlib.suppress(Exception):  # a broken format string is not checked here
        texts.append(record.getMessage())
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        texts.append(record.exc_text)
    return texts


@pytest.fixture(autouse=True)
def log_records(request: pytest.FixtureRequest) -> Iterator[list[logging.LogRecord]]:
    """All log records of the test (root logger, DEBUG); no secret may appear in any."""
    handler = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    minted = [*request.node.stash.get(_FAKE_MINTED, []), *_fake_minted(request.node)]
    leaks = find_leaks(handler.records, [API_KEY, *MINTED, *minted])
    assert not leaks, f"secrets leaked into log records: {leaks}"


def find_leaks(records: list[logging.LogRecord], secrets: list[str]) -> list[str]:
    """Logger names and messages of the records that contain any of ``secrets``."""
    return [
        f"{record.name}: {record.msg!r}"
        for record in records
        if any(secret and secret in text for text in _record_texts(record) for secret in secrets)
    ]


#: What the fakes had minted when the test body ended (``realtime_server`` forgets its
#: secrets at teardown, before the leak guard looks).
_FAKE_MINTED = pytest.StashKey[list[str]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    finally:
        item.stash[_FAKE_MINTED] = _fake_minted(item)
        if inspect.iscoroutinefunction(getattr(item, "obj", None)):
            # Whatever the test's event loop left unclosed is collected now, so its
            # ResourceWarning names this test instead of surfacing inside a later one
            # (inside ``compile()`` it even turns into a SystemError).
            gc.collect()


def _fake_minted(node: Any) -> list[str]:
    """``ek_`` values the fake Realtime API minted, when the test (``node``) used it.

    Reads the fake's documented state (``secrets``: value -> :class:`MintedSecret`);
    when that shape changes this raises instead of quietly checking nothing."""
    funcargs: dict[str, Any] = getattr(node, "funcargs", {})
    fakes: list[FakeRealtimeAPI] = []
    if "realtime_fake" in funcargs:
        fakes.append(funcargs["realtime_fake"])
    if "realtime_server" in funcargs:
        fakes.append(funcargs["realtime_server"].fake)
    values: list[str] = []
    for fake in fakes:
        minted = fake.secrets
        if not isinstance(minted, dict):
            raise TypeError(f"FakeRealtimeAPI.secrets changed shape: {type(minted)!r}")
        for value, secret in minted.items():
            if not (isinstance(secret, MintedSecret) and secret.value == value):
                raise TypeError(f"FakeRealtimeAPI.secrets changed shape: {secret!r}")
            values.append(value)
    return values


def assert_no_secrets(text: str | bytes) -> None:
    """Neither the server key nor any secret minted in this test is in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    assert API_KEY not in text
    for value in MINTED:
        assert value not in text


# --- the published schema -------------------------------------------------------------

SCHEMA_FILE = Path(__file__).parent / "data" / "openapi_realtime_schemas.json"
SCHEMA_URI = "urn:openai:realtime-schemas"


@functools.cache
def _schema_registry() -> Registry:
    document = json.loads(SCHEMA_FILE.read_text())
    return Registry().with_resource(SCHEMA_URI, Resource.from_contents(document))


def schema_errors(instance: Any, name: str) -> list[str]:
    """Why ``instance`` is not a valid ``#/$defs/<name>`` of the OpenAPI subset."""
    validator = Draft202012Validator(
        {"$ref": f"{SCHEMA_URI}#/$defs/{name}"}, registry=_schema_registry()
    )
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def assert_valid_request(body: Any) -> None:
    """``body`` is a valid ``RealtimeCreateClientSecretRequest``."""
    assert schema_errors(body, "RealtimeCreateClientSecretRequest") == []


# --- the upstream recorder -----------------------------------------------------------

Responder = Callable[[httpx.Request], httpx.Response]


class Upstream:
    """An ``httpx.MockTransport`` standing in for ``api.openai.com``.

    Without instructions it answers like the GA API: ``client_secrets`` -> 200 with a
    fresh ``ek_`` value, ``calls`` -> 201 with an answer SDP and a ``Location``, call
    control -> 200. ``queue(...)`` makes the next requests answer (or raise) otherwise.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._queue: deque[httpx.Response | Exception | Responder] = deque()
        self._ids = itertools.count(1)
        self.transport = httpx.MockTransport(self._handle)

    # instructions
    def queue(self, *answers: httpx.Response | Exception | Responder) -> None:
        self._queue.extend(answers)

    def respond(
        self,
        status: int = 200,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        for _ in range(times):
            self._queue.append(
                httpx.Response(status, json=json, content=content, headers=headers or {})
            )

    def error(self, status: int, code: str = "error", message: str = "failed", **kw: Any) -> None:
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
        self.respond(status, json=body, **kw)

    # observations
    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)

    # handling
    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self._queue:
            answer = self._queue.popleft()
            if isinstance(answer, Exception):
                raise answer
            if callable(answer) and not isinstance(answer, httpx.Response):
                return answer(request)
            return answer
        return self.default(request)

    def default(self, request: httpx.Request) -> httpx.Response:
        request_id = f"req_{next(self._ids):04d}"
        path = request.url.path
        if path.endswith("/realtime/client_secrets"):
            body = json.loads(request.content or b"{}")
            value = "ek_" + secrets.token_hex(12)
            MINTED.append(value)
            seconds = body.get("expires_after", {}).get("seconds", 600)
            session = {**body.get("session", {}), "id": "sess_test", "object": "realtime.session"}
            return httpx.Response(
                200,
                json={"value": value, "expires_at": int(time.time()) + seconds, "session": session},
                headers={"x-request-id": request_id},
            )
        if path.endswith("/realtime/calls"):
            return httpx.Response(
                201,
                text=ANSWER_SDP,
                headers={
                    "content-type": "application/sdp",
                    "location": "/v1/realtime/calls/rtc_test123",
                    "x-request-id": request_id,
                },
            )
        return httpx.Response(200, headers={"x-request-id": request_id})


@pytest.fixture
def upstream() -> Upstream:
    recorder = Upstream()
    upstream_client.set_transport(recorder.transport)
    return recorder


def secret_response(value: str | None = None, **extra: Any) -> httpx.Response:
    value = value or "ek_" + secrets.token_hex(12)
    MINTED.append(value)
    body = {"value": value, "expires_at": 1_900_000_000, "session": {"type": "realtime"}}
    body.update(extra)
    return httpx.Response(200, json=body, headers={"x-request-id": "req_ok"})


# --- users, groups, presets -------------------------------------------------------------


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(username: str = "alice", *, groups: tuple[Group, ...] = (), **kw: Any) -> User:
        user = User.objects.create_user(username=username, password="pw", **kw)
        if groups:
            user.groups.add(*groups)
        return user

    return make


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user("alice")


@pytest.fixture
def other_user(make_user: Callable[..., User]) -> User:
    return make_user("bob")


@pytest.fixture
def group(db: None) -> Group:
    return Group.objects.create(name="callers")


@pytest.fixture
def make_preset(db: None) -> Callable[..., SessionPreset]:
    """Create a validated preset: realtime ``gpt-realtime`` unless told otherwise."""
    counter = itertools.count(1)

    def make(slug: str | None = None, *, groups: tuple[Group, ...] = (), **fields: Any):
        n = next(counter)
        values: dict[str, Any] = {"slug": slug or f"preset-{n}", "name": f"Preset {n}"}
        if fields.get("session_type") != "transcription":
            values["model"] = "gpt-realtime"
        values.update(fields)
        preset = SessionPreset(**values)
        preset.full_clean()
        preset.save()
        if groups:
            preset.allowed_groups.add(*groups)
        return preset

    return make


@pytest.fixture
def preset(make_preset: Callable[..., SessionPreset]) -> SessionPreset:
    return make_preset("assistant")


# --- HTTP clients ---------------------------------------------------------------------


class CheckedAPIClient(APIClient):
    """An ``APIClient`` that asserts no response carries the server's API key.

    (A mint response carries an ``ek_`` value by design; nothing else may.)
    """

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        assert API_KEY not in response.content.decode("utf-8", "replace")
        for name, value in response.items():
            assert API_KEY not in f"{name}: {value}"
        return response


def _csrf_client(user: User | None) -> CheckedAPIClient:
    api = CheckedAPIClient(enforce_csrf_checks=True)
    if user is not None:
        api.force_login(user)
    api.cookies["csrftoken"] = CSRF_TOKEN
    api.credentials(HTTP_X_CSRFTOKEN=CSRF_TOKEN)
    return api


@pytest.fixture
def api_client(user: User) -> CheckedAPIClient:
    """Logged in as ``user`` through the session, CSRF enforced and satisfied."""
    return _csrf_client(user)


@pytest.fixture
def anon_client(db: None) -> CheckedAPIClient:
    return _csrf_client(None)


@pytest.fixture
def client_for() -> Callable[[User | None], CheckedAPIClient]:
    return _csrf_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def issued() -> Iterator[mock.Mock]:
    """A receiver connected to ``secret_issued`` for the test."""
    handler = mock.Mock()
    signals.secret_issued.connect(handler, dispatch_uid="test-issued")
    yield handler
    signals.secret_issued.disconnect(dispatch_uid="test-issued")


@pytest.fixture
def failed() -> Iterator[mock.Mock]:
    """A receiver connected to ``secret_failed`` for the test."""
    handler = mock.Mock()
    signals.secret_failed.connect(handler, dispatch_uid="test-failed")
    yield handler
    signals.secret_failed.disconnect(dispatch_uid="test-failed")
