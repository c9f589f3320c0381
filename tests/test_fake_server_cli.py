"""``python -m django_realtime.testing.server``: it serves the fake on loopback until
Ctrl-C, answers like the API while up, and refuses any other host."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

from django_realtime.testing import server as fake_server


def test_the_cli_refuses_a_host_other_than_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        fake_server.main(["--host", "0.0.0.0"])
    assert exit_info.value.code == 2
    assert "binds 127.0.0.1 only, not '0.0.0.0'" in capsys.readouterr().err


def test_the_cli_serves_the_fake_until_ctrl_c_then_frees_the_port(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    seen: dict[str, Any] = {}
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds < 3600:  # the start-up wait
            real_sleep(seconds)
            return
        # The serving loop: use the server once, then press Ctrl-C.
        base = f"http://127.0.0.1:{port}"
        seen["stats"] = httpx.get(f"{base}/_fake/stats", timeout=5)
        seen["mint"] = httpx.post(
            f"{base}/v1/realtime/client_secrets",
            json={"session": {"type": "realtime", "model": "gpt-realtime"}},
            headers={"Authorization": "Bearer sk-cli-key"},
            timeout=5,
        )
        raise KeyboardInterrupt

    monkeypatch.setattr(fake_server.time, "sleep", sleep)
    assert fake_server.main(["--port", str(port), "--no-webrtc", "--latency", "0"]) == 0

    out = capsys.readouterr().out
    assert "FAKE OpenAI Realtime API" in out
    assert f"API base: http://127.0.0.1:{port}/v1" in out
    assert f"Stats: http://127.0.0.1:{port}/_fake/stats" in out
    assert seen["stats"].status_code == 200
    assert seen["mint"].status_code == 200
    assert seen["mint"].json()["value"].startswith("ek_")
    # Stopped: the port takes no connection any more.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_fake/stats", timeout=2)
