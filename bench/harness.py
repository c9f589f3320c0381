"""Process plumbing for ``bench_mint.py``: servers in their own process groups, a
throwaway PostgreSQL cluster and Redis on 127.0.0.1, wrk runs, CPU sampling.

Everything started here is registered on one ``contextlib.ExitStack`` and stopped
(process group SIGTERM, then SIGKILL) when the stack closes, on error or Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(
    port: int, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def stop_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group ``proc`` leads, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace)
    # Workers may outlive a master that exited first: sweep the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Server:
    """One long-running process (and its children), logging to ``log``."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


def start(
    stack: contextlib.ExitStack,
    name: str,
    cmd: list[str],
    *,
    port: int,
    logdir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> Server:
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    stack.callback(stop_group, proc)
    server = Server(name, port, proc, log)
    try:
        wait_port(port, timeout, proc)
    except (RuntimeError, TimeoutError) as err:
        raise RuntimeError(f"{name} did not start: {err}\n{server.tail()}") from err
    return server


def cpu_seconds(processes: Iterable[psutil.Process]) -> dict[int, float]:
    """user+system CPU seconds of each live process, by pid."""
    times: dict[int, float] = {}
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            cpu = proc.cpu_times()
            times[proc.pid] = cpu.user + cpu.system
    return times


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two samples; a process born in between counts from zero."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


# --- PostgreSQL and Redis ----------------------------------------------------------


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/15/bin/pg_ctl")) or sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    )
    if not found:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql-15)")
    return Path(found[-1]).parent


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Postgres:
    port: int
    data: Path
    bindir: Path

    def pids(self) -> list[psutil.Process]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        root = psutil.Process(postmaster)
        return [root, *root.children()]

    def backends_of(self, role: str) -> list[psutil.Process]:
        """Backend processes serving ``role`` (PostgreSQL names them in their title)."""
        found = []
        for proc in self.pids()[1:]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                title = " ".join(proc.cmdline())
                if title.startswith(f"postgres: {role} "):
                    found.append(proc)
        return found


def start_postgres(stack: contextlib.ExitStack, *, max_connections: int) -> Postgres:
    """A throwaway cluster in a temp dir on 127.0.0.1 with ``pg_stat_statements``."""
    bindir = pg_bindir()
    # Not under a private temp dir: the server runs as the postgres user.
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    stack.callback(shutil.rmtree, base, True)
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    subprocess.run(_as_postgres([*initdb, "-E", "UTF8"]), check=True, capture_output=True)
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off "
        f"-c max_connections={max_connections} "
        "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top"
    )
    ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        _as_postgres([*ctl, "-l", str(data / "log"), "-w", "start", "-o", options]),
        check=True,
        capture_output=True,
    )
    stack.callback(
        subprocess.run, _as_postgres([*ctl, "-m", "immediate", "stop"]), capture_output=True
    )
    return Postgres(port, data, bindir)


def start_redis(stack: contextlib.ExitStack, logdir: Path) -> Server:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("Redis is not installed (apt-get install redis-server)")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return start(stack, "redis", cmd, port=port, logdir=logdir)


# --- wrk ----------------------------------------------------------------------------

WRK_DONE = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  codes = {}
end
function response(status, headers, body)
  if status >= 300 then codes[status] = (codes[status] or 0) + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  local seen = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("codes")) do
      seen[#seen + 1] = string.format('"%d":%d', status, n)
    end
  end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"codes":{%s}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(seen, ",")))
end
"""


def wrk_script(
    path: Path, *, method: str, body: str = "", headers: dict[str, str] | None = None
) -> Path:
    lines = [f"wrk.method = {json.dumps(method)}"]
    if body:
        lines.append(f"wrk.body = {json.dumps(body)}")
    for key, value in (headers or {}).items():
        lines.append(f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n" + WRK_DONE)
    return path


def start_wrk(
    url: str, script: Path, *, connections: int, duration: float, timeout: float
) -> subprocess.Popen[bytes]:
    threads = 1 if connections < 50 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s"]
    cmd += [f"--timeout={timeout:g}s", "-s", str(script), url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wrk_result(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=120)
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("BENCH "):
            result: dict[str, Any] = json.loads(line[6:])
            return result
    raise RuntimeError(f"wrk printed no result:\n{out.decode(errors='replace')}")
