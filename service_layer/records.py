"""One record's state as the ledger holds it: now, or as it stood when a moment was recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from domain.errors import LedgerError
from presentation.text import moment
from service_layer.ledger import Ledger


class NotYetRecorded(LedgerError):
    """A record asked for as of a moment before its first event was recorded."""


@dataclass(frozen=True)
class RecordState:
    """A record's reference, id, kind, the version its state is at, and its fields (JSON-ready)."""

    ref: str
    id: str
    kind: str
    version: int
    events: int
    state: dict[str, Any]


def record_state(ledger: Ledger, ref: str, until: datetime | None = None) -> RecordState:
    """The state of the record `ref` (a reference or an id) after its events recorded by `until` (all if None)."""
    events = ledger.aggregate_events(ref)  # UnknownReference if the ledger holds no event of it
    known = [e for e in events if until is None or e.timestamp <= until]
    if until is not None and not known:
        raise NotYetRecorded(f"as-of: {moment(until)}: {ref!r} was first recorded later, at {moment(events[0].timestamp)}")
    aggregate = ledger.repository.get(known[0].originator_id, version=known[-1].originator_version)
    fields = {k: moment(v) if isinstance(v, datetime) else v for k, v in vars(aggregate).items() if not k.startswith("_") and k != "action_keys"}
    state = to_jsonable_python(fields, fallback=str)
    return RecordState(
        ref=getattr(known[0], "ref", ref), id=known[0].originator_id.hex, kind=type(known[0]).__qualname__.split(".")[0],
        version=known[-1].originator_version, events=len(known), state=state,
    )
