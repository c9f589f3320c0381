from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_realtime.control.worker import Worker, default_name


class Command(BaseCommand):
    help = (
        "Run a call controller worker: follow live Realtime calls over their sideband "
        "(metering, limits, config lock). Run as many as you like against one database; "
        "SIGTERM gives this worker's calls to the others at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-calls",
            type=int,
            default=None,
            help="Calls this worker may hold (default: CONTROL_MAX_CALLS_PER_WORKER).",
        )
        parser.add_argument(
            "--name",
            default=None,
            help=f"This worker's name in the leases (default: {default_name()}).",
        )

    def handle(self, *args: Any, max_calls: int | None, name: str | None, **options: Any) -> None:
        worker = Worker(name, max_calls=max_calls)
        self.stdout.write(f"realtime_worker {worker.name}: up to {worker.max_calls} calls")
        asyncio.run(self._serve(worker))
        self.stdout.write(f"realtime_worker {worker.name}: stopped")

    async def _serve(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        await worker.run()
