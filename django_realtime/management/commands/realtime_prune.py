from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_realtime.audit import mark_abandoned
from django_realtime.pruning import TARGETS, Target, prune


class Command(BaseCommand):
    help = (
        "Delete old rows, each kind with its own age: audit log entries, webhook events "
        "and whatever else registered a pruning target. Kinds without an age are kept. "
        "First, audit rows still pending past PROCESSING_TIMEOUT are marked abandoned."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        for target in TARGETS.values():
            parser.add_argument(
                f"--{target.name}-days",
                type=int,
                metavar="N",
                dest=target.option,
                help=f"Delete {target.label} older than N days.",
            )
        parser.add_argument(
            "--abandon-only",
            action="store_true",
            help="Only mark audit rows pending past PROCESSING_TIMEOUT abandoned.",
        )
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(
        self, *args: Any, batch_size: int, dry_run: bool, abandon_only: bool, **options: Any
    ) -> None:
        if abandon_only:
            self._abandon(dry_run)
            return
        chosen: list[tuple[Target, int]] = [
            (target, days)
            for target in TARGETS.values()
            if (days := _age(target, options)) is not None
        ]
        if not chosen:
            names = ", ".join(f"--{t.name}-days" for t in TARGETS.values())
            raise CommandError(f"Give at least one age: {names} (or --abandon-only).")
        for target, days in chosen:
            if days < 0:
                raise CommandError(f"--{target.name}-days must be 0 or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        self._abandon(dry_run)
        now = timezone.now()
        for target, days in chosen:
            cutoff = now - timedelta(days=days)
            if dry_run:
                count = target.old_rows(cutoff).count()
                self.stdout.write(f"Would delete {count} {target.label} older than {days} days.")
            else:
                deleted = prune(target, cutoff, batch_size=batch_size)
                self.stdout.write(f"Deleted {deleted} {target.label} older than {days} days.")

    def _abandon(self, dry_run: bool) -> None:
        if dry_run:
            return
        abandoned = mark_abandoned()
        self.stdout.write(f"Marked {abandoned} unfinished audit log entries abandoned.")


def _age(target: Target, options: dict[str, Any]) -> int | None:
    """The ``--<name>-days`` given, else the target's own default (a setting)."""
    given = options.get(target.option)
    if given is not None:
        return int(given)
    return target.default_days() if target.default_days is not None else None
