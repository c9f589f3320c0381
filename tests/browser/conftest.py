"""Real headless Chromium (Debian's, through Playwright) against the fake Realtime API.

Run them on their own: ``pytest -m browser tests/browser`` (the sync Playwright API
keeps an event loop running in the main thread, which async tests can't share; when
they run in one session anyway, they are moved to the end). Offline even without a
network namespace: Chromium resolves nothing but loopback, the fake answers ICE on
127.0.0.1 only, and pages are only ever loaded from 127.0.0.1. Also passes under
``unshare -n sh -c 'ip link set lo up; exec pytest -m browser tests/browser'``.

Without Chromium the tests skip, loudly, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError
from django.test import Client

from django_realtime.control.worker import Worker
from django_realtime.testing import FakeRealtimeAPI, FakeRealtimeServer
from django_realtime.testing.pytest_plugin import realtime_fake_server, realtime_server

__all__ = ["realtime_fake_server", "realtime_server"]  # fixtures, re-exported

# pytest-django's live_server and Playwright's sync API share the main thread's loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# live_server on 127.0.0.1, not "localhost": pages are only ever loaded from 127.0.0.1.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

#: tooling.md section 2; one switch per item, no shell quoting.
COMMON_ARGS = [
    "--use-fake-device-for-media-stream",
    # Without it, Chromium gathers no ICE candidate where the only interface is lo.
    "--allow-loopback-in-peer-connection",
    # No DNS at all (Chromium's startup lookups of Google hosts); loopback still resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GRANT_MIC_ARGS = [*COMMON_ARGS, "--use-fake-ui-for-media-stream"]
DENY_MIC_ARGS = [*COMMON_ARGS, "--deny-permission-prompts"]

#: Collects what the page sees, for assertions (installed before any page script runs).
RECORDER = """
(() => {
  const rt = (window.__rt = {states: [], events: [], errors: [], csp: []});
  document.addEventListener("realtime:state", (e) => rt.states.push(e.detail.state));
  document.addEventListener("realtime:event", (e) => rt.events.push(e.detail.event.type));
  document.addEventListener("realtime:error", (e) =>
    rt.errors.push({code: e.detail.error.code, message: e.detail.error.message}));
  document.addEventListener("securitypolicyviolation", (e) =>
    rt.csp.push(e.violatedDirective + " " + e.blockedURI));
})();
"""


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


_NOT_RUN: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # A skip line is easy to miss; a missing browser must not look like a green run.
    if _NOT_RUN:
        terminalreporter.write_sep(
            "!", f"BROWSER TESTS SKIPPED: {_NOT_RUN[0]} (with CI set they fail)", red=True
        )


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: browser tests must run in CI.", pytrace=False)
    _NOT_RUN.append(reason)
    pytest.skip(
        f"BROWSER TESTS NOT RUN: {reason}. Install Debian's chromium (apt-get install chromium)."
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # After Playwright's sync loop starts, async tests can't run: browser tests go last.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if chromium_path() is None:
        _unavailable("no Chromium at " + " or ".join(CHROMIUM_CANDIDATES) + " (or $CHROMIUM)")
    with sync_playwright() as p:
        yield p


def _launch(playwright: Any, args: list[str]) -> Any:
    # executable_path: Debian's Chromium; Playwright never downloads a browser here.
    return playwright.chromium.launch(executable_path=chromium_path(), args=args, headless=True)


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    """Chromium with a fake microphone whose permission prompt is auto-accepted."""
    browser = _launch(playwright, GRANT_MIC_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def browser_without_mic(playwright: Any) -> Iterator[Any]:
    """Chromium whose permission prompts are all denied (a person clicking "Block")."""
    browser = _launch(playwright, DENY_MIC_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def worker(realtime_fake: Any, transactional_db: None) -> Iterator[Worker]:
    """A worker on its own loop in a thread, like ``manage.py realtime_worker``.

    The test database is shared-cache SQLite, whose table locks refuse at once where a
    database server would wait: a poll refused that way starts the worker's loop again
    (nothing was claimed yet), as a supervisor restarts the command.
    """
    loop = asyncio.new_event_loop()
    running = Worker("browser-test", poll_seconds=0.05)
    stopped = threading.Event()

    async def run() -> None:
        while not stopped.is_set():
            try:
                await running.run()
            except OperationalError:
                await asyncio.sleep(0.05)

    def serve() -> None:
        try:
            loop.run_until_complete(run())
        finally:
            # As asyncio.run does: what the loop opened (the pooled HTTP client the
            # worker hangs up with) is closed on it before it goes, or its socket leaks.
            loop.run_until_complete(loop.shutdown_asyncgens())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield running
    stopped.set()
    loop.call_soon_threadsafe(running.stop)
    thread.join(10)
    assert not thread.is_alive(), "the worker did not stop within 10 s"
    loop.close()


@pytest.fixture
def testapp_received() -> Iterator[list[dict[str, Any]]]:
    """What the test app's stand-in endpoints received; held ``hang`` requests are
    released at the end."""
    from tests.testapp import views

    views.RECEIVED.clear()
    views.RELEASE.clear()
    yield views.RECEIVED
    views.RELEASE.set()


@pytest.fixture
def realtime_fake(realtime_server: FakeRealtimeServer) -> FakeRealtimeAPI:
    """The served fake's state; named so the log checker also looks for its secrets."""
    return realtime_server.fake


@pytest.fixture
def signed_in(live_server: Any, transactional_db: None) -> Callable[[Any], User]:
    """Sign a user in and put the session cookie in a browser context."""

    def sign_in(context: Any, username: str = "alice") -> User:
        user = User.objects.filter(username=username).first() or User.objects.create_user(
            username=username, password="pw"
        )
        client = Client()
        client.force_login(user)
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        return user

    return sign_in


class RealtimePage:
    """A Playwright page with the test page loaded and helpers around the widget."""

    WIDGET = "[data-realtime-widget]"

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))

    def open(
        self,
        preset: str = "assistant",
        mode: str = "ephemeral",
        path: str = "/rt/",
        **params: str | float,
    ) -> Any:
        query = urlencode({"preset": preset, "mode": mode, **params})
        url = f"{self.base_url}{path}?{query}"
        assert url.startswith("http://127.0.0.1:")  # never navigate anywhere else
        response = self.page.goto(url)
        assert response is not None
        assert response.ok, response
        self.page.wait_for_function(
            f"() => document.querySelector('{self.WIDGET}').getAttribute('data-state') === 'idle'"
        )
        return response

    def click(self, name: str) -> None:
        self.page.click(f"{self.WIDGET} [data-realtime-{name}]")

    @property
    def state(self) -> str:
        return str(self.page.get_attribute(self.WIDGET, "data-state"))

    def wait_state(self, *states: str, timeout: float = 15_000) -> str:
        self.page.wait_for_function(
            f"() => {json.dumps(list(states))}.includes("
            f"document.querySelector('{self.WIDGET}').getAttribute('data-state'))",
            timeout=timeout,
        )
        return self.state

    def session(self, expression: str) -> Any:
        """Evaluate ``expression`` with ``s`` bound to the widget's current session."""
        return self.page.evaluate(
            f"(() => {{ const s = document.querySelector('{self.WIDGET}').realtimeSession; "
            f"return {expression}; }})()"
        )

    def recorded(self) -> dict[str, Any]:
        return dict(self.page.evaluate("window.__rt"))

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(f"{self.WIDGET} {selector}"))

    def transcript(self, role: str) -> list[str]:
        return list(
            self.page.eval_on_selector_all(
                f"{self.WIDGET} [data-realtime-transcript] li[data-role={role}][data-final]",
                "lis => lis.map(li => li.querySelector('.realtime-widget__text').textContent)",
            )
        )

    def inbound_audio_packets(self) -> int:
        return int(
            self.session(
                "s.pc ? s.pc.getStats().then(st => { let n = 0; st.forEach(r => {"
                " if (r.type === 'inbound-rtp' && r.kind === 'audio') n += r.packetsReceived;"
                " }); return n; }) : 0"
            )
        )

    def hang_up(self) -> None:
        """Stop the call whatever the widget's state (peers otherwise stream ~30 s)."""
        self.page.evaluate(
            "document.querySelectorAll('[data-realtime-widget]').forEach(el =>"
            " el.realtimeSession && el.realtimeSession.close());"
            " window.__s && window.__s.close()"  # a session a test made by hand
        )


@pytest.fixture
def open_page(
    live_server: Any, signed_in: Callable[[Any], User]
) -> Iterator[Callable[..., RealtimePage]]:
    """``open_page(browser=..., signed_in=True)`` -> a fresh context and page."""
    contexts: list[tuple[Any, RealtimePage]] = []

    def make(browser: Any, *, sign_in: bool = True) -> RealtimePage:
        context = browser.new_context()
        context.add_init_script(RECORDER)
        if sign_in:
            signed_in(context)
        rt = RealtimePage(context.new_page(), live_server.url)
        contexts.append((context, rt))
        return rt

    yield make
    for context, rt in contexts:
        try:
            rt.hang_up()
        finally:
            context.close()
