"""SIP header parsing, route matching, decision precedence, and what each action sends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from django_realtime import client as upstream_client
from django_realtime.exceptions import RealtimeConfigurationError
from django_realtime.models import AuditLogEntry, SessionPreset
from django_realtime.sip.headers import get_header, normalise_headers, parse_address
from django_realtime.sip.models import SipCall, SipRoute
from django_realtime.sip.routing import RouteDecision, decide, route_matches
from django_realtime.sip.signals import call_referred, call_rejected
from django_realtime.sip.validators import validate_regex, validate_target_uri
from tests.sip_helpers import CallControlAPI, incoming_event, install_call_api, post_webhook
from tests.sip_helpers import validate_against as schema_check

# --- parsing (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "uri", "user", "host", "number", "display"),
    [
        (
            '"Alice" <sip:+14155550100@pstn.example.com>;tag=abc',
            "sip:+14155550100@pstn.example.com",
            "+14155550100",
            "pstn.example.com",
            "+14155550100",
            "Alice",
        ),
        (
            "<sip:+14155550123@sip.api.openai.com;user=phone>",
            "sip:+14155550123@sip.api.openai.com;user=phone",
            "+14155550123",
            "sip.api.openai.com",
            "+14155550123",
            "",
        ),
        ("sip:alice@example.com;tag=xyz", "sip:alice@example.com", "alice", "example.com", "", ""),
        (
            "Bob <sips:bob@Secure.Example.com:5061>",
            "sips:bob@Secure.Example.com:5061",
            "bob",
            "secure.example.com:5061",
            "",
            "Bob",
        ),
        (
            "<tel:+1-415-555-0100;phone-context=x>",
            "tel:+1-415-555-0100;phone-context=x",
            "+1-415-555-0100",
            "",
            "+14155550100",
            "",
        ),
        (
            '"A \\"quoted\\" <name>" <sip:%2B14155550100@h>',
            "sip:%2B14155550100@h",
            "+14155550100",
            "h",
            "+14155550100",
            'A "quoted" <name>',
        ),
        ("+1 (415) 555-0100", "", "+1 (415) 555-0100", "", "+14155550100", ""),
        ("sip:user:password@host", "sip:user:password@host", "user", "host", "", ""),
        ("<sip:+1415@host", "sip:+1415@host", "+1415", "host", "+1415", ""),
    ],
)
def test_parse_address(
    value: str, uri: str, user: str, host: str, number: str, display: str
) -> None:
    address = parse_address(value)
    assert (address.uri, address.user, address.host, address.number, address.display_name) == (
        uri,
        user,
        host,
        number,
        display,
    )


@pytest.mark.parametrize("value", ["", "   ", '"unterminated', "<>", "sip:", "\x00\x01", "@@@"])
def test_parse_address_never_raises_on_garbage(value: str) -> None:
    parse_address(value)


def test_parse_address_caps_its_input() -> None:
    address = parse_address("<sip:" + "1" * 100_000 + "@h>")
    assert len(address.raw) <= 512


def test_candidates_most_specific_last() -> None:
    assert parse_address('"A" <sip:+1-415@h;user=phone>;tag=1').candidates() == [
        "+1415",
        "+1-415",
        "sip:+1-415@h",
        "sip:+1-415@h;user=phone",
    ]


def test_header_lookup_is_case_insensitive_and_knows_compact_forms() -> None:
    headers = normalise_headers([{"name": "FROM", "value": " a "}, {"name": "t", "value": "b"}])
    assert get_header(headers, "from") == "a"
    assert get_header(headers, "To") == "b"
    assert get_header(headers, "Call-ID") == ""


def test_normalise_headers_drops_and_caps_bad_entries() -> None:
    raw = [
        {"name": "X", "value": "v" * 10_000},
        {"name": None, "value": "x"},
        ["From", "x"],
        {"name": "", "value": "x"},
        {"name": "Y\n", "value": "a\r\nb"},
    ]
    assert normalise_headers(raw) == [
        {"name": "X", "value": "v" * 512},
        {"name": "Y", "value": "ab"},
    ]
    assert normalise_headers("From: x") == []
    assert normalise_headers(None) == []


# --- matching ------------------------------------------------------------------------------


def route(**fields: Any) -> SipRoute:
    values = {"name": "r", "match_field": "to", "match_type": "exact", "action": "reject"}
    values.update(fields)
    return SipRoute(**values)


TO = parse_address("<sip:+14155550123@sip.api.openai.com;user=phone>")
FROM = parse_address('"Alice" <sip:+14155550100@pstn.example.com>;tag=abc')


@pytest.mark.parametrize(
    ("fields", "matches"),
    [
        ({"match_type": "any"}, True),
        ({"pattern": "+14155550123"}, True),
        ({"pattern": "sip:+14155550123@sip.api.openai.com"}, True),
        ({"pattern": "SIP:+14155550123@SIP.API.OPENAI.COM"}, True),
        ({"pattern": "+1415555012"}, False),
        ({"pattern": ""}, False),
        ({"match_type": "glob", "pattern": "+1415*"}, True),
        ({"match_type": "glob", "pattern": "+1212*"}, False),
        ({"match_type": "glob", "pattern": "sip:*@sip.api.openai.com"}, True),
        ({"match_type": "regex", "pattern": r"\+1415\d{7}"}, True),
        ({"match_type": "regex", "pattern": r"\+1415"}, False),  # fullmatch, not search
        ({"match_type": "regex", "pattern": "(unclosed"}, False),
        ({"match_field": "from", "pattern": "+14155550100"}, True),
        ({"match_field": "from", "pattern": "+14155550123"}, False),
        ({"match_field": "from", "match_type": "glob", "pattern": "*@pstn.example.com"}, True),
    ],
)
def test_route_matches(fields: dict[str, Any], matches: bool) -> None:
    assert route_matches(route(**fields), FROM, TO) is matches


def test_regex_input_is_capped() -> None:
    long_to = parse_address("<sip:+1" + "5" * 5000 + "@h>")
    started = time.monotonic()
    assert not route_matches(route(match_type="regex", pattern=r"\+1\d{300}"), FROM, long_to)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("pattern", [r"(a+)+", r"(\d*)*$", r"(a|aa)*c", r"(x{1,9})+", r"((ab)+c)*"])
def test_catastrophic_regexes_are_refused(pattern: str) -> None:
    assert "exponential" in (validate_regex(pattern) or "")


@pytest.mark.parametrize(
    "pattern",
    [r"\+1415\d{7}", r"(\+1|1)?415\d+", r"(?:\d{3}-)?\d{4}", r"sip:[^@]+@example\.com", r"[(a+)]+"],
)
def test_ordinary_regexes_are_allowed(pattern: str) -> None:
    assert validate_regex(pattern) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("tel:+14155550123", True),
        ("sip:agent@example.com", True),
        ("sips:desk@pbx.example.com;transport=tls", True),
        ("tel:", False),
        ("http://x", False),
        ("sip:a b@x", False),
        ("", False),
        ("sip:<x>", False),
    ],
)
def test_target_uri_validation(value: str, ok: bool) -> None:
    assert (validate_target_uri(value) is None) is ok


# --- the decision: SIP_ROUTER, routes, default -------------------------------------------------


@pytest.fixture
def preset(db: None) -> SessionPreset:
    return SessionPreset.objects.create(
        slug="agent", name="Agent", model="gpt-realtime", instructions="Be brief."
    )


def a_call(from_: str = "sip:+14155550100@x", to: str = "sip:+14155550123@y") -> SipCall:
    return SipCall(call_id="rtc_d", webhook_id="wh_d", from_header=from_, to_header=to)


router_calls: list[tuple[Any, ...]] = []


def router_two_args(call: SipCall, event: dict[str, Any] | None) -> Any:
    router_calls.append((call.call_id, event))
    if call.from_header.startswith("sip:+1800"):
        return {"action": "reject", "status_code": 486}
    return None


def router_one_arg(call: SipCall) -> Any:
    return RouteDecision("refer", target_uri="sip:desk@pbx.example.com")


def router_returns_route(call: SipCall) -> Any:
    return SipRoute.objects.get(name="vip")


def router_returns_junk(call: SipCall) -> Any:
    return 42


def router_bad_signature() -> Any:
    return None


def with_setting(settings: Any, **values: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, **values}


@pytest.mark.django_db
def test_router_wins_over_routes_and_falls_through_with_none(
    settings: Any, preset: SessionPreset
) -> None:
    with_setting(settings, SIP_ROUTER="tests.test_sip_routing.router_two_args")
    SipRoute.objects.create(name="all", match_type="any", action="accept", preset=preset)
    router_calls.clear()
    event = {"type": "realtime.call.incoming"}
    decision = decide(a_call(from_="sip:+18005550100@x"), event)
    assert (decision.source, decision.action, decision.status_code) == ("router", "reject", 486)
    assert router_calls == [("rtc_d", event)]
    decision = decide(a_call(), event)
    assert (decision.source, decision.route.name) == ("route", "all")


@pytest.mark.django_db
def test_router_shapes(settings: Any, preset: SessionPreset) -> None:
    with_setting(settings, SIP_ROUTER="tests.test_sip_routing.router_one_arg")
    decision = decide(a_call())
    assert (decision.source, decision.action, decision.target_uri) == (
        "router",
        "refer",
        "sip:desk@pbx.example.com",
    )
    SipRoute.objects.create(
        name="vip", match_type="any", action="accept", preset=preset, is_active=False
    )
    with_setting(settings, SIP_ROUTER="tests.test_sip_routing.router_returns_route")
    decision = decide(a_call())
    assert (decision.source, decision.route.name, decision.preset) == ("router", "vip", preset)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "tests.test_sip_routing.router_returns_junk",
        "tests.test_sip_routing.router_bad_signature",
        "tests.test_sip_routing.no_such_router",
    ],
)
def test_broken_routers_raise_configuration_errors(settings: Any, path: str) -> None:
    with_setting(settings, SIP_ROUTER=path)
    with pytest.raises(RealtimeConfigurationError, match="SIP_ROUTER"):
        decide(a_call())


@pytest.mark.django_db
def test_routes_by_priority_skipping_inactive_and_unusable(preset: SessionPreset) -> None:
    off = SessionPreset.objects.create(
        slug="off", name="Off", model="gpt-realtime", is_active=False
    )
    SipRoute.objects.create(
        name="inactive", priority=1, match_type="any", action="reject", is_active=False
    )
    SipRoute.objects.create(
        name="preset off", priority=2, match_type="any", action="accept", preset=off
    )
    SipRoute.objects.create(name="later", priority=20, match_type="any", action="reject")
    SipRoute.objects.create(
        name="sooner",
        priority=10,
        match_type="glob",
        pattern="+1415*",
        action="accept",
        preset=preset,
    )
    assert decide(a_call()).route.name == "sooner"
    assert decide(a_call(to="sip:+12125550100@y")).route.name == "later"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("default", "expected"),
    [
        (None, ("reject", 603, "")),
        ({"action": "reject", "status_code": 486}, ("reject", 486, "")),
        ({"action": "reject"}, ("reject", 603, "")),
        (
            {"action": "refer", "target_uri": "tel:+14155550000"},
            ("refer", None, "tel:+14155550000"),
        ),
        ({"action": "accept", "preset": "missing"}, ("reject", 603, "")),
    ],
)
def test_default_action(settings: Any, default: Any, expected: tuple[Any, ...]) -> None:
    if default is not None:
        with_setting(settings, SIP_DEFAULT_ACTION=default)
    decision = decide(a_call())
    assert decision.source == "default"
    assert (decision.action, decision.status_code, decision.target_uri) == expected


@pytest.mark.django_db
def test_default_accept_uses_the_preset_slug(settings: Any, preset: SessionPreset) -> None:
    with_setting(settings, SIP_DEFAULT_ACTION={"action": "accept", "preset": "agent"})
    decision = decide(a_call())
    assert (decision.action, decision.preset) == ("accept", preset)


@pytest.mark.django_db
def test_model_clean_refuses_unusable_routes() -> None:
    notes = SessionPreset.objects.create(
        slug="notes",
        name="Notes",
        session_type="transcription",
        transcription_model="gpt-4o-transcribe",
    )
    with pytest.raises(ValidationError) as info:
        route(action="accept", preset=notes, pattern="+1").full_clean()
    assert "preset" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        route(action="refer", target_uri="ftp://x", pattern="+1").full_clean()
    assert "target_uri" in info.value.message_dict


# --- each action, end to end through the webhook, checked against the OpenAPI schemas --------


@pytest.fixture
def call_api(settings: Any) -> Iterator[CallControlAPI]:
    with_setting(settings, MAX_RETRIES=0)
    api = install_call_api()
    yield api
    upstream_client.set_transport(None)


@pytest.fixture
def signals() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    log: list[tuple[str, dict[str, Any]]] = []

    def on_rejected(sender: Any, **kw: Any) -> None:
        log.append(("rejected", kw))

    def on_referred(sender: Any, **kw: Any) -> None:
        log.append(("referred", kw))

    call_rejected.connect(on_rejected)
    call_referred.connect(on_referred)
    yield log
    call_rejected.disconnect(on_rejected)
    call_referred.disconnect(on_referred)


@pytest.mark.django_db
def test_accept_route_sends_a_valid_session(
    call_api: CallControlAPI, preset: SessionPreset
) -> None:
    SipRoute.objects.create(
        name="main", match_type="exact", pattern="+14155550123", action="accept", preset=preset
    )
    assert (
        post_webhook(Client(enforce_csrf_checks=True), incoming_event("rtc_a")).status_code == 200
    )
    [body] = call_api.bodies("accept")
    schema_check("RealtimeSessionCreateRequestGA", body)
    assert body == {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}


@pytest.mark.django_db
def test_reject_route_sends_its_status(call_api: CallControlAPI, signals: list[Any]) -> None:
    SipRoute.objects.create(
        name="busy", match_type="glob", pattern="+1415*", action="reject", status_code=486
    )
    assert (
        post_webhook(Client(enforce_csrf_checks=True), incoming_event("rtc_r")).status_code == 200
    )
    [request] = call_api.requests
    assert request.url.path == "/v1/realtime/calls/rtc_r/reject"
    body = json.loads(request.content)
    schema_check("RealtimeCallRejectRequest", body)
    assert body == {"status_code": 486}
    call = SipCall.objects.get()
    assert (call.status, call.route.name) == ("rejected", "busy")
    audit = AuditLogEntry.objects.get()
    assert (audit.action, audit.outcome, audit.call_id) == ("sip.reject", "succeeded", "rtc_r")
    [(name, kwargs)] = signals
    assert name == "rejected"
    assert set(kwargs) >= {"call", "audit", "decision", "user"}
    assert kwargs["audit"] == audit


@pytest.mark.django_db
def test_refer_route_sends_its_target(call_api: CallControlAPI, signals: list[Any]) -> None:
    SipRoute.objects.create(
        name="desk",
        match_field="from",
        match_type="regex",
        pattern=r"\+1415\d+",
        action="refer",
        target_uri="tel:+14155550000",
    )
    assert (
        post_webhook(Client(enforce_csrf_checks=True), incoming_event("rtc_f")).status_code == 200
    )
    [request] = call_api.requests
    assert request.url.path == "/v1/realtime/calls/rtc_f/refer"
    body = json.loads(request.content)
    schema_check("RealtimeCallReferRequest", body)
    assert body == {"target_uri": "tel:+14155550000"}
    assert SipCall.objects.get().status == "referred"
    assert AuditLogEntry.objects.get().action == "sip.refer"
    assert [name for name, _ in signals] == ["referred"]


@pytest.mark.django_db
def test_no_route_applies_the_default_reject(call_api: CallControlAPI) -> None:
    assert (
        post_webhook(Client(enforce_csrf_checks=True), incoming_event("rtc_n")).status_code == 200
    )
    body = json.loads(call_api.requests[0].content)
    schema_check("RealtimeCallRejectRequest", body)
    assert body == {"status_code": 603}
    assert SipCall.objects.get().status_detail == "Rejected with 603."


@pytest.mark.django_db
def test_router_decision_is_carried_out(
    call_api: CallControlAPI, settings: Any, preset: SessionPreset
) -> None:
    with_setting(settings, SIP_ROUTER="tests.test_sip_routing.router_one_arg")
    SipRoute.objects.create(name="all", match_type="any", action="accept", preset=preset)
    assert (
        post_webhook(Client(enforce_csrf_checks=True), incoming_event("rtc_o")).status_code == 200
    )
    assert [r.url.path.rsplit("/", 1)[-1] for r in call_api.requests] == ["refer"]
    assert call_api.bodies("refer") == [{"target_uri": "sip:desk@pbx.example.com"}]
