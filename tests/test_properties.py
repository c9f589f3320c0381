"""Properties of the mint and relay endpoints over generated hostile input (hypothesis).

Whatever the body, overrides, SDP, query string or headers: never a 5xx, every error
is JSON ``{detail, code}`` with a documented code and ``no-store``, nothing goes
upstream for a refused request, and every attempt writes exactly one audit row.
Seeded (``derandomize``) and bounded, so ``make test`` stays fast and repeatable.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_realtime.models import AuditLogEntry, SessionPreset
from tests.conftest import OFFER_SDP, CheckedAPIClient, Upstream

pytestmark = pytest.mark.django_db

MINT = "/realtime/client-secrets/"
CALLS = "/realtime/calls/"
#: The codes docs/api.md lists for the two gate endpoints.
DOCUMENTED = {
    "invalid",
    "invalid_override",
    "not_authenticated",
    "permission_denied",
    "preset_not_found",
    "too_large",
    "unsupported_media_type",
    "rate_limited",
    "upstream_error",
    "unavailable",
}

PROPERTY = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["voice_abc\n", "en\n", "a\x00b", "\ud800", "ok\udfff", "marin", "en", "", " ", "\u202e"]
    ),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), hostile_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)
    ),
    max_leaves=20,
)
override_names = st.sampled_from(
    [
        "instructions",
        "voice",
        "speed",
        "transcription_language",
        "transcription_prompt",
        "turn_detection",
        "max_output_tokens",
        "output_modalities",
        "noise_reduction",
        "model",
    ]
)
overrides = st.dictionaries(override_names, json_values, max_size=4)
mint_bodies = st.one_of(
    st.fixed_dictionaries(
        {}, optional={"preset": st.one_of(st.just("open"), hostile_text), "overrides": overrides}
    ),
    json_values,
)


def _check(response: Any, before: int, upstream_before: int, upstream: Upstream) -> None:
    assert response.status_code < 500, response.content
    assert response["Cache-Control"] == "no-store"
    assert AuditLogEntry.objects.count() == before + 1
    assert not AuditLogEntry.objects.filter(outcome="pending").exists()
    if response.status_code >= 400:
        body = response.json()
        assert body.keys() == {"detail", "code"}
        assert body["code"] in DOCUMENTED, body
        assert upstream.calls == upstream_before


@pytest.fixture
def open_preset(make_preset: Any, settings: Any) -> SessionPreset:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "RATE": "100000/m"}
    return make_preset(
        "open",
        transcription_model="gpt-4o-mini-transcribe",
        allowed_overrides=[
            "instructions",
            "voice",
            "speed",
            "transcription_language",
            "transcription_prompt",
            "turn_detection",
            "max_output_tokens",
            "output_modalities",
            "noise_reduction",
        ],
    )


@PROPERTY
@given(body=mint_bodies)
def test_mint_never_fails_badly(
    api_client: CheckedAPIClient, open_preset: SessionPreset, upstream: Upstream, body: Any
) -> None:
    raw = json.dumps(body).encode("utf-8", "surrogatepass")
    before, sent = AuditLogEntry.objects.count(), upstream.calls
    response = api_client.generic("POST", MINT, raw, content_type="application/json")
    _check(response, before, sent, upstream)


@PROPERTY
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.integers(1, 60).map(lambda n: b"[" * n + b"]" * n),
    ),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain", "application/xml"]
    ),
)
def test_mint_raw_bodies(
    api_client: CheckedAPIClient,
    open_preset: SessionPreset,
    upstream: Upstream,
    raw: bytes,
    content_type: str,
) -> None:
    before, sent = AuditLogEntry.objects.count(), upstream.calls
    response = api_client.generic("POST", MINT, raw, content_type=content_type)
    _check(response, before, sent, upstream)


@PROPERTY
@given(
    preset=st.one_of(st.just("open"), hostile_text),
    query_overrides=st.one_of(st.none(), overrides.map(json.dumps), hostile_text),
    sdp=st.one_of(
        st.just(OFFER_SDP),
        st.text(max_size=200),
        st.just(OFFER_SDP.replace("s=-", "s=\x00")),
        st.just("v=0\r\nm=video 9\r\n"),
    ),
    user_agent=hostile_text,
)
def test_relay_never_fails_badly(
    api_client: CheckedAPIClient,
    open_preset: SessionPreset,
    upstream: Upstream,
    preset: str,
    query_overrides: str | None,
    sdp: str,
    user_agent: str,
) -> None:
    from urllib.parse import urlencode

    params = {"preset": preset}
    if query_overrides is not None:
        params["overrides"] = query_overrides
    query = urlencode(params, encoding="utf-8", errors="surrogatepass")
    before, sent = AuditLogEntry.objects.count(), upstream.calls
    response = api_client.generic(
        "POST",
        f"{CALLS}?{query}",
        sdp.encode("utf-8", "surrogatepass"),
        content_type="application/sdp",
        HTTP_USER_AGENT=user_agent.encode("utf-8", "surrogatepass").decode("latin-1"),
    )
    _check(response, before, sent, upstream)
