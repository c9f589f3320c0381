"""The log leak guard (``log_records`` in conftest) sees what the fake minted.

It reads the fake's ``secrets``; if the fake's shape changed it must say so instead of
quietly checking nothing."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from django_realtime import client as upstream_client
from django_realtime.testing import FakeRealtimeAPI, FakeRealtimeServer
from tests.conftest import _fake_minted, find_leaks

REALTIME_SESSION = {"type": "realtime", "model": "gpt-realtime"}


def _request(**funcargs: Any) -> Any:
    return SimpleNamespace(funcargs=funcargs)


def test_guard_sees_what_the_in_process_fake_minted(
    request: pytest.FixtureRequest, realtime_fake: FakeRealtimeAPI
) -> None:
    value = upstream_client.create_client_secret({"session": REALTIME_SESSION}).value
    assert value.startswith("ek_")
    assert _fake_minted(request.node) == [value]
    record = logging.LogRecord(
        "django_realtime.x", logging.INFO, __file__, 1, "got %s", (value,), None
    )
    assert find_leaks([record], _fake_minted(request.node)) == ["django_realtime.x: 'got %s'"]


def test_guard_sees_what_the_fake_server_minted(
    request: pytest.FixtureRequest, realtime_server: FakeRealtimeServer
) -> None:
    value = upstream_client.create_client_secret({"session": REALTIME_SESSION}).value
    assert _fake_minted(request.node) == [value]


def test_guard_without_a_fake_checks_the_static_secrets_only() -> None:
    assert _fake_minted(_request()) == []


@pytest.mark.parametrize(
    "fake",
    [
        SimpleNamespace(),  # the attribute was renamed
        SimpleNamespace(secrets=["ek_1"]),  # a list instead of value -> MintedSecret
        SimpleNamespace(secrets={"ek_1": "ek_1"}),  # values are no longer MintedSecret
    ],
    ids=["renamed", "list", "plain-values"],
)
def test_guard_fails_loudly_when_the_fake_changes_shape(fake: Any) -> None:
    with pytest.raises((AttributeError, TypeError)):
        _fake_minted(_request(realtime_fake=fake))
