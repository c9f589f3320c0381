"""The widget's minutes left today in real Chromium (issue 10): the page's figure, then
the mint answer's, counted down by a local timer while the call runs (the page's clock
is Playwright's, moved by hand), and held once the call ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from django_realtime.models import RealtimeCall, UsageLimit

from .test_widget import wait_until

pytestmark = pytest.mark.browser

QUOTA = "[data-realtime-quota]"


def test_the_minutes_left_come_from_the_mint_and_count_down_during_the_call(
    browser, open_page, realtime_fake, make_preset
):
    preset = make_preset("assistant")
    UsageLimit.objects.create(minutes_per_day=10)
    rt = open_page(browser)
    rt.page.clock.install()
    rt.open()
    assert rt.text(QUOTA) == "10 minutes left today"

    # Another tab talked for three minutes since the page loaded: the mint knows.
    start = timezone.now() - timedelta(minutes=3)
    RealtimeCall.objects.create(
        call_id="rtc_elsewhere",
        origin="relay",
        user=User.objects.get(username="alice"),
        preset=preset,
        status="ended",
        attached_at=start,
        ended_at=timezone.now(),
    )
    quota_events = "window.__quota = []; document.addEventListener('realtime:quota',"
    rt.page.evaluate(quota_events + " (e) => window.__quota.push(e.detail.quota))")
    rt.click("start")
    rt.wait_state("connected")
    wait_until(lambda: rt.text(QUOTA) == "7 minutes left today", what="the mint's figure")
    assert rt.page.evaluate("window.__quota") == [7.0]

    rt.page.clock.fast_forward("01:30")  # 7 - 1.5 minutes, less the real time gone by
    wait_until(lambda: rt.text(QUOTA) == "5 minutes left today", what="the countdown")
    rt.page.clock.fast_forward("04:00")
    wait_until(lambda: rt.text(QUOTA) == "1 minute left today", what="the singular")

    rt.click("start")  # stop
    rt.wait_state("closed")
    rt.page.clock.fast_forward("10:00")
    assert rt.text(QUOTA) == "1 minute left today"  # no call, no countdown
    assert len(realtime_fake.requests_to("/realtime/client_secrets")) == 1
