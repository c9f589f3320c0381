"""A minimal upstream for client benchmarks: answers every POST with a fixed
client-secret body after ``asyncio.sleep(latency)``, so the measuring process, not
this server, is the bottleneck. 127.0.0.1 only.

    python bench/stub_upstream.py PORT LATENCY_SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

BODY = json.dumps(
    {"value": "ek_bench", "expires_at": 1893456000, "session": {"type": "realtime"}}
).encode()


def make_app(latency: float) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await asyncio.sleep(latency)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"x-request-id", b"req_bench"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": BODY})

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        make_app(float(sys.argv[2])),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
    )
