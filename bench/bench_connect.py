"""Time to talk: click on Start -> ``session.created`` on the page, ephemeral vs relay.

Serves the test page (``tests/testapp``) from a Django live server on 127.0.0.1, the
fake Realtime API (``django_realtime.testing``) from another thread with a fixed
latency per request, and clicks Start in headless Debian Chromium, several times per
mode, each run in a fresh browser context. Times are taken inside the page
(``performance.now()`` at the click and at the ``session.created`` event), so
Playwright's polling is not in them. Also prints realtime.js's gzipped size.

Modes:

- ``ephemeral, mic then mint``: the microphone permission reads "prompt" (a first
  visit), so realtime.js gets the microphone first and mints after: a denied
  microphone must never cost a secret;
- ``ephemeral, mic || mint``: the permission is already granted (a returning user),
  so the mint and the microphone run in parallel;
- ``relay``: the offer goes to our server, which posts it with its own key.

    python bench/bench_connect.py [--runs 15] [--latency 0.1]

Prints figures; asserts nothing. Network: loopback only (see tests/browser/conftest.py).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync loop

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.testcases import LiveServerThread  # noqa: E402
from django.test.utils import (  # noqa: E402
    override_settings,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)
from playwright.sync_api import sync_playwright  # noqa: E402

from django_realtime.models import SessionPreset  # noqa: E402
from django_realtime.testing import FakeRealtimeServer  # noqa: E402
from tests.browser.conftest import GRANT_MIC_ARGS, chromium_path  # noqa: E402

JS = ROOT / "django_realtime" / "static" / "django_realtime" / "realtime.js"
CSS = JS.with_name("realtime.css")

RECORDER = """
(() => {
  const rt = (window.__bench = {});
  document.addEventListener("click", () => { rt.click = performance.now(); }, true);
  document.addEventListener("realtime:event", (e) => {
    if (e.detail.event.type === "session.created" && rt.created === undefined)
      rt.created = performance.now();
  });
  document.addEventListener("realtime:state", (e) => {
    if (e.detail.state === "failed") rt.failed = e.detail.session.error.message;
  });
})();
"""


def live_server() -> LiveServerThread:
    thread = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    return thread


#: Chromium's fake media UI reports the microphone as "granted"; this makes the page
#: see "prompt" instead (what a first visit sees), which takes realtime.js's sequential
#: path. A real prompt adds the person's reaction time on top, which is not measured.
AS_IF_PROMPT = """
(() => {
  const query = navigator.permissions.query.bind(navigator.permissions);
  navigator.permissions.query = (d) =>
    d && d.name === "microphone" ? Promise.resolve({state: "prompt"}) : query(d);
})();
"""


def one_run(browser: Any, base: str, session_cookie: str, mode: str, grant: bool) -> float:
    context = browser.new_context()
    try:
        context.add_init_script(RECORDER)
        if not grant:
            context.add_init_script(AS_IF_PROMPT)
        context.add_cookies([{"name": "sessionid", "value": session_cookie, "url": base}])
        page = context.new_page()
        page.goto(f"{base}/rt/?preset=bench&mode={mode}")
        page.wait_for_function(
            "() => document.querySelector('[data-realtime-widget]')"
            ".getAttribute('data-state') === 'idle'"
        )
        permission = page.evaluate(
            "navigator.permissions.query({name: 'microphone'}).then(p => p.state)"
        )
        expected = "granted" if grant else "prompt"
        if permission != expected:
            raise RuntimeError(f"microphone permission is {permission!r}, not {expected!r}")
        page.click("[data-realtime-start]")
        page.wait_for_function(
            "() => window.__bench.created !== undefined || window.__bench.failed", timeout=20_000
        )
        marks = page.evaluate("window.__bench")
        if marks.get("failed"):
            raise RuntimeError(marks["failed"])
        page.evaluate("document.querySelector('[data-realtime-widget]').realtimeSession.close()")
        return float(marks["created"] - marks["click"])
    finally:
        context.close()


def summary(values: list[float]) -> str:
    values = sorted(values)
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return (
        f"median {statistics.median(values):6.1f} ms  IQR {q[0]:6.1f}-{q[2]:6.1f}  "
        f"min {values[0]:6.1f}  max {values[-1]:6.1f}  (n={len(values)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="measured runs per mode")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs per mode")
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds the fake adds to every request"
    )
    args = parser.parse_args()

    raw = JS.read_bytes()
    print(
        f"realtime.js: {len(raw)} bytes, {len(gzip.compress(raw, 9))} bytes gzipped (-9); "
        f"realtime.css: {len(CSS.read_bytes())} bytes, "
        f"{len(gzip.compress(CSS.read_bytes(), 9))} gzipped"
    )

    exe = chromium_path()
    if exe is None:
        print("no Chromium found: skipping the connection benchmark")
        return 1

    setup_test_environment()
    old_config = setup_databases(verbosity=0, interactive=False)
    server = live_server()
    base = f"http://127.0.0.1:{server.port}"
    results: dict[str, list[float]] = {}
    try:
        with FakeRealtimeServer(latency=args.latency) as fake, sync_playwright() as p:
            realtime = {
                **settings.DJANGO_REALTIME,
                "API_BASE": fake.url,
                "CONNECT_URL": fake.calls_url,
                "RATE": "100000/m",
            }
            with override_settings(DJANGO_REALTIME=realtime):
                SessionPreset.objects.create(slug="bench", name="Bench", model="gpt-realtime")
                user = User.objects.create_user("bench", password="pw")
                client = Client()
                client.force_login(user)
                cookie = client.cookies["sessionid"].value
                browser = p.chromium.launch(executable_path=exe, args=GRANT_MIC_ARGS)
                print(
                    f"Chromium {browser.version}; fake latency {args.latency * 1000:.0f} ms per "
                    f"request; {args.runs} runs per mode after {args.warmup} warm-up runs"
                )
                modes = [
                    ("ephemeral, mic then mint", "ephemeral", False),
                    ("ephemeral, mic || mint", "ephemeral", True),
                    ("relay", "relay", True),
                ]
                for _ in range(args.warmup):
                    for _label, mode, grant in modes:
                        one_run(browser, base, cookie, mode, grant)
                        fake.fake.hangup_all()
                # Interleave the modes so drift (CPU, caches) hits all of them alike.
                for _ in range(args.runs):
                    for label, mode, grant in modes:
                        results.setdefault(label, []).append(
                            one_run(browser, base, cookie, mode, grant)
                        )
                        fake.fake.hangup_all()
                        time.sleep(0.05)
                browser.close()
    finally:
        server.terminate()
        teardown_databases(old_config, verbosity=0)

    print("click -> session.created, in the page:")
    for label, values in results.items():
        print(f"  {label:<24} {summary(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
