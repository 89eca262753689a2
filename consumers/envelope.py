"""The JSON envelope each ledger event travels in on Kafka, and its one decoder."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from pydantic import BaseModel, ConfigDict, TypeAdapter

from adapters.mapper import CATALOGUE, event_from_fields
from domain.catalogue import VERSION_KEY


class Envelope(BaseModel):
    """One event: where it stands in the ledger, what it is, when, by whom, and its fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int
    aggregate_id: UUID
    version: int
    topic: str
    type: str
    type_version: int = 1  # the event's class version; envelopes published before versions existed carry 1
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    payload: dict[str, Any]

    def event(self) -> Any:
        """The domain event inside; raises if its type is unknown or its fields are not valid."""
        return event_from_fields(self.topic, {**self.payload, VERSION_KEY: self.type_version}, self.aggregate_id, self.version, self.position)


ENVELOPE: TypeAdapter[Envelope] = TypeAdapter(Envelope)


def wrap(notification: Notification) -> Envelope:
    """The envelope of one stored event."""
    payload = json.loads(notification.state)
    type_version = payload.pop(VERSION_KEY, 1)
    topic = CATALOGUE.current_topic(notification.topic) or notification.topic
    return Envelope(
        position=notification.id,
        aggregate_id=UUID(str(notification.originator_id)),
        version=notification.originator_version,
        topic=notification.topic,
        type=topic.split(":", 1)[-1],
        type_version=type_version,
        occurred_at=payload["occurred_at"],
        recorded_at=payload["timestamp"],
        actor=payload["actor"],
        payload=payload,
    )
