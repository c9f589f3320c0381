"""A minimal upstream for benchmarks: answers every POST with a client-secret body
after ``asyncio.sleep(latency)``, so the measured server, not this one, is the
bottleneck (the full fake API sleeps in a bounded thread pool: see
docs/performance.md). 127.0.0.1 only.

The answer echoes the posted ``session`` (as the real API does, with an id), so a
server that returns it sends a realistically sized body.

Control endpoints, for the harness (never counted as mints):

- ``GET /_bench/stats`` -> ``{"requests": N, "by_tag": {TAG: N}}``: requests answered
  so far, in total and by the path's first segment (``/TAG/v1/...``), so each server
  under test can get its own API base and its own count;
- ``POST /_bench/latency?seconds=0.3``: change the latency of later requests.

    python bench/stub_upstream.py PORT LATENCY_SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from urllib.parse import parse_qs

EXPIRES_AT = 1893456000
JSON_HEADERS = [(b"content-type", b"application/json"), (b"x-request-id", b"req_bench")]


def secret_body(posted: bytes) -> bytes:
    try:
        session = json.loads(posted or b"{}").get("session") or {}
    except (ValueError, AttributeError):
        session = {}
    session = {"id": "sess_bench", "object": "realtime.session", **session}
    return json.dumps({"value": "ek_bench", "expires_at": EXPIRES_AT, "session": session}).encode()


def make_app(latency: float) -> Any:
    state: dict[str, Any] = {"latency": latency, "requests": 0, "by_tag": {}}

    async def answer(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        path = scope["path"]
        if path == "/_bench/stats":
            stats = {"requests": state["requests"], "by_tag": state["by_tag"]}
            await answer(send, 200, json.dumps(stats).encode())
            return
        if path == "/_bench/latency":
            query = parse_qs(scope.get("query_string", b"").decode())
            state["latency"] = float(query.get("seconds", ["0"])[0])
            await answer(send, 200, json.dumps({"latency": state["latency"]}).encode())
            return
        if state["latency"] > 0:
            await asyncio.sleep(state["latency"])
        state["requests"] += 1
        tag = path.split("/", 2)[1] if path.count("/") >= 2 else ""
        state["by_tag"][tag] = state["by_tag"].get(tag, 0) + 1
        await answer(send, 200, secret_body(b"".join(chunks)))

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        make_app(float(sys.argv[2])),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        backlog=2048,
    )
