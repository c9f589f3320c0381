"""uvicorn with N worker processes on one listening socket that keeps TCP_NODELAY.

``uvicorn --workers N`` binds its socket with ``proto`` 0; accepted connections
inherit it and asyncio then leaves Nagle's algorithm on, so on Linux every keep-alive
request after the first waits ~40 ms for the client's delayed ACK
(https://github.com/Kludex/uvicorn/issues/3149). This launcher binds with
``IPPROTO_TCP`` and forks the workers itself; each serves the shared socket with
``uvicorn.Server``. 127.0.0.1 only.

    python bench/asgi_workers.py APP PORT WORKERS
"""

from __future__ import annotations

import os
import signal
import socket
import sys


def serve(app: str, sock: socket.socket) -> None:
    import uvicorn

    # loop="auto", http="auto": uvloop and httptools when installed, as the CLI picks.
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=2048)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    app, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            serve(app, sock)
            os._exit(0)
        children.append(pid)

    def stop(*_: object) -> None:
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
