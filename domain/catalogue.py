"""The fixed catalogue of the ledger's event types: stored topics (and old names) to classes, with versions and upcasters."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from domain.base import Aggregate, DomainEvent
from domain.errors import InvalidValue, UnreadableEvent

VERSION_KEY = "class_version"
"""The stored field that holds an event's class version (eventsourcing's name for it); absent means 1."""

TOPIC_ALIASES: dict[str, str] = {
    # old stored topic -> current topic. A renamed or moved event class adds a line here; none is ever removed.
}


def topic_of(cls: type[DomainEvent]) -> str:
    """The topic an event class is stored under: `module:Qualified.Name`."""
    return f"{cls.__module__}:{cls.__qualname__}"


def version_of(cls: type[DomainEvent]) -> int:
    """The current class version of an event type (1 unless the class says otherwise)."""
    return int(getattr(cls, "class_version", 1))


def events_of(aggregates: Iterable[type[Aggregate]]) -> Iterator[type[DomainEvent]]:
    """Every event class declared inside the given aggregates (not the library's generic `Event` and `Created` bases)."""
    for aggregate in aggregates:
        for name, value in vars(aggregate).items():
            if name in ("Event", "Created") or not (isinstance(value, type) and issubclass(value, DomainEvent)):
                continue
            if value.__qualname__ == f"{aggregate.__qualname__}.{name}":
                yield value


class EventCatalogue:
    """Resolves stored topics to the classes named here, and upcasts stored fields to each class's current version.

    An event class at version N > 1 declares `class_version = N` and one pure static method per step,
    `upcast_v1_v2(fields) -> fields`, ..., `upcast_v{N-1}_v{N}`, as eventsourcing does.
    Nothing outside the catalogue is ever resolved: a topic is a key here, never a module to import.
    """

    def __init__(self, classes: Iterable[type[DomainEvent]], aliases: Mapping[str, str] | None = None) -> None:
        self._classes = {topic_of(cls): cls for cls in classes}
        self._aliases = dict(aliases or {})
        for old, new in self._aliases.items():
            if new not in self._classes:
                raise ValueError(f"alias {old!r} points to {new!r}, which is not in the catalogue")
        for cls in self._classes.values():
            for step in range(1, version_of(cls)):
                if not callable(getattr(cls, f"upcast_v{step}_v{step + 1}", None)):
                    raise ValueError(f"{topic_of(cls)} is at version {version_of(cls)} but has no upcast_v{step}_v{step + 1}")

    def topics(self) -> dict[str, type[DomainEvent]]:
        """Current topic -> class, for every event type."""
        return dict(self._classes)

    def aliases(self) -> dict[str, str]:
        """Old topic -> current topic."""
        return dict(self._aliases)

    def type_names(self, given: str) -> set[str]:
        """The event type names `given` stands for: one full name, every type of that event name, or every type of that record kind."""
        names = {topic.split(":", 1)[1] for topic in self._classes}
        found = {n for n in names if given in (n, n.split(".")[0], n.split(".")[-1])}
        if not found:
            raise InvalidValue("type", given, f"not an event type; one of: {', '.join(sorted(names))} (or the part before or after the dot)")
        return found

    def stored_topics(self, names: set[str]) -> list[str]:
        """Every topic events of the type `names` may be stored under: their current topics and the aliases of those."""
        current = {topic for topic in self._classes if topic.split(":", 1)[1] in names}
        return sorted(current | {alias for alias, topic in self._aliases.items() if topic in current})

    def current_topic(self, topic: str) -> str | None:
        """The current topic of a stored topic (itself, or what its alias points to); None if unknown."""
        if topic in self._classes:
            return topic
        return self._aliases.get(topic)

    def topic_for(self, cls: type[DomainEvent]) -> str:
        """The topic to store an event of `cls` under; refuses classes that are not in the catalogue."""
        topic = topic_of(cls)
        if self._classes.get(topic) is not cls:
            raise UnreadableEvent(topic, 0, None, "not one of the ledger's event types, so it cannot be stored")
        return topic

    def readable(self, topic: str, version: int) -> str | None:
        """Why an event stored as (`topic`, `version`) cannot be read by this code; None if it can."""
        current = self.current_topic(topic)
        if current is None:
            return "unknown event type"
        newest = version_of(self._classes[current])
        if version < 1:
            return "class versions start at 1"
        if version > newest:
            return f"written by a newer version of the ledger (this code reads up to version {newest})"
        return None

    def upcast(self, topic: str, fields: Mapping[str, Any], position: int | None = None) -> tuple[type[DomainEvent], dict[str, Any]]:
        """The class of a stored event and its fields brought up to the class's current version."""
        stored = dict(fields)
        version = stored.pop(VERSION_KEY, 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise UnreadableEvent(topic, version, position, "the stored class version is not a whole number")
        problem = self.readable(topic, version)
        if problem is not None:
            raise UnreadableEvent(topic, version, position, problem)
        cls = self._classes[self.current_topic(topic) or topic]
        while version < version_of(cls):
            stored = getattr(cls, f"upcast_v{version}_v{version + 1}")(stored)
            version += 1
        return cls, stored

    def decode(self, topic: str, fields: Mapping[str, Any], originator_id: Any, originator_version: int, position: int | None = None) -> Any:
        """The frozen domain event of stored fields, upcast and validated."""
        cls, current = self.upcast(topic, fields, position)
        current["originator_id"] = originator_id
        current["originator_version"] = originator_version
        try:
            return cls.model_validate(current)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "value"
            raise UnreadableEvent(topic, fields.get(VERSION_KEY, 1), position, f"{where}: {first['msg']}") from None


def ledger_catalogue() -> EventCatalogue:
    """The catalogue of every event type of the ledger's aggregates."""
    from domain.model import AGGREGATES
    from domain.writer import Writer

    return EventCatalogue(events_of((*AGGREGATES, Writer)), TOPIC_ALIASES)
