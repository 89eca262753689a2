"""Commands for auditors: the audit log of recorded events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import click
from eventsourcing.persistence import ApplicationRecorder, Notification

from adapters.mapper import CATALOGUE
from cli import render
from cli.context import Settings, db_option, pass_settings
from domain.base import ref_id
from domain.errors import InvalidValue
from presentation.text import count, moment, number
from projections import runner
from service_layer.log_check import require_readable
from transparency.signing import recorded_by


def register(ledger: click.Group) -> None:
    """Add the `audit` group to the `ledger` group."""

    @ledger.group()
    def audit() -> None:
        """Audit trail: what was recorded, when, by whom."""

    @audit.command("log")
    @click.option("--actor", "who", help="only events recorded by this actor")
    @click.option("--since", help="only events recorded at or after this moment (ISO date or timestamp)")
    @click.option("--until", help="only events recorded at or before this moment (ISO date or timestamp)")
    @click.option("--type", "kind", help="only events of this type: a full name (BilateralMeeting.Held), an event name (Held) or a record kind (BilateralMeeting)")
    @click.option("--record", help="only events of this record: its reference (ORG-LV-0007, MM-2025-LYON/ORG-FR-0001) or its id")
    @click.option("--limit", type=click.IntRange(min=1), help="at most this many events, the first in the log's order")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="output format")
    @db_option
    @pass_settings
    def log(settings: Settings, who: str | None, since: str | None, until: str | None, kind: str | None, record: str | None,
            limit: int | None, fmt: str) -> None:
        """Recorded events with position, recorded and effective time, actor, signing writer, aggregate, type and summary."""
        first = render.parse_moment("since", since) if since else None
        last = render.parse_moment("until", until) if until else None
        if first and last and last < first:
            raise InvalidValue("until", until, f"is before since ({since}); nothing could be listed")
        wanted = CATALOGUE.type_names(kind) if kind else None
        app = settings.reader()
        entries: list[dict[str, Any]] = []
        refs: dict[str, str] = {}
        more = False
        wanted_record = _record_id(record) if record else None
        if wanted_record is not None and record and not _is_id(record):
            refs[wanted_record.hex] = record  # a record created by a reference is shown by it
        try:
            require_readable(app.recorder)
            pages = runner.notifications(app.recorder, 0) if wanted_record is None else _record_pages(app.recorder, wanted_record)
            for page in pages:
                for n in page:
                    event = app.mapper.to_domain_event(n)
                    key = n.originator_id.hex
                    if hasattr(event, "ref") and n.originator_version == 1:
                        refs[key] = event.ref
                    name = render.event_type(event)
                    if who and event.actor != who:
                        continue
                    if (first and event.timestamp < first) or (last and event.timestamp > last):
                        continue
                    if wanted is not None and name not in wanted:
                        continue
                    if limit is not None and len(entries) == limit:
                        more = True
                        break
                    entries.append({
                        "position": n.id, "recorded_at": event.timestamp.isoformat(), "occurred_at": event.occurred_at.isoformat(),
                        "actor": event.actor, "recorded_by": recorded_by(n.state), "aggregate": refs.get(key, key), "type": name,
                        "summary": render.summary(event), "recorded": event.timestamp, "occurred": event.occurred_at,
                    })
                if more:
                    break
        finally:
            app.close()
        if fmt == "json":
            click.echo(json.dumps([{k: v for k, v in e.items() if k not in ("recorded", "occurred")} for e in entries], indent=2))
            return
        click.echo(render.table(
            ("position", "recorded", "effective", "actor", "recorded by", "aggregate", "type", "summary"),
            [(e["position"], moment(e["recorded"]), moment(e["occurred"]), e["actor"], e["recorded_by"] or "-", e["aggregate"], e["type"],
              _cut(e["summary"])) for e in entries],
        ))
        click.echo(count(len(entries), "event"))
        if more:
            click.echo(f"more follow: only the first {number(limit)} are listed (--limit)")


SUMMARY_WIDTH = 80
"""The widest summary the table shows; a longer one ends in an ellipsis, so a cut value is never read as a whole one."""


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


def _is_id(given: str) -> bool:
    try:
        UUID(given)
    except ValueError:
        return False
    return True


def _record_id(given: str) -> UUID:
    """The aggregate id of a record named by its reference or its id."""
    return UUID(given) if _is_id(given) else ref_id(given)


def _record_pages(recorder: ApplicationRecorder, record: UUID) -> Iterator[list[Notification]]:
    """The notifications of one record, found by their positions where the store can tell them, else by a scan of the log."""
    positions = getattr(recorder, "positions", None)
    if positions is None:
        for page in runner.notifications(recorder, 0):
            yield [n for n in page if n.originator_id == record]
        return
    for position in positions(record):
        yield [n for n in recorder.select_notifications(start=position, limit=1) if n.id == position]
