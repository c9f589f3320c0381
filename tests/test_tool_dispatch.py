"""Server tools answered by the call controller over the fake sideband: the outputs reach
the fake in order, ONE ``response.create`` follows all calls of a response, every outcome
is a ``tool_call`` event, and no function call is answered twice."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from django_realtime import tools
from django_realtime.control.controller import CallController, Leash
from django_realtime.testing import FakeRealtimeServer, script
from django_realtime.testing.clock import ManualClock
from django_realtime.testing.sideband import FakeSidebands
from django_realtime.tools import ToolError, realtime_tool, registry, tool_definitions

pytestmark = pytest.mark.anyio

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _tools() -> Iterator[None]:
    before = dict(registry)

    @realtime_tool
    def add(user: Any, call: Any, a: int, b: int) -> dict[str, int]:
        """Add two numbers."""
        return {"sum": a + b}

    @realtime_tool
    async def hello(user: Any, call: Any, name: str) -> str:
        """Greet someone (an async tool)."""
        await asyncio.sleep(0)
        return f"hello {name}"

    @realtime_tool
    def broken(user: Any, call: Any) -> None:
        """Always fails."""
        raise RuntimeError("database password is hunter2")

    @realtime_tool
    def refuse(user: Any, call: Any) -> None:
        """Fails with a message for the model."""
        raise ToolError("that order is not yours")

    @realtime_tool(timeout=0.05)
    def slow(user: Any, call: Any) -> str:
        """Never in time."""
        RELEASE.wait(5)
        return "late"

    @realtime_tool(permission="auth.view_user")
    def secret(user: Any, call: Any) -> str:
        """Needs a permission."""
        return f"for {user.get_username()}"

    RELEASE.clear()
    yield
    RELEASE.set()
    for name in set(registry) - set(before):
        tools.unregister(name)


def session_with(*names: str) -> dict[str, Any]:
    return {"type": "realtime", "model": "gpt-realtime", "tools": tool_definitions(names)}


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


class Store:
    def __init__(self) -> None:
        self.status = "pending"
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def mark_active(self) -> None:
        self.status = "active"

    async def add_usage(self, metered: Any) -> None:
        pass

    async def record_event(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))

    async def mark_ended(self, reason: str) -> None:
        self.status = "ended"

    def tool_calls(self) -> list[dict[str, Any]]:
        return [data for kind, data in self.events if kind == "tool_call"]


class Call:
    def __init__(self, hub: FakeSidebands, *names: str, user: Any = None) -> None:
        self.hub = hub
        session = session_with(*names)
        self.call = hub.virtual_call(session)
        self.store = Store()
        self.controller = CallController(
            self.call.id, Leash(session=session), self.store, clock=ManualClock()
        )
        self.controller.tools.bind(user=user)
        self.task: asyncio.Future[str] | None = None

    async def start(self) -> Call:
        self.task = asyncio.ensure_future(self.controller.run())
        await _until(lambda: self.store.status == "active")
        return self

    async def play(self, *steps: dict[str, Any]) -> None:
        await asyncio.to_thread(self.hub.play, self.call.id, list(steps))

    def sent(self) -> list[dict[str, Any]]:
        return self.hub.sent(self.call.id)

    async def stop(self) -> None:
        await self.play(script.hangup())
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


def two_calls(first: tuple[str, str, str], second: tuple[str, str, str]) -> dict[str, Any]:
    items = [
        {
            "id": f"item_{c}",
            "type": "function_call",
            "status": "completed",
            "call_id": c,
            "name": n,
            "arguments": a,
        }
        for c, n, a in (first, second)
    ]
    return script.event(
        {
            "type": "response.done",
            "response": {
                "id": "resp_2",
                "object": "realtime.response",
                "status": "completed",
                "output": items,
                "usage": None,
            },
        }
    )


@pytest.fixture
def user(db: Any) -> User:
    return User.objects.create_user("ann", password="x")


@pytest.fixture
def make(realtime_sidebands: FakeSidebands, realtime_server: FakeRealtimeServer) -> Any:
    return lambda *names, user=None: Call(realtime_sidebands, *names, user=user)


def outputs(sent: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (e["type"], e["item"]["call_id"] if e["type"] == "conversation.item.create" else None)
        for e in sent
    ]


@pytest.mark.django_db(transaction=True)
async def test_two_calls_in_one_response_get_outputs_in_order_then_one_response_create(
    make: Any, user: User
) -> None:
    c = await make("add", "hello", user=user).start()
    await c.play(two_calls(("c1", "add", '{"a": 2, "b": 3}'), ("c2", "hello", '{"name": "Bo"}')))
    await _until(lambda: any(e["type"] == "response.create" for e in c.sent()))
    await c.play(script.silence(0.05))
    assert outputs(c.sent()) == [
        ("conversation.item.create", "c1"),
        ("conversation.item.create", "c2"),
        ("response.create", None),
    ]
    first, second = c.sent()[0]["item"], c.sent()[1]["item"]
    assert first == {"type": "function_call_output", "call_id": "c1", "output": '{"sum": 5}'}
    assert json.loads(second["output"]) == "hello Bo"
    calls = c.store.tool_calls()
    assert [(d["name"], d["outcome"], d["arguments"]) for d in calls] == [
        ("add", "ok", {"a": 2, "b": 3}),
        ("hello", "ok", {"name": "Bo"}),
    ]
    assert all(isinstance(d["duration_ms"], int) and d["duration_ms"] >= 0 for d in calls)
    await c.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_scripted_function_call_is_answered_once_even_when_seen_twice(
    make: Any, user: User
) -> None:
    c = await make("add", user=user).start()
    # arguments.done, then response.done with the same call_id: one answer.
    await c.play(script.function_call("add", {"a": 1, "b": 1}, call_id="once"))
    await _until(lambda: any(e["type"] == "response.create" for e in c.sent()))
    # the same response replayed (a re-dialled socket sees it again): still one answer
    await c.play(two_calls(("once", "add", '{"a": 1, "b": 1}'), ("once", "add", "{}")))
    await c.play(script.silence(0.1))
    assert outputs(c.sent()) == [("conversation.item.create", "once"), ("response.create", None)]
    assert len(c.store.tool_calls()) == 1
    await c.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_call_the_browser_answered_first_is_left_alone(make: Any, user: User) -> None:
    c = await make("add", user=user).start()
    await c.play(
        script.event(
            {
                "type": "conversation.item.added",
                "item": {"type": "function_call_output", "call_id": "br", "output": "{}"},
            }
        ),
        two_calls(("br", "add", '{"a": 1, "b": 1}'), ("br", "add", "{}")),
        script.silence(0.1),
    )
    assert c.sent() == []
    assert c.store.tool_calls() == []
    await c.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("name", "arguments", "outcome", "message"),
    [
        ("broken", "{}", "error", "broken failed; it is not available now."),
        ("refuse", "{}", "error", "that order is not yours"),
        ("slow", "{}", "timeout", "slow did not answer in time."),
        ("add", '{"a": "x"}', "invalid", None),
        ("secret", "{}", "denied", "The caller may not use secret."),
    ],
)
async def test_failures_become_short_outputs_and_events(
    make: Any, user: User, name: str, arguments: str, outcome: str, message: str | None
) -> None:
    c = await make(name, user=user).start()
    await c.play(script.function_call(name, arguments, call_id="f1"))
    await _until(lambda: any(e["type"] == "response.create" for e in c.sent()))
    output = json.loads(c.sent()[0]["item"]["output"])
    assert output["error"] == outcome
    if message is not None:
        assert output["message"] == message
    assert "hunter2" not in c.sent()[0]["item"]["output"]
    (event,) = c.store.tool_calls()
    assert event["outcome"] == outcome
    assert event["call_id"] == "f1"
    RELEASE.set()
    await c.stop()


@pytest.mark.django_db(transaction=True)
async def test_permission_granted_then_the_user_goes_inactive(make: Any, user: User) -> None:
    await user.user_permissions.aadd(await Permission.objects.aget(codename="view_user"))
    c = await make("secret", user=user).start()
    await c.play(script.function_call("secret", {}, call_id="p1"))
    await _until(lambda: len(c.sent()) == 2)
    assert json.loads(c.sent()[0]["item"]["output"]) == "for ann"
    await User.objects.filter(pk=user.pk).aupdate(is_active=False)
    await c.play(script.function_call("secret", {}, call_id="p2"))
    await _until(lambda: len(c.sent()) == 4)
    assert json.loads(c.sent()[2]["item"]["output"])["error"] == "denied"
    assert [d["outcome"] for d in c.store.tool_calls()] == ["ok", "denied"]
    await c.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_tool_the_session_does_not_serve_is_left_to_the_browser(make: Any) -> None:
    c = await make("add").start()
    await c.play(script.function_call("lookup", {"order": 1}, call_id="b1"), script.silence(0.05))
    assert c.sent() == []
    assert c.store.events[0][0] == "tool_call"  # the controller's own record of it
    assert "outcome" not in c.store.events[0][1]
    await c.stop()


@pytest.mark.django_db(transaction=True)
async def test_with_the_database_store_the_call_user_runs_the_tool_and_a_handover_never_reanswers(
    realtime_sidebands: FakeSidebands, realtime_server: FakeRealtimeServer
) -> None:
    from django_realtime.control.store import DatabaseCallStore
    from django_realtime.control.worker import leash_for
    from django_realtime.models import CallEvent, RealtimeCall, SessionPreset

    ann = await User.objects.acreate(username="ann")
    await ann.user_permissions.aadd(await Permission.objects.aget(codename="view_user"))
    preset = await SessionPreset.objects.acreate(
        name="T", slug="t", model="gpt-realtime", server_tools=["secret"]
    )
    session = session_with("secret", "add")  # "add" is in the session, not the preset's
    virtual = realtime_sidebands.virtual_call(session)
    row = await RealtimeCall.objects.acreate(
        call_id=virtual.id, origin="relay", user=ann, preset=preset, session=session
    )
    # A previous worker answered "old" before it died.
    await CallEvent.objects.acreate(call=row, kind="tool_call", data={"call_id": "old"})
    call = await RealtimeCall.objects.select_related("preset").aget(pk=row.pk)
    controller = CallController(
        call.call_id, leash_for(call), DatabaseCallStore(call, "w2"), clock=ManualClock()
    )
    task = asyncio.ensure_future(controller.run())
    steps = [
        script.function_call("secret", {}, call_id="old"),
        script.function_call("add", {"a": 1, "b": 2}, call_id="not_ours"),
        script.function_call("secret", {}, call_id="new"),
    ]
    await asyncio.to_thread(realtime_sidebands.play, virtual.id, steps)
    await _until(lambda: len(realtime_sidebands.sent(virtual.id)) == 2)
    await asyncio.to_thread(realtime_sidebands.play, virtual.id, [script.hangup()])
    await asyncio.wait_for(task, 10)
    sent = realtime_sidebands.sent(virtual.id)
    assert outputs(sent) == [("conversation.item.create", "new"), ("response.create", None)]
    assert json.loads(sent[0]["item"]["output"]) == "for ann"
    recorded = [e.data async for e in CallEvent.objects.filter(call=row, kind="tool_call")]
    assert [(d["call_id"], d.get("outcome")) for d in recorded] == [
        ("old", None),
        ("not_ours", None),  # the controller's own note of a call it leaves to the browser
        ("new", "ok"),
    ]
