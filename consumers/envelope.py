"""The JSON envelope each ledger event travels in on Kafka, and its one decoder."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationInfo, model_validator

from adapters.mapper import CATALOGUE, event_from_fields
from domain.catalogue import VERSION_KEY
from transparency.signing import SIGNED_KEY


_WRAPPED = object()
"""The validation context of an envelope made here from a stored event, whose payload is read from its state."""


class Envelope(BaseModel):
    """One event: where it stands in the ledger, what it is, when, by whom, its fields, and its state exactly as stored.

    The stored state (with its signature block, if signed) is what a consumer checks a signature against; `payload`
    and `type_version` are read from it and must agree with it. Envelopes published before it existed carry none: unsigned.
    """

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
    state: str | None = None

    @model_validator(mode="after")
    def _agrees_with_state(self, info: ValidationInfo) -> Envelope:
        if self.state is not None and info.context is not _WRAPPED:
            fields, type_version = stored_payload(self.state, orjson.loads)  # consumers read every envelope: the faster parser
            if fields != self.payload or type_version != self.type_version:
                raise ValueError("payload and type_version do not match the stored state the envelope carries")
        return self

    def event(self) -> Any:
        """The domain event inside; raises if its type is unknown or its fields are not valid."""
        return event_from_fields(self.topic, {**self.payload, VERSION_KEY: self.type_version}, self.aggregate_id, self.version, self.position)


ENVELOPE: TypeAdapter[Envelope] = TypeAdapter(Envelope)


def stored_payload(state: str | bytes, loads: Callable[[str | bytes], Any] = json.loads) -> tuple[dict[str, Any], int]:
    """An event's fields and class version from its stored state, without the signature block."""
    payload = loads(state)
    payload.pop(SIGNED_KEY, None)
    return payload, payload.pop(VERSION_KEY, 1)


def wrap(notification: Notification) -> Envelope:
    """The envelope of one stored event."""
    payload, type_version = stored_payload(notification.state)
    topic = CATALOGUE.current_topic(notification.topic) or notification.topic
    return Envelope.model_validate({
        "position": notification.id,
        "aggregate_id": UUID(str(notification.originator_id)),
        "version": notification.originator_version,
        "topic": notification.topic,
        "type": topic.split(":", 1)[-1],
        "type_version": type_version,
        "occurred_at": payload["occurred_at"],
        "recorded_at": payload["timestamp"],
        "actor": payload["actor"],
        "payload": payload,
        "state": notification.state.decode("utf-8", "surrogatepass"),
    }, context=_WRAPPED)
