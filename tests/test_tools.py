"""Server-side tools: schemas from signatures, the registry, its system checks, and
running a function call as the call's user (permission, timeout, errors, concurrency)."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import re
import threading
import typing
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_realtime import checks as settings_checks
from django_realtime import tools
from django_realtime.exceptions import RealtimeConfigurationError, RealtimeError
from django_realtime.tools import (
    ToolDefinitionError,
    ToolError,
    build_tool,
    realtime_tool,
    registry,
    run_tool,
    runner,
    tool_definitions,
)
from django_realtime.tools import checks as tool_checks
from tests.conftest import schema_errors


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@pytest.fixture(autouse=True)
def _registry_as_it_was() -> Iterator[None]:
    """Tools registered by a test are gone after it; autodiscovered ones stay."""
    before = dict(registry)
    yield
    for name in set(registry) - set(before):
        tools.unregister(name)
    for name, tool in before.items():
        if registry.get(name) is not tool:
            tools.unregister(name)
            tools.register(tool)


def tool_with(hint: Any) -> Callable[..., Any]:
    def tool(user: Any, call: Any, value: Any) -> None:
        """Take one value."""

    tool.__annotations__ = {"value": hint}
    return tool


# --- schemas from signatures ------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (Literal["metric", "imperial"], {"type": "string", "enum": ["metric", "imperial"]}),
        (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}),
        (Literal["any", 0], {"enum": ["any", 0]}),
        (Colour, {"type": "string", "enum": ["red", "green"]}),
        (Priority, {"type": "integer", "enum": [1, 2]}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (typing.List[int], {"type": "array", "items": {"type": "integer"}}),  # noqa: UP006
        (list[Colour], {"type": "array", "items": {"type": "string", "enum": ["red", "green"]}}),
        (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045
        (int | None, {"type": ["integer", "null"]}),
        (Colour | None, {"type": ["string", "null"], "enum": ["red", "green", None]}),
        (Literal["a", 1] | None, {"enum": ["a", 1, None]}),
        (list[str] | None, {"type": ["array", "null"], "items": {"type": "string"}}),
        (Annotated[str, "The order number"], {"type": "string", "description": "The order number"}),
        (
            Annotated[float, "Kelvin"] | None,
            {"type": ["number", "null"], "description": "Kelvin"},
        ),
    ],
)
def test_schema_of_each_supported_hint(hint: Any, schema: dict[str, Any]) -> None:
    tool = build_tool(tool_with(hint))
    assert tool.parameters == {
        "type": "object",
        "properties": {"value": schema},
        "required": ["value"],
        "additionalProperties": False,
    }


def order_lookup(
    user: Any,
    call: Any,
    order_id: str,
    limit: int = 10,
    colour: Colour | None = None,
    tags: list[str] | None = None,
    units: Literal["metric", "imperial"] = "metric",
    ratio: float = 1.0,
) -> dict[str, Any]:
    """Look up one of the caller's
    orders by number.

    Everything after the first paragraph is for the programmer, not the model.
    """
    return {"order_id": order_id}


def test_a_whole_signature_with_string_annotations_and_defaults() -> None:
    tool = build_tool(order_lookup, permission="auth.view_user")
    assert (tool.name, tool.permission, tool.timeout, tool.is_async) == (
        "order_lookup",
        "auth.view_user",
        None,
        False,
    )
    assert tool.description == "Look up one of the caller's orders by number."
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "limit": {"type": "integer"},
            "colour": {"type": ["string", "null"], "enum": ["red", "green", None]},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "units": {"type": "string", "enum": ["metric", "imperial"]},
            "ratio": {"type": "number"},
        },
        "required": ["order_id"],
        "additionalProperties": False,
    }
    assert tool.definition() == {
        "type": "function",
        "name": "order_lookup",
        "description": "Look up one of the caller's orders by number.",
        "parameters": tool.parameters,
    }
    assert schema_errors(tool.definition(), "RealtimeFunctionTool") == []


def test_no_parameters_no_docstring() -> None:
    def ping(user: Any, call: Any) -> str:
        return "pong"

    tool = build_tool(ping)
    assert tool.description == ""
    assert tool.parameters == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


def test_explicit_parameters_description_name_and_timeout() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City, in English"}},
        "required": ["city"],
    }

    @realtime_tool(
        name="city-time", description="The time in a city.", parameters=schema, timeout=2
    )
    def time_in(user: Any, call: Any, city: Any) -> str:
        """Not this docstring."""
        return "noon"

    schema["required"] = []  # the registry took a copy
    tool = registry["city-time"]
    assert tool.parameters["required"] == ["city"]
    assert (tool.description, tool.timeout, tool.explicit_parameters) == (
        "The time in a city.",
        2.0,
        True,
    )
    tool.definition()["parameters"]["properties"].clear()  # and so does every definition
    assert "city" in tool.parameters["properties"]


def test_explicit_parameters_excuse_hints_we_cannot_describe() -> None:
    @realtime_tool(parameters={"type": "object", "properties": {"point": {"type": "object"}}})
    def plot(user: Any, call: Any, point: dict[str, float] | None = None) -> None:
        pass

    assert registry["plot"].arguments[0].hint is tools.registration.NO_HINT
    assert registry["plot"].bind({"point": {"x": 1}}) == {"point": {"x": 1}}


def test_bare_decorator_returns_the_function_unchanged() -> None:
    def shout(user: Any, call: Any, text: str) -> str:
        """Say it louder."""
        return text.upper()

    assert realtime_tool(shout) is shout
    assert shout(None, None, "hi") == "HI"
    tool = registry["shout"]
    assert (tool.name, tool.permission, tool.description) == ("shout", None, "Say it louder.")


def test_the_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        registry["x"] = registry["whoami"]  # type: ignore[index]


# --- definition errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        (dict, r"parameter 'value': dict is not supported; use str, int"),
        (int | str, r"parameter 'value': .*unions other than T \| None are not supported"),
        (list, r"parameter 'value': list needs an item type"),
        (tuple[int, int], r"parameter 'value': .*is not supported"),
        (Literal[None], r"parameter 'value': .*choices must be strings, numbers or booleans"),
        (list[object], r"parameter 'value': object is not supported"),
    ],
)
def test_unsupported_hints_name_the_parameter(hint: Any, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=r"Realtime tool 'tool', " + message):
        realtime_tool(tool_with(hint))
    assert "tool" not in registry


def test_a_missing_hint_and_an_unresolvable_one() -> None:
    def untyped(user, call, city):  # type: ignore[no-untyped-def]
        pass

    with pytest.raises(ToolDefinitionError, match=r"parameter 'city' needs a type hint"):
        build_tool(untyped)

    def forward(user: Any, call: Any, city: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(
        ToolDefinitionError, match=r"type hints of realtime tool 'forward'.*NoSuchType"
    ):
        build_tool(forward)


def star_args(user: Any, call: Any, *cities: str) -> None:
    pass


def star_kwargs(user: Any, call: Any, **extra: str) -> None:
    pass


def only_user(user: Any) -> None:
    pass


def positional_only(user: Any, call: Any, city: str, /) -> None:
    pass


def generator(user: Any, call: Any) -> Iterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("func", "options", "message"),
    [
        (star_args, {}, r"parameter 'cities': the model passes arguments by keyword only"),
        (star_kwargs, {}, r"\*\*extra cannot be described from the signature"),
        (only_user, {}, r"must take \(user, call, \.\.\.\) as its first two parameters"),
        (positional_only, {}, r"parameter 'city': the model passes arguments by keyword only"),
        (generator, {}, r"must return, not yield"),
        (order_lookup, {"timeout": 0}, r"timeout= must be a positive number"),
        (order_lookup, {"timeout": True}, r"timeout= must be a positive number"),
        (order_lookup, {"parameters": [1]}, r"parameters= must be a dict"),
        (order_lookup, {"description": 5}, r"description= must be a str"),
    ],
)
def test_signatures_we_cannot_call(func: Any, options: Any, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):
        build_tool(func, **options)


def test_definition_errors_are_configuration_errors() -> None:
    assert issubclass(ToolDefinitionError, RealtimeConfigurationError)
    assert issubclass(tools.ArgumentError, RealtimeError)


def test_options_must_be_keywords() -> None:
    with pytest.raises(ToolDefinitionError, match=r"options as keywords"):
        realtime_tool("orders.view_order")  # type: ignore[call-overload]


def test_a_duplicate_name_is_an_error() -> None:
    realtime_tool(order_lookup)
    with pytest.raises(ToolDefinitionError, match=r"'order_lookup' is already registered \("):
        realtime_tool(order_lookup)
    realtime_tool(name="order_lookup_2")(order_lookup)
    assert {"order_lookup", "order_lookup_2"} <= set(registry)


# --- autodiscovery and definitions ------------------------------------------------------


def test_installed_apps_realtime_tools_are_autodiscovered() -> None:
    assert registry["whoami"].func.__module__ == "tests.testapp.realtime_tools"
    assert registry["whoami"].permission == "auth.view_user"
    assert registry["spell"].description == "Spell a word letter by letter."
    tools.autodiscover()  # again: each module is imported once, nothing is registered twice


def test_tool_definitions_in_order_once_unknown_left_out(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="django_realtime.tools"):
        definitions = tool_definitions(["spell", "gone", "whoami", "spell"])
    assert [d["name"] for d in definitions] == ["spell", "whoami"]
    assert definitions[1] == {
        "type": "function",
        "name": "whoami",
        "description": "Tell the caller which account they are signed in with.",
        "parameters": {
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        },
    }
    assert [r.getMessage() for r in caplog.records] == [
        "No realtime tool named 'gone' is registered; left out."
    ]
    for definition in definitions:
        assert schema_errors(definition, "RealtimeFunctionTool") == []
    assert (
        schema_errors(
            {"type": "realtime", "model": "gpt-realtime", "tools": definitions},
            "RealtimeSessionCreateRequestGA",
        )
        == []
    )
    assert tools.unknown_tools(["spell", "gone"]) == ["gone"]
    assert ("spell", "spell: Spell a word letter by letter.") in tools.tool_choices()


def test_with_server_tools_appends_and_replaces_a_same_named_preset_tool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = [
        {"type": "function", "name": "spell", "description": "browser's", "parameters": {}},
        {"type": "function", "name": "scroll", "description": "browser's", "parameters": {}},
        {"type": "mcp", "server_label": "docs", "server_url": "https://mcp.example"},
    ]
    with caplog.at_level(logging.WARNING, logger="django_realtime.tools"):
        merged = tools.with_server_tools(own, ["spell", "whoami"])
    assert [(t["type"], t.get("name")) for t in merged] == [
        ("function", "scroll"),
        ("mcp", None),
        ("function", "spell"),
        ("function", "whoami"),
    ]
    assert merged[2] == registry["spell"].definition()
    assert [r.getMessage() for r in caplog.records] == [
        "The server tool 'spell' replaces a preset tool of that name."
    ]
    assert own[0]["description"] == "browser's"  # the preset's list is left alone


# --- system checks ----------------------------------------------------------------------


def check_ids() -> list[str]:
    return [message.id or "" for message in tool_checks.check_tools()]


def test_the_test_apps_tools_pass_the_checks() -> None:
    assert check_ids() == []


def takes_a(user: Any, call: Any, a: str) -> None:
    pass


OBJECT_A = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"name": "order status"}, ["E010"]),
        ({"name": "x" * 65}, ["E010"]),
        ({"name": "commandé"}, ["E010"]),
        ({"name": "x" * 64}, []),
        ({"name": "get-order_2"}, []),
        ({"parameters": {}}, ["E011"]),
        ({"parameters": {"type": "array"}}, ["E011"]),
        ({"parameters": {"properties": {"a": {}}}}, ["E011"]),
        ({"parameters": {"type": "object", "properties": {"a": "string"}}}, ["E011"]),
        ({"parameters": {**OBJECT_A, "required": ["a", "b"]}}, ["E011"]),
        ({"parameters": {**OBJECT_A, "properties": {"a": {"maximum": float("nan")}}}}, ["E011"]),
        ({"parameters": {**OBJECT_A, "properties": {"a": {}, "b": {}}}}, ["E013"]),
        ({"parameters": {"type": "object", "properties": {}}}, ["E013"]),
        ({"parameters": OBJECT_A}, []),
        ({"permission": "view_order"}, ["E012"]),
        ({"permission": "orders view_order"}, ["E012"]),
        ({"permission": 7}, ["E012"]),
        ({"permission": "orders.view_order"}, ["W004"]),
        ({"permission": "auth.view_user"}, []),
        ({"permission": "django_realtime.change_sessionpreset"}, []),
        ({"name": "bad name", "permission": "nope"}, ["E010", "E012"]),
    ],
)
def test_exact_ids_per_bad_tool(options: dict[str, Any], expected: list[str]) -> None:
    tools.register(build_tool(takes_a, **options))
    assert check_ids() == [f"django_realtime.{i}" for i in expected]


def test_a_bad_tool_fails_manage_py_check() -> None:
    realtime_tool(name="look up")(takes_a)
    with pytest.raises(SystemCheckError, match=r"django_realtime\.E010"):
        call_command("check")


def test_only_the_named_apps_tools_are_checked() -> None:
    from django.apps import apps

    realtime_tool(name="look up")(takes_a)  # defined in tests, not in an installed app
    assert check_ids() == ["django_realtime.E010"]
    testapp = apps.get_app_config("testapp")
    assert tool_checks.check_tools(app_configs=[testapp]) == []


def test_tool_check_ids_are_unique_documented_and_not_taken() -> None:
    source = Path(tool_checks.__file__).read_text()
    used = re.findall(r'id=f"\{ID\}([EW]\d{3})"', source)
    assert len(used) == len(set(used))
    assert set(used) == set(re.findall(r"\b([EW]\d{3})\b", tool_checks.__doc__ or ""))
    taken = re.findall(r'id=f"\{ID\}([EW]\d{3})"', Path(settings_checks.__file__).read_text())
    assert not set(used) & set(taken)


# --- running a function call ------------------------------------------------------------


def register_fn(func: Callable[..., Any], **options: Any) -> str:
    realtime_tool(**options)(func)
    return options.get("name") or func.__name__


def output(result: tools.ToolResult) -> Any:
    return json.loads(result.output)


@pytest.fixture
def viewer(make_user: Callable[..., User]) -> User:
    user = make_user("viewer")
    user.user_permissions.add(Permission.objects.get(codename="view_user"))
    return User.objects.get(pk=user.pk)


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_ok_runs_a_sync_tool_off_the_loop_with_db_access(viewer: User) -> None:
    seen: dict[str, Any] = {}

    def account(user: Any, call: Any, colour: Colour, limit: int, ratio: float) -> dict[str, Any]:
        seen.update(thread=threading.current_thread().name, call=call)
        seen.update(args=(colour, limit, ratio))
        username = User.objects.filter(pk=user.pk).values_list("username", flat=True).get()
        return {"username": username, "at": datetime(2026, 12, 2, tzinfo=timezone.utc)}

    register_fn(account, permission="auth.view_user")
    call = object()
    result = await run_tool(
        "account", '{"colour": "red", "limit": 3.0, "ratio": 2}', user=viewer, call=call, timeout=5
    )
    assert (result.outcome, result.output) == (
        "ok",
        '{"username": "viewer", "at": "2026-12-02T00:00:00Z"}',
    )
    assert seen["thread"].startswith("realtime-tool")
    assert seen["call"] is call
    colour, limit, ratio = seen["args"]
    assert (colour, type(limit), type(ratio)) == (Colour.RED, int, float)
    assert result.event_data() == {
        "name": "account",
        "arguments": {"colour": "red", "limit": 3.0, "ratio": 2},
        "outcome": "ok",
        "duration_ms": result.duration_ms,
        "output": result.output,
    }


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_async_tool_runs_on_the_loop(user: User) -> None:
    loop_thread = threading.current_thread()

    async def price(user: Any, call: Any, amount: int) -> Decimal:
        assert threading.current_thread() is loop_thread
        await asyncio.sleep(0)
        return Decimal(amount) / 4

    register_fn(price)
    result = await run_tool("price", '{"amount": 5}', user=user, call=None, timeout=5)
    assert (result.outcome, result.output) == ("ok", '"1.25"')


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_duration_is_measured_on_the_monotonic_clock(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter([100.0, 100.25])
    monkeypatch.setattr(runner, "perf_counter", lambda: next(ticks))
    result = await run_tool("spell", '{"word": "ok"}', user=user, call=None, timeout=5)
    assert (result.outcome, result.output, result.duration_ms) == ("ok", '"O-K"', 250)


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_permission_refused_and_granted_and_revoked_mid_call(
    user: User, viewer: User, make_user: Callable[..., User]
) -> None:
    refused = await run_tool("whoami", "{}", user=user, call=None, timeout=5)
    assert (refused.outcome, output(refused)) == (
        "denied",
        {"error": "denied", "message": "The caller may not use whoami."},
    )
    granted = await run_tool("whoami", "{}", user=viewer, call=None, timeout=5)
    assert (granted.outcome, granted.output) == ("ok", '{"username": "viewer"}')
    await viewer.user_permissions.aclear()  # the in-memory viewer still caches its perms
    revoked = await run_tool("whoami", "{}", user=viewer, call=None, timeout=5)
    assert revoked.outcome == "denied"
    boss = await User.objects.acreate(username="boss", is_superuser=True)
    assert (await run_tool("whoami", "{}", user=boss, call=None, timeout=5)).outcome == "ok"


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_user_gone_inactive_or_deleted_is_refused_even_open_tools(viewer: User) -> None:
    await User.objects.filter(pk=viewer.pk).aupdate(is_active=False)
    assert viewer.is_active  # the call's copy still says so
    for name in ("whoami", "spell"):
        result = await run_tool(name, '{"word": "a"}', user=viewer, call=None, timeout=5)
        assert result.outcome == "denied"
    await User.objects.filter(pk=viewer.pk).adelete()
    assert (
        await run_tool("spell", '{"word": "a"}', user=viewer, call=None, timeout=5)
    ).outcome == ("denied")


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_call_without_a_user_may_use_only_open_tools() -> None:
    from django.contrib.auth.models import AnonymousUser

    for nobody in (None, AnonymousUser()):
        spelled = await run_tool("spell", '{"word": "ab"}', user=nobody, call=None, timeout=5)
        assert (spelled.outcome, spelled.output) == ("ok", '"A-B"')
        refused = await run_tool("whoami", "{}", user=nobody, call=None, timeout=5)
        assert refused.outcome == "denied"


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_exception_is_logged_never_shown(
    user: User, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(user: Any, call: Any) -> None:
        raise RuntimeError("connection to db-internal:5432 refused")

    register_fn(broken)
    with caplog.at_level(logging.INFO, logger="django_realtime.tools"):
        result = await run_tool("broken", "{}", user=user, call=None, timeout=5)
    assert (result.outcome, output(result)) == (
        "error",
        {"error": "error", "message": "broken failed; it is not available now."},
    )
    assert "db-internal" not in result.output
    [record] = [r for r in caplog.records if r.name == "django_realtime.tools.runner"]
    assert (record.levelno, record.getMessage()) == (logging.ERROR, "Realtime tool broken raised.")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_tool_error_text_reaches_the_model_and_own_timeouts_are_errors(user: User) -> None:
    async def lookup(user: Any, call: Any, order_id: str) -> None:
        raise ToolError(f"There is no order {order_id}.")

    def slow_upstream(user: Any, call: Any) -> None:
        raise TimeoutError("the shop's API timed out")

    def unserialisable(user: Any, call: Any) -> object:
        return object()

    assert issubclass(ToolError, RealtimeError)
    for func in (lookup, slow_upstream, unserialisable):
        register_fn(func)
    result = await run_tool("lookup", '{"order_id": "A7"}', user=user, call=None, timeout=5)
    assert (result.outcome, output(result)["message"]) == ("error", "There is no order A7.")
    for name in ("slow_upstream", "unserialisable"):
        result = await run_tool(name, "{}", user=user, call=None, timeout=5)
        assert (result.outcome, output(result)["error"]) == ("error", "error")


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_async_tool_past_its_timeout_is_cancelled(user: User) -> None:
    gate = asyncio.Event()  # never opened: the tool cannot finish on its own
    cancelled: list[bool] = []

    async def stuck(user: Any, call: Any) -> None:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    register_fn(stuck)
    result = await asyncio.wait_for(run_tool("stuck", "{}", user=user, call=None, timeout=0.01), 10)
    assert (result.outcome, output(result)) == (
        "timeout",
        {"error": "timeout", "message": "stuck did not answer in time."},
    )
    assert cancelled == [True]


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_sync_tool_past_its_own_timeout_is_abandoned_not_awaited(user: User) -> None:
    release, finished = threading.Event(), threading.Event()

    def hung(user: Any, call: Any) -> str:
        release.wait(10)
        finished.set()
        return "late"

    register_fn(hung, timeout=0.01)  # the tool's own timeout beats the caller's 60 s
    result = await asyncio.wait_for(run_tool("hung", "{}", user=user, call=None, timeout=60), 10)
    assert result.outcome == "timeout"
    assert not finished.is_set()  # we answered while the thread was still blocked
    release.set()
    assert await asyncio.to_thread(finished.wait, 10)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("not json", "the arguments are not valid JSON"),
        ('{"word": NaN}', "the arguments are not valid JSON"),
        ('["ok"]', "the arguments must be a JSON object"),
        ("{}", "missing argument word"),
        ('{"word": 5}', "word must be a string"),
        ('{"word": "ok", "alphabet": "greek"}', 'alphabet must be one of "nato", "plain"'),
        ('{"word": "ok", "loud": true}', "unknown argument 'loud'"),
        ('{"word": "' + "a" * 70_000 + '"}', "the arguments are too long"),
    ],
)
@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_bad_arguments_are_invalid(user: User, arguments: str, message: str) -> None:
    result = await run_tool("spell", arguments, user=user, call=None, timeout=5)
    assert (result.outcome, output(result)) == (
        "invalid",
        {"error": "invalid", "message": f"Invalid arguments for spell: {message}."},
    )


@pytest.mark.parametrize(
    ("hint", "value", "message"),
    [
        (int, 2.5, "value must be an integer"),
        (int, True, "value must be an integer"),
        (float, "1", "value must be a number"),
        (bool, 1, "value must be a boolean"),
        (Literal[1, 2], True, "value must be one of 1, 2"),
        (Priority, 3, "value must be one of 1, 2"),
        (list[int], [1, "2"], "value[1] must be an integer"),
        (list[int], "1,2", "value must be a list"),
        (str, None, "value must be a string"),
    ],
)
def test_coercion_refuses_what_json_schema_would(hint: Any, value: Any, message: str) -> None:
    tool = build_tool(tool_with(hint))
    with pytest.raises(tools.ArgumentError, match=f"^{re.escape(message)}$"):
        tool.bind({"value": value})


def test_coercion_accepts_and_converts() -> None:
    assert build_tool(tool_with(Priority)).bind({"value": 2}) == {"value": Priority.HIGH}
    assert build_tool(tool_with(list[Colour] | None)).bind({"value": ["green"]}) == {
        "value": [Colour.GREEN]
    }
    assert build_tool(tool_with(int | None)).bind({"value": None}) == {"value": None}
    assert build_tool(tool_with(Literal[True])).bind({"value": True}) == {"value": True}


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_an_unknown_tool_is_invalid(user: User) -> None:
    result = await run_tool("format_disk", "{}", user=user, call=None, timeout=5)
    assert (result.outcome, output(result)["message"]) == (
        "invalid",
        "There is no tool named format_disk.",
    )
    long = await run_tool("x" * 500, "{}", user=user, call=None, timeout=5)
    assert (long.outcome, long.name) == ("invalid", "x" * 64)


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_what_the_result_keeps_of_the_arguments(user: User) -> None:
    denied = await run_tool("whoami", '{"why": "curious"}', user=user, call=None, timeout=5)
    assert (denied.outcome, denied.arguments) == ("denied", {"why": "curious"})
    garbled = await run_tool("spell", '{"word": "a"', user=user, call=None, timeout=5)
    assert (garbled.outcome, garbled.arguments) == ("invalid", '{"word": "a"')
    huge = '{"word": "' + "a" * 70_000 + '"}'
    too_long = await run_tool("spell", huge, user=user, call=None, timeout=5)
    assert (too_long.outcome, too_long.arguments) == ("invalid", huge[:2000])


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_two_sync_tools_run_at_the_same_time(user: User) -> None:
    both_inside = threading.Barrier(2, timeout=10)  # breaks unless both wait at once

    def first(user: Any, call: Any) -> int:
        both_inside.wait()
        return 1

    def second(user: Any, call: Any) -> int:
        both_inside.wait()
        return 2

    register_fn(first)
    register_fn(second)
    results = await asyncio.gather(
        run_tool("first", "{}", user=user, call=None, timeout=20),
        run_tool("second", "{}", user=user, call=None, timeout=20),
    )
    assert [(r.name, r.outcome, r.output) for r in results] == [
        ("first", "ok", "1"),
        ("second", "ok", "2"),
    ]


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_blocked_sync_tool_leaves_the_loop_free_for_another(user: User) -> None:
    unblocked = threading.Event()

    def waits(user: Any, call: Any) -> bool:
        return unblocked.wait(10)  # False if the loop never got to run `unblocks`

    async def unblocks(user: Any, call: Any) -> str:
        unblocked.set()
        return "done"

    register_fn(waits)
    register_fn(unblocks)
    results = await asyncio.gather(
        run_tool("waits", "{}", user=user, call=None, timeout=20),
        run_tool("unblocks", "{}", user=user, call=None, timeout=20),
    )
    assert [r.output for r in results] == ["true", '"done"']
