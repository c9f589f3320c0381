"""The bare Python floor: one raw ASGI app that makes the mint's upstream POST through
one pooled ``httpx.AsyncClient`` and returns the JSON. No framework, no database, no
authentication: what any Python server must pay at least. Any path and method mints.

Environment: ``FLOOR_UPSTREAM`` (API base, ``http://127.0.0.1:PORT/v1``) and
``FLOOR_TRANSPORT`` (``httpcore``, httpx's own, or ``aiohttp``: the httpx API over
``httpx-aiohttp``). Run with ``uvicorn floor_app:app --workers 1``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

SESSION_CONFIG = json.dumps(
    {
        "session": {
            "type": "realtime",
            "model": "gpt-realtime",
            "audio": {"output": {"voice": "marin"}},
        }
    }
).encode()
#: Enough connections for every concurrent client, all kept alive: the floor must not queue.
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)

_client: httpx.AsyncClient | None = None


def make_client() -> httpx.AsyncClient:
    base = os.environ["FLOOR_UPSTREAM"].rstrip("/") + "/"
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    if os.environ.get("FLOOR_TRANSPORT", "httpcore") == "aiohttp":
        from httpx_aiohttp import HttpxAiohttpClient

        return HttpxAiohttpClient(base_url=base, headers=headers, limits=LIMITS, timeout=30.0)
    return httpx.AsyncClient(base_url=base, headers=headers, limits=LIMITS, timeout=30.0)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _client
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _client = make_client()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _client is not None:
                    await _client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    assert _client is not None
    try:
        upstream = await _client.post("realtime/client_secrets", content=SESSION_CONFIG)
        status, body = upstream.status_code, upstream.content
    except httpx.HTTPError as err:
        status, body = 502, json.dumps({"error": type(err).__name__}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
