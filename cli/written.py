"""What a write recorded, as a JSON-ready document: outcome, positions, events, the signing writer's key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from presentation.text import event_type

if TYPE_CHECKING:  # the write path loads with the command that writes, not with every command
    from service_layer.ledger import Ledger, Outcome


def document(app: Ledger, outcome: Outcome) -> dict[str, Any]:
    """A write's outcome, its positions and events (type, record, version), and the writer whose key signed them; read from
    the ledger `app` wrote to, before it is closed."""
    events = []
    refs: dict[UUID, str] = {}
    for position in outcome.positions:
        for n in app.recorder.select_notifications(start=position, limit=1):
            if n.id != position:
                continue
            event = app.mapper.to_domain_event(n)
            events.append({"position": n.id, "type": event_type(event), "record": _ref(app, n.originator_id, refs),
                           "version": n.originator_version})
    return {
        "outcome": "recorded" if outcome.events else "already recorded",
        "positions": list(outcome.positions),
        "events": events,
        "writer": writer(app),
        "first_writer": {"name": outcome.first_writer, "position": outcome.first_writer_position} if outcome.first_writer else None,
    }


def imported(app: Ledger, outcome: Outcome, file: str, by_action: Mapping[str, int]) -> dict[str, Any]:
    """An import's outcome: how many actions of each kind the file held, how many events were written and how many actions
    were already recorded (an import's positions are not listed: a file may hold millions)."""
    return {
        "outcome": "recorded" if outcome.events else "already recorded",
        "file": file,
        "actions": outcome.events + outcome.repeated,
        "written": outcome.events,
        "already_recorded": outcome.repeated,
        "by_action": dict(sorted(by_action.items())),
        "writer": writer(app),
        "first_writer": {"name": outcome.first_writer, "position": outcome.first_writer_position} if outcome.first_writer else None,
    }


def writer(app: Ledger) -> dict[str, str] | None:
    """The name and verifier key of the writer whose key signed the write; None if none was read."""
    if app.signer is None:
        return None
    return {"name": app.signer.name, "key": app.signer.verifier.encode()}


def _ref(app: Ledger, originator_id: UUID, known: dict[UUID, str]) -> str:
    """The platform reference of a record (from its first event), or its id if it has none."""
    if originator_id not in known:
        first = next(iter(app.events.get(originator_id, lte=1)), None)
        known[originator_id] = getattr(first, "ref", None) or originator_id.hex
    return known[originator_id]
