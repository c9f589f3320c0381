"""Schemathesis against the published OpenAPI document, in process (WSGI): no server
error, every response conforming to the document (status, content type, headers,
body). Bounded and seeded so it runs in ``make test``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks as openapi_checks

import django_realtime
from tests.conftest import CSRF_TOKEN, Upstream


@schemathesis.serializer("application/sdp")
def _sdp(ctx: Any, value: Any) -> bytes:
    """SDP offers are text: sent as UTF-8 (lone surrogates kept, as a hostile client would)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


# the installed package's copy (the wheel test runs this outside the checkout)
DOCUMENT = Path(django_realtime.__file__).parent / "openapi.json"
schema = schemathesis.openapi.from_path(str(DOCUMENT))
# In process: requests go straight to Django's WSGI handler (no server, no socket).
schema.app = get_wsgi_application()

#: Checks about the document and the answers; the ones that judge whether a request
#: "should" have been accepted assume no business rules (a slug that names no preset
#: is a valid string and still a 404), so they stay off.
EXCLUDED = [
    openapi_checks.positive_data_acceptance,
    openapi_checks.negative_data_rejection,
    openapi_checks.missing_required_header,
    openapi_checks.unsupported_method,
    openapi_checks.ignored_auth,
]


@pytest.fixture
def auth(make_preset: Any, user: User, upstream: Upstream, settings: Any) -> dict[str, Any]:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "RATE": "100000/m"}
    make_preset("assistant", allowed_overrides=["instructions", "voice", "speed"])
    browser = Client()
    browser.force_login(user)
    return {
        "cookies": {"sessionid": browser.cookies["sessionid"].value, "csrftoken": CSRF_TOKEN},
        "headers": {"X-CSRFToken": CSRF_TOKEN},
    }


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_document(case: Any, auth: dict[str, Any]) -> None:
    case.call_and_validate(
        headers={**(case.headers or {}), **auth["headers"]},
        cookies=auth["cookies"],
        excluded_checks=EXCLUDED,
    )
