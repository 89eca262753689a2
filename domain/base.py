"""Frozen pydantic events and the aggregate base that stamps every event with who, when and why."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, ParamSpec, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate as LibraryAggregate
from eventsourcing.domain import CanInitAggregate, CanMutateAggregate
from pydantic import BaseModel, ConfigDict

from domain.errors import FutureDate, InvalidValue, OutOfTimeline
from domain.inputs import key_digest

_NAMESPACE = uuid5(NAMESPACE_URL, "https://cluster-ledger.eu/ref")


@functools.lru_cache(maxsize=1 << 17)
def ref_id(ref: str) -> UUID:
    """The aggregate id of a platform reference (stable across machines); remembered, as a batch asks for the same refs often."""
    return uuid5(_NAMESPACE, ref)


@dataclass(frozen=True)
class Action:
    """Who asked for a change, when it happened, when it was recorded, and its idempotency key."""

    actor: str
    occurred_at: datetime
    recorded_at: datetime
    key: str
    digest: str
    given_key: str | None = None  # the key as the user typed it, for messages only; never stored

    def check_happened(self) -> None:
        """Refuse a fact dated after the moment it is recorded."""
        if self.occurred_at > self.recorded_at:
            raise FutureDate(
                f"occurred_at: {self.occurred_at.isoformat()!r} is in the future "
                f"(now {self.recorded_at.isoformat()})"
            )

    def check_not_before(self, since: datetime | date, what: str) -> None:
        """Refuse a fact dated before `since`, the effective time (or first day) of `what`, which it depends on."""
        early = self.occurred_at < since if isinstance(since, datetime) else self.occurred_at.date() < since
        if early:
            raise OutOfTimeline(self.occurred_at, what, since)


def digest_action_key(fields: dict[str, Any]) -> dict[str, Any]:
    """Upcaster: an idempotency key stored as typed (before version 2 of every event) is read as its digest."""
    if "action_key" not in fields:
        return dict(fields)
    return {**fields, "action_key": key_digest(fields["action_key"])}


class DomainEvent(BaseModel):
    """An immutable fact. `timestamp` is the recorded time, `occurred_at` the effective time.

    Version 2 of every event stores the digest of its idempotency key, never the key as typed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    class_version: ClassVar[int] = 2
    upcast_v1_v2 = staticmethod(digest_action_key)

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    occurred_at: datetime
    actor: str
    action_key: str
    action_digest: str


P = ParamSpec("P")
R = TypeVar("R")


def idempotent(method: Callable[P, R]) -> Callable[P, R | None]:
    """Skip a command whose action key this aggregate has already recorded."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        aggregate = args[0]
        action = args[1]
        assert isinstance(aggregate, Aggregate) and isinstance(action, Action)
        if aggregate.has_applied(action):
            return None
        action.check_happened()
        return method(*args, **kwargs)

    return wrapper


class Aggregate(LibraryAggregate):
    """Base of every ledger aggregate: remembers the action keys it has applied."""

    kind = "aggregate"
    created_as = "creation"
    """What the creating fact is called in messages: no fact of this record is dated before it (`created_at`, set on replay)."""

    class Event(DomainEvent, CanMutateAggregate[UUID]):
        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            aggregate.action_keys[self.action_key] = self.action_digest
            return aggregate

    class Created(Event, CanInitAggregate[UUID]):
        originator_topic: str
        ref: str

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            aggregate.created_at = self.occurred_at
            return aggregate

    def __base_init__(
        self, originator_id: UUID, originator_version: int, timestamp: datetime
    ) -> None:
        super().__base_init__(originator_id, originator_version, timestamp)
        self.action_keys: dict[str, str] = {}
        self.ref = ""

    def has_applied(self, action: Action) -> bool:
        """True if this very action was applied before; a key reused for another action is refused."""
        digest = self.action_keys.get(action.key)
        if digest is None:
            return False
        if digest != action.digest:
            raise InvalidValue("key", action.given_key or action.key, f"was already used for a different action on {self.ref!r}")
        return True

    @classmethod
    def start(cls, event_class: type[Created], ref: str, action: Action, **fields: Any) -> Any:
        """Create the aggregate of `ref` with its first event."""
        action.check_happened()
        return cls._create(
            event_class,
            id=ref_id(ref),
            ref=ref,
            timestamp=action.recorded_at,
            occurred_at=action.occurred_at,
            actor=action.actor,
            action_key=action.key,
            action_digest=action.digest,
            **fields,
        )

    def described(self) -> str:
        """This record's creating fact, as messages name it."""
        return f"the {self.created_as} of {self.ref}"

    def emit(self, event_class: type[Event], action: Action, **fields: Any) -> None:
        """Record one event for `action` on this aggregate, which is never dated before the aggregate's creation."""
        action.check_not_before(self.created_at, self.described())
        self.trigger_event(
            event_class,
            timestamp=action.recorded_at,
            occurred_at=action.occurred_at,
            actor=action.actor,
            action_key=action.key,
            action_digest=action.digest,
            **fields,
        )
