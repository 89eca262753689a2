"""Maps frozen pydantic events to stored JSON and back, through the catalogue of the ledger's event types."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from pydantic import BaseModel

from domain.catalogue import VERSION_KEY, EventCatalogue, ledger_catalogue, version_of
from domain.errors import EventTooLarge, UnreadableEvent
from transparency.leaf import MAX_LEAF, leaf_size, leaf_size_bound
from transparency.signing import SIGNED_KEY

CATALOGUE = ledger_catalogue()
VERSION_PREFIX = f'{{"{VERSION_KEY}":'
"""How every stored state written since versions exist begins; the version's digits follow."""
_COLUMNS = frozenset({"originator_id", "originator_version"})
"""Fields stored in columns of their own, not in the state."""


class PydanticMapper(Mapper[UUID]):
    """Stores an event as its class version and pydantic JSON (id and version have columns of their own)."""

    def __init__(self, transcoder: Transcoder, catalogue: EventCatalogue = CATALOGUE) -> None:
        super().__init__(transcoder=transcoder)
        self.catalogue = catalogue
        self._heads: dict[type, tuple[str, str]] = {}
        """Per event class, once checked: its topic, and how its stored state begins (version first)."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        cls = type(domain_event)
        head = self._heads.get(cls)
        if head is None:
            # The version goes first, so a reader sees which shape follows (every event has fields, so `{` is followed by one).
            head = self._heads[cls] = (self.catalogue.topic_for(cast(Any, cls)), f"{VERSION_PREFIX}{version_of(cast(Any, cls))},")
        topic, start = head
        fields = cast(BaseModel, domain_event).model_dump_json(exclude=_COLUMNS)
        state = (start + fields[1:]).encode()
        # Read exactly only near the limit: the JSON of the payload is parsed for its recorded time.
        if leaf_size_bound(topic, state) > MAX_LEAF and (size := leaf_size(topic, state)) > MAX_LEAF:
            raise EventTooLarge(topic.rpartition(":")[2], size, MAX_LEAF)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=topic,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        position = getattr(stored_event, "id", None)
        return decode_event(stored_event.topic, stored_event.state, stored_event.originator_id, stored_event.originator_version, position, self.catalogue)


def decode_event(
    topic: str, state: bytes, originator_id: UUID | str, originator_version: int, position: int | None = None,
    catalogue: EventCatalogue = CATALOGUE,
) -> Any:
    """Rebuild the frozen event of a stored record, upcast to its current version."""
    return event_from_fields(topic, stored_fields(topic, state, position), originator_id, originator_version, position, catalogue)


def stored_fields(topic: str, state: bytes, position: int | None = None, loads: Callable[[bytes], Any] = json.loads) -> dict[str, Any]:
    """The fields of a stored state (`loads` may be a faster JSON decoder); UnreadableEvent unless it is a JSON object."""
    try:
        fields = loads(state)
    except (ValueError, RecursionError) as error:
        raise UnreadableEvent(topic, "?", position, f"stored state is not JSON ({type(error).__name__})") from None
    if not isinstance(fields, dict):
        raise UnreadableEvent(topic, "?", position, "stored state is not a JSON object")
    # The signature block is evidence of who wrote the event, like its place in the tree: not one of its fields.
    fields.pop(SIGNED_KEY, None)
    return fields


def event_from_fields(
    topic: str, fields: dict[str, Any], originator_id: UUID | str, originator_version: int, position: int | None = None,
    catalogue: EventCatalogue = CATALOGUE,
) -> Any:
    """Rebuild a frozen event from its stored fields (a signature block among them is left aside); a topic that names none of
    the ledger's event types is refused."""
    if SIGNED_KEY in fields:
        fields = {k: v for k, v in fields.items() if k != SIGNED_KEY}
    return catalogue.decode(topic, fields, originator_id, originator_version, position)
