"""The testing kit's own waits and errors: what a site's test sees when the fake never
gets the call it waits for, when there is no call to drop, and how the manual clock
wakes its sleepers (in order, only once due)."""

from __future__ import annotations

import asyncio

import pytest

from django_realtime.testing import FakeRealtimeAPI
from django_realtime.testing.clock import ManualClock


@pytest.fixture
def fake() -> FakeRealtimeAPI:
    with FakeRealtimeAPI(webrtc=False) as api:
        yield api


def test_waiting_for_a_call_that_never_comes_says_what_was_awaited(fake: FakeRealtimeAPI) -> None:
    assert fake.last_call is None
    fake.add_sip_call("rtc_sip_only")
    with pytest.raises(TimeoutError, match=r"no webrtc call reached the fake within 0\.05 s"):
        fake.wait_for_call(0.05)
    assert fake.wait_for_call(0.05, kind="sip").id == "rtc_sip_only"
    assert fake.last_call is not None
    assert fake.last_call.id == "rtc_sip_only"


def test_dropping_with_no_call_is_a_key_error_and_an_unknown_id_too(fake: FakeRealtimeAPI) -> None:
    with pytest.raises(KeyError, match="no call to drop"):
        fake.drop_call()
    with pytest.raises(KeyError):
        fake.drop_call("rtc_unknown")
    assert fake.hangup_all() == 0


def test_a_call_that_never_reaches_the_condition_times_out_with_its_stats(
    fake: FakeRealtimeAPI,
) -> None:
    call = fake.add_sip_call("rtc_waiting")
    with pytest.raises(TimeoutError, match="call rtc_waiting did not reach the condition"):
        call.wait_for(lambda c: c.state == "ended", timeout=0.05, interval=0.01)
    assert call.wait_for(lambda c: c.id == "rtc_waiting", timeout=0.05) is call


def test_the_manual_clock_wakes_sleepers_in_order_and_only_when_due() -> None:
    clock = ManualClock(start=100.0)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(f"{name}@{clock.now():g}")

    async def scenario() -> None:
        tasks = [
            asyncio.ensure_future(sleeper("late", 10)),
            asyncio.ensure_future(sleeper("early", 2)),
            asyncio.ensure_future(sleeper("now", 0)),
        ]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert woke == ["now@100"]
        assert clock.sleepers == 2
        await clock.advance(1)
        assert woke == ["now@100"]
        await clock.advance(1)
        assert woke == ["now@100", "early@102"]
        assert clock.sleepers == 1
        tasks[0].cancel()  # a cancelled sleeper is skipped, not woken
        await asyncio.gather(tasks[0], return_exceptions=True)
        assert clock.sleepers == 0
        await clock.advance(20)
        assert woke == ["now@100", "early@102"]
        await asyncio.gather(*tasks[1:])

    asyncio.run(scenario())
