"""Recorded time only moves forward: a batch stamped before the last stored event, or far ahead of the server, is refused."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import orjson
from eventsourcing.persistence import StoredEvent

from domain.errors import RecordedTimeAhead, RecordedTimeBackwards

AHEAD_LIMIT = timedelta(minutes=5)
"""How far a recorded time may run ahead of the PostgreSQL server's clock: above drift between synced clocks, below a wrong date."""


def recorded_at(state: object) -> datetime | None:
    """The `timestamp` at the top of a stored payload, in UTC; None if the payload holds none that parses."""
    try:
        value = orjson.loads(bytes(state)).get("timestamp")  # type: ignore[arg-type]
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError, AttributeError, orjson.JSONDecodeError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def check_after_last(stored_events: Sequence[StoredEvent], last_state: object, last_position: int) -> None:
    """Refuse a batch whose recorded times go backwards, from the stored event at `last_position` (payload `last_state`) on."""
    previous = recorded_at(last_state) if last_state is not None else None
    before = f"the last stored event's {{}} (position {last_position})"
    for e in stored_events:  # about a microsecond an event: a million-event import spends one second here
        moment = recorded_at(e.state)
        if moment is None:
            continue
        if previous is not None and moment < previous:
            raise RecordedTimeBackwards(
                f"recorded time: {moment.isoformat()} is before {before.format(previous.isoformat())}; check this machine's clock; "
                "nothing was written", previous,
            )
        if previous is None or moment > previous:
            previous, before = moment, "an earlier event's {} in the same batch"


def check_not_ahead(stored_events: Sequence[StoredEvent], server_now: datetime) -> None:
    """Refuse a batch recorded more than AHEAD_LIMIT after `server_now`, the database server's clock."""
    latest = max((t for t in (recorded_at(e.state) for e in stored_events[:1] + stored_events[-1:]) if t is not None), default=None)
    if latest is not None and latest > server_now + AHEAD_LIMIT:
        raise RecordedTimeAhead(
            f"recorded time: {latest.isoformat()} is more than {int(AHEAD_LIMIT.total_seconds() // 60)} minutes ahead of the "
            f"database server's clock ({server_now.astimezone(timezone.utc).isoformat(timespec='seconds')}); check this machine's clock; "
            "nothing was written"
        )
