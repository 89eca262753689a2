"""Maps frozen pydantic events to stored JSON and back."""

from __future__ import annotations

import json
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import TopicError, get_topic, resolve_topic
from pydantic import BaseModel

from domain.base import DomainEvent


class PydanticMapper(Mapper[UUID]):
    """Stores an event as its pydantic JSON (without id and version, which have columns)."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = cast(BaseModel, domain_event).model_dump_json(exclude={"originator_id", "originator_version"})
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=state.encode(),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return decode_event(stored_event.topic, stored_event.state, stored_event.originator_id, stored_event.originator_version)


def decode_event(topic: str, state: bytes, originator_id: UUID | str, originator_version: int) -> Any:
    """Rebuild the frozen event of a stored record."""
    return event_from_fields(topic, json.loads(state), originator_id, originator_version)


def event_from_fields(topic: str, fields: dict[str, Any], originator_id: UUID | str, originator_version: int) -> Any:
    """Rebuild a frozen event from its decoded fields; a topic that names no ledger event is refused."""
    cls = resolve_topic(topic)
    if not (isinstance(cls, type) and issubclass(cls, DomainEvent)):
        raise TopicError(f"not a ledger event type: {topic!r}")
    fields = dict(fields)
    fields["originator_id"] = originator_id
    fields["originator_version"] = originator_version
    return cls.model_validate(fields)
