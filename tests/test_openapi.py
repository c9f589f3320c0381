"""The shipped OpenAPI document agrees with OpenAPI 3, with the views and with the docs.

* it is a valid OpenAPI 3 document (``openapi-spec-validator``) and is served, with the
  mount prefix in ``servers``, at ``django_realtime:openapi-schema``;
* every route of ``django_realtime.urls`` is a schema path with the same methods, and
  every schema path resolves to one of our routes;
* every answer the schema documents (each status, and each ``code`` of an error body)
  is produced by a real request here, and its body validates against the schema's;
* the codes listed on the docs' HTTP API page are exactly the schema's.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, resolve
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from django_realtime import openapi, signals, signing
from django_realtime import urls as realtime_urls
from django_realtime.models import RealtimeCall, SessionPreset, WebhookEvent
from tests.conftest import OFFER_SDP, CheckedAPIClient, Upstream
from tests.settings import DJANGO_REALTIME as TEST_SETTINGS

DOCS_API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
PREFIX = "/realtime"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
DOC_URI = "urn:django-realtime:openapi"

Answer = tuple[str, str, str, str | None]  # path, method, status, code (None: no error body)


# --- reading the document ------------------------------------------------------------


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _follow(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _response(document: dict[str, Any], path: str, method: str, status: str) -> tuple[str, Any]:
    """(JSON pointer, object) of a response, through a ``$ref`` to ``components``."""
    pointer = _pointer("paths", path, method, "responses", status)
    response = _follow(document, pointer)
    if "$ref" in response:
        pointer = response["$ref"]
        response = _follow(document, pointer)
    return pointer, response


def _codes(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The ``code`` enum of an error body schema (``allOf: [Error, {code: enum}]``)."""
    for part in schema.get("allOf", []):
        if part.get("$ref") == "#/components/schemas/Error":
            continue
        enum = part.get("properties", {}).get("code", {}).get("enum")
        if enum:
            return list(enum)
    return []


def documented_answers(document: dict[str, Any]) -> set[Answer]:
    answers: set[Answer] = set()
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            for status in item[method]["responses"]:
                _, response = _response(document, path, method, status)
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                codes = _codes(document, schema)
                answers.update((path, method, status, code) for code in codes or [None])
    return answers


def body_validator(document: dict[str, Any], path: str, method: str, status: str) -> Any:
    pointer, response = _response(document, path, method, status)
    if "application/json" not in response.get("content", {}):
        return None
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)
    schema_pointer = pointer + "/" + "/".join(["content", "application~1json", "schema"])
    return Draft202012Validator({"$ref": DOC_URI + schema_pointer}, registry=registry)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.load_schema()


# --- the document itself -----------------------------------------------------------------


def test_the_schema_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")


def test_the_schema_ships_inside_the_package() -> None:
    assert (Path(openapi.__file__).parent / openapi.SCHEMA_FILE).is_file()
    manifest = (Path(__file__).resolve().parent.parent / "MANIFEST.in").read_text()
    assert f"include django_realtime/{openapi.SCHEMA_FILE}" in manifest


@pytest.mark.django_db
def test_the_schema_is_served_with_the_mount_prefix(
    client: Client, document: dict[str, Any]
) -> None:
    response = client.get("/realtime/schema/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    served = response.json()
    assert served["servers"] == [{"url": PREFIX}]
    assert {k: v for k, v in served.items() if k != "servers"} == {
        k: v for k, v in document.items() if k != "servers"
    }
    assert client.head("/realtime/schema/").status_code == 200


def test_the_schema_version_is_the_package_version(document: dict[str, Any]) -> None:
    import django_realtime

    assert document["info"]["version"] == django_realtime.__version__


# --- the document and the URLconf ------------------------------------------------------------


_ROUTE_PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
_SCHEMA_PARAM = re.compile(r"\{\w+\}")


def _route_methods() -> dict[str, set[str]]:
    """``/<route>`` -> the HTTP methods its view answers (HEAD and OPTIONS aside)."""
    routes: dict[str, set[str]] = {}
    for pattern in realtime_urls.urlpatterns:
        assert isinstance(pattern, URLPattern), pattern
        view_class = pattern.callback.view_class  # type: ignore[attr-defined]
        methods = {
            m for m in view_class.http_method_names if m in HTTP_METHODS and hasattr(view_class, m)
        }
        # Django's "<str:call_id>" is OpenAPI's "{call_id}".
        routes["/" + _ROUTE_PARAM.sub(r"{\1}", str(pattern.pattern))] = methods
    return routes


def test_every_route_is_documented_with_its_methods(document: dict[str, Any]) -> None:
    documented = {
        path: {m for m in item if m in HTTP_METHODS} for path, item in document["paths"].items()
    }
    assert documented == _route_methods()


def test_every_schema_path_resolves_to_a_route(document: dict[str, Any]) -> None:
    names = {pattern.name for pattern in realtime_urls.urlpatterns}  # type: ignore[union-attr]
    for path in document["paths"]:
        match = resolve(PREFIX + _SCHEMA_PARAM.sub("rtc_sample", path))
        assert match.namespace == "django_realtime", path
        assert match.url_name in names, path


# --- the document and the docs ---------------------------------------------------------------

_DOC_ROW = re.compile(r"^\|\s*(\d{3})\s*\|\s*`([a-z_]+)`\s*\|")


def docs_codes() -> set[tuple[str, str]]:
    """(status, code) pairs of the error-code table on the docs' HTTP API page."""
    rows = {
        m.groups() for line in DOCS_API_PAGE.read_text().splitlines() if (m := _DOC_ROW.match(line))
    }
    return {(status, code) for status, code in rows}


def test_the_docs_list_exactly_the_schema_codes(document: dict[str, Any]) -> None:
    schema = {(status, code) for _, _, status, code in documented_answers(document) if code}
    assert docs_codes() == schema


# --- every documented answer really happens ------------------------------------------------


@dataclass
class Ctx:
    api: CheckedAPIClient
    anon: CheckedAPIClient
    client_for: Callable[[User | None], CheckedAPIClient]
    make_user: Callable[..., User]
    make_preset: Callable[..., SessionPreset]
    upstream: Upstream
    settings: Any
    monkeypatch: pytest.MonkeyPatch
    group: Group

    def configure(self, **changes: Any) -> None:
        self.settings.DJANGO_REALTIME = {**self.settings.DJANGO_REALTIME, **changes}


P, CS, C, W, S = "/presets/", "/client-secrets/", "/calls/", "/webhooks/openai/", "/schema/"
A, E = "/calls/attach/", "/calls/{call_id}/end/"
CALL_ID = "rtc_openapi_call"


def _request(
    ctx: Ctx, path: str, method: str, api: CheckedAPIClient | None = None, **kw: Any
) -> Any:
    api = api or ctx.api
    url = PREFIX + path.replace("{call_id}", CALL_ID)
    if path == A and method == "post" and "data" not in kw:
        return api.post(url, {"call_id": CALL_ID}, format="json", **kw)
    if path == CS and method == "post" and "data" not in kw:
        kw.setdefault("format", "json")
        return api.post(url, kw.pop("body", {"preset": "assistant"}), **kw)
    if path == C and method == "post" and "data" not in kw:
        return api.post(
            url + kw.pop("query", "?preset=assistant"),
            data=OFFER_SDP,
            content_type="application/sdp",
            **kw,
        )
    return getattr(api, method)(url, **kw)


def _header_auth(ctx: Ctx) -> None:
    ctx.configure(AUTHENTICATION_CLASSES=["rest_framework.authentication.BasicAuthentication"])


def _bad_basic_auth() -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"alice:wrong").decode()}


def _freeze_rate_window(ctx: Ctx) -> None:
    # django-ratelimit's fixed window follows time.time(): freeze it for this module only.
    import django_ratelimit.core

    frozen = types.SimpleNamespace(time=lambda: 1_900_000_000.0)
    ctx.monkeypatch.setattr(django_ratelimit.core, "time", frozen)


def _over_rate(path: str) -> Callable[[Ctx, str], Any]:
    def trigger(ctx: Ctx, method: str) -> Any:
        _freeze_rate_window(ctx)
        ctx.configure(RATE="1/m")
        assert _request(ctx, path, method).status_code == 201
        return _request(ctx, path, method)

    return trigger


def _over_quota(path: str) -> Callable[[Ctx, str], Any]:
    """Issue 10: a zero-minute limit for everyone refuses before any upstream call."""

    def trigger(ctx: Ctx, method: str) -> Any:
        from django_realtime.models import UsageLimit

        UsageLimit.objects.create(minutes_per_day=0)
        return _request(ctx, path, method)

    return trigger


def _upstream(path: str, *answers: httpx.Response | Exception) -> Callable[[Ctx, str], Any]:
    def trigger(ctx: Ctx, method: str) -> Any:
        ctx.upstream.queue(*answers)
        return _request(ctx, path, method)

    return trigger


def _no_key(path: str) -> Callable[[Ctx, str], Any]:
    def trigger(ctx: Ctx, method: str) -> Any:
        ctx.monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        ctx.configure(API_KEY=None)
        return _request(ctx, path, method)

    return trigger


def _cache_down(path: str) -> Callable[[Ctx, str], Any]:
    def trigger(ctx: Ctx, method: str) -> Any:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # nothing listens there once closed
        ctx.settings.CACHES = {
            **ctx.settings.CACHES,
            "down": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{port}/0",
            },
        }
        ctx.settings.RATELIMIT_USE_CACHE = "down"
        return _request(ctx, path, method)

    return trigger


def _broken_permission(ctx: Ctx) -> None:
    # A permission class without has_permission: an unexpected error inside the view.
    ctx.configure(PERMISSION_CLASSES=["builtins.object"])


def _restricted(path: str) -> Callable[[Ctx, str], Any]:
    def trigger(ctx: Ctx, method: str) -> Any:
        ctx.make_preset("staff", groups=(ctx.group,))
        if path == CS:
            return _request(ctx, path, method, body={"preset": "staff"})
        return _request(ctx, path, method, query="?preset=staff")

    return trigger


def _unknown_preset(path: str) -> Callable[[Ctx, str], Any]:
    def trigger(ctx: Ctx, method: str) -> Any:
        if path == CS:
            return _request(ctx, path, method, body={"preset": "nope"})
        return _request(ctx, path, method, query="?preset=nope")

    return trigger


def _unauthenticated_401(ctx: Ctx, path: str, method: str) -> Any:
    _header_auth(ctx)
    return _request(ctx, path, method, api=ctx.anon)


def _bad_credentials_401(ctx: Ctx, path: str, method: str) -> Any:
    _header_auth(ctx)
    return _request(ctx, path, method, api=ctx.anon, **_bad_basic_auth())


_RATE_LIMITED = httpx.Response(
    429, json={"error": {"code": "rate_limit_exceeded"}}, headers={"retry-after": "7"}
)
_FAILED = httpx.Response(500, json={"error": {"message": "boom"}})
_TIMEOUT = httpx.ReadTimeout("slow")
_RETRIES = TEST_SETTINGS["MAX_RETRIES"] + 1


def _gate_triggers(path: str, method: str) -> dict[Answer, Callable[[Ctx], Any]]:
    """The answers shared by the two gate endpoints (mint and relay)."""
    upstream_cases = {
        ("502", "upstream_error"): _upstream(path, *[_FAILED] * _RETRIES),
        ("503", "upstream_unavailable"): _upstream(path, *[_RATE_LIMITED] * _RETRIES),
        ("504", "upstream_timeout"): _upstream(path, *[_TIMEOUT] * _RETRIES),
        ("503", "not_configured"): _no_key(path),
        ("503", "unavailable"): _cache_down(path),
        ("429", "rate_limited"): _over_rate(path),
        ("429", "quota_exceeded"): _over_quota(path),  # issue 10
        ("403", "permission_denied"): _restricted(path),
        ("404", "preset_not_found"): _unknown_preset(path),
    }
    triggers: dict[Answer, Callable[[Ctx], Any]] = {
        (path, method, status, code): (lambda ctx, f=f: f(ctx, method))
        for (status, code), f in upstream_cases.items()
    }
    triggers[(path, method, "201", None)] = lambda ctx: _request(ctx, path, method)
    triggers[(path, method, "401", "not_authenticated")] = lambda ctx: _unauthenticated_401(
        ctx, path, method
    )
    triggers[(path, method, "401", "authentication_failed")] = lambda ctx: _bad_credentials_401(
        ctx, path, method
    )
    triggers[(path, method, "403", "not_authenticated")] = lambda ctx: _request(
        ctx, path, method, api=ctx.anon
    )
    triggers[(path, method, "405", "method_not_allowed")] = lambda ctx: ctx.api.get(PREFIX + path)
    triggers[(path, method, "500", "error")] = lambda ctx: (
        _broken_permission(ctx),
        _request(ctx, path, method),
    )[1]
    return triggers


def _minted(ctx: Ctx) -> None:
    assert _request(ctx, CS, "post").status_code == 201


def _attach_triggers(path: str) -> dict[Answer, Callable[[Ctx], Any]]:
    """The answers shared by the call controller's two endpoints."""

    def _as_admin_only(ctx: Ctx) -> Any:
        ctx.configure(PERMISSION_CLASSES=["rest_framework.permissions.IsAdminUser"])
        return _request(ctx, path, "post")

    return {
        (path, "post", "401", "not_authenticated"): lambda ctx: _unauthenticated_401(
            ctx, path, "post"
        ),
        (path, "post", "401", "authentication_failed"): lambda ctx: _bad_credentials_401(
            ctx, path, "post"
        ),
        (path, "post", "403", "not_authenticated"): lambda ctx: _request(
            ctx, path, "post", api=ctx.anon
        ),
        (path, "post", "403", "permission_denied"): _as_admin_only,
        (path, "post", "405", "method_not_allowed"): lambda ctx: ctx.api.get(
            PREFIX + path.replace("{call_id}", CALL_ID)
        ),
    }


def _attach_taken(ctx: Ctx) -> Any:
    other = ctx.make_user("mallory")
    RealtimeCall.objects.create(call_id=CALL_ID, origin="relay", user=other)
    return _request(ctx, A, "post")


def _attached(ctx: Ctx) -> Any:
    _minted(ctx)
    return _request(ctx, A, "post")


def _end_own_call(ctx: Ctx) -> Any:
    _minted(ctx)
    assert _request(ctx, A, "post").status_code == 202
    return _request(ctx, E, "post")


def _signed(body: bytes, msg_id: str | None = None) -> dict[str, str]:
    headers = signing.sign(
        body,
        secret=TEST_SETTINGS["WEBHOOK_SECRETS"][0],
        msg_id=msg_id or f"wh_openapi_{time.monotonic_ns()}",
        timestamp=int(time.time()),
    )
    return {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}


def _deliver(
    event: dict[str, Any], *, msg_id: str | None = None, client: Client | None = None
) -> Any:
    body = json.dumps(event).encode()
    return (client or Client()).post(
        PREFIX + W, data=body, content_type="application/json", **_signed(body, msg_id)
    )


def _webhook_409(ctx: Ctx) -> Any:
    WebhookEvent.objects.create(webhook_id="wh_busy", event_type="test.event", status="processing")
    return _deliver({"type": "test.event"}, msg_id="wh_busy")


def _webhook_413(ctx: Ctx) -> Any:
    ctx.configure(WEBHOOK_MAX_BYTES=64)
    return _deliver({"type": "test.event", "data": {"padding": "x" * 100}})


def _webhook_500(ctx: Ctx) -> Any:
    def explode(**kwargs: Any) -> None:
        raise RuntimeError("a receiver failed")

    signals.webhook_received.connect(explode, dispatch_uid="openapi-explode")
    try:
        return _deliver({"type": "test.event"}, client=Client(raise_request_exception=False))
    finally:
        signals.webhook_received.disconnect(dispatch_uid="openapi-explode")


def _webhook_503(ctx: Ctx) -> Any:
    # No route matches, so the default action rejects; OpenAI answers 5xx to every try.
    ctx.upstream.queue(*[_FAILED] * _RETRIES)
    event = {
        "type": "realtime.call.incoming",
        "id": "evt_openapi",
        "data": {
            "call_id": "rtc_openapi",
            "sip_headers": [
                {"name": "From", "value": "<sip:+14155550100@carrier.example>"},
                {"name": "To", "value": "<sip:+14155550123@sip.api.openai.com>"},
            ],
        },
    }
    return _deliver(event)


TRIGGERS: dict[Answer, Callable[[Ctx], Any]] = {
    (P, "get", "200", None): lambda ctx: ctx.api.get(PREFIX + P),
    (P, "get", "401", "not_authenticated"): lambda ctx: _unauthenticated_401(ctx, P, "get"),
    (P, "get", "401", "authentication_failed"): lambda ctx: _bad_credentials_401(ctx, P, "get"),
    (P, "get", "403", "not_authenticated"): lambda ctx: ctx.anon.get(PREFIX + P),
    (P, "get", "403", "permission_denied"): lambda ctx: (
        ctx.configure(PERMISSION_CLASSES=["rest_framework.permissions.IsAdminUser"]),
        ctx.api.get(PREFIX + P),
    )[1],
    (P, "get", "405", "method_not_allowed"): lambda ctx: ctx.api.post(PREFIX + P),
    (P, "get", "500", "error"): lambda ctx: (_broken_permission(ctx), ctx.api.get(PREFIX + P))[1],
    **_gate_triggers(CS, "post"),
    (CS, "post", "400", "invalid"): lambda ctx: _request(ctx, CS, "post", body={"preset": "a b"}),
    (CS, "post", "413", "too_large"): lambda ctx: ctx.api.post(
        PREFIX + CS, data='{"preset": "' + "a" * 70_000 + '"}', content_type="application/json"
    ),
    (CS, "post", "400", "invalid_override"): lambda ctx: _request(
        ctx, CS, "post", body={"preset": "assistant", "overrides": {"voice": "ash"}}
    ),
    (CS, "post", "415", "unsupported_media_type"): lambda ctx: ctx.api.post(
        PREFIX + CS, data="preset", content_type="text/plain"
    ),
    **_gate_triggers(C, "post"),
    (C, "post", "400", "invalid"): lambda ctx: ctx.api.post(
        PREFIX + C + "?preset=assistant", data=OFFER_SDP, content_type="application/json"
    ),
    (C, "post", "400", "invalid_override"): lambda ctx: _request(
        ctx, C, "post", query="?preset=assistant&overrides=%5B%5D"
    ),
    (CS, "post", "400", "relay_required"): lambda ctx: (
        ctx.make_preset("leashed", require_control=True),
        _request(ctx, CS, "post", body={"preset": "leashed"}),
    )[1],
    **_attach_triggers(A),
    (A, "post", "202", None): _attached,
    (A, "post", "400", "invalid"): lambda ctx: ctx.api.post(
        PREFIX + A, {"call_id": "not-a-call"}, format="json"
    ),
    (A, "post", "409", "call_taken"): _attach_taken,
    **_attach_triggers(E),
    (E, "post", "202", None): _end_own_call,
    (E, "post", "404", "call_not_found"): lambda ctx: _request(ctx, E, "post"),
    (W, "post", "200", None): lambda ctx: _deliver({"type": "test.event"}),
    (W, "post", "400", "webhook_refused"): lambda ctx: Client().post(
        PREFIX + W, data=b'{"type": "test.event"}', content_type="application/json"
    ),
    (W, "post", "405", None): lambda ctx: Client().get(PREFIX + W),
    (W, "post", "409", "webhook_in_progress"): _webhook_409,
    (W, "post", "413", "too_large"): _webhook_413,
    (W, "post", "500", "error"): _webhook_500,
    (W, "post", "503", "webhook_retry"): _webhook_503,
    (S, "get", "200", None): lambda ctx: Client().get(PREFIX + S),
    (S, "get", "405", None): lambda ctx: Client().post(PREFIX + S),
}


def test_every_documented_answer_has_a_trigger(document: dict[str, Any]) -> None:
    assert set(TRIGGERS) == documented_answers(document)


@pytest.fixture
def ctx(
    api_client: CheckedAPIClient,
    anon_client: CheckedAPIClient,
    client_for: Callable[[User | None], CheckedAPIClient],
    make_user: Callable[..., User],
    make_preset: Callable[..., SessionPreset],
    preset: SessionPreset,
    upstream: Upstream,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    group: Group,
) -> Ctx:
    return Ctx(
        api_client,
        anon_client,
        client_for,
        make_user,
        make_preset,
        upstream,
        settings,
        monkeypatch,
        group,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("answer", sorted(TRIGGERS, key=str), ids=lambda a: "-".join(map(str, a)))
def test_each_documented_answer_happens(answer: Answer, ctx: Ctx, document: dict[str, Any]) -> None:
    path, method, status, code = answer
    response = TRIGGERS[answer](ctx)
    assert response.status_code == int(status), response.content
    validator = body_validator(document, path, method, status)
    if validator is not None:
        body = response.json()
        errors = [e.message for e in validator.iter_errors(body)]
        assert errors == [], body
        if code is not None:
            assert body["code"] == code
            assert response["Cache-Control"] == "no-store"
    if code in ("rate_limited", "upstream_unavailable", "quota_exceeded"):
        assert int(response["Retry-After"]) >= 1
    if path == C and status == "201":
        assert response["Content-Type"] == "application/sdp"
        assert response["X-Realtime-Call-Id"] == "rtc_test123"
