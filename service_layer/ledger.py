"""The ledger application: one handler per command; a batch of commands, or a stream of them in chunks, is one atomic save."""

from __future__ import annotations

import contextlib
import functools
import gc
import getpass
import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent

from adapters import scan
from adapters.mapper import PydanticMapper
from domain.base import Action, Aggregate, ref_id
from domain.errors import (
    AlreadyExists, AlreadyForgotten, AlteredId, ConcurrentChange, InvalidValue, LedgerError, NotRegistered, ReadOnlyMirror,
    RecordedTimeBackwards, UnknownReference, UnreadableEvent,
)
from domain.inputs import checked_actor, key_digest
from domain.model import (
    Activity,
    BilateralMeeting,
    ClusterOrganisation,
    CooperationCase,
    Participation,
    Person,
    Pitch,
    Publication,
    participation_ref,
)
from domain.values import Members
from service_layer import commands as c

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")
Clock = Callable[[], datetime]

CHUNK = 2_000
"""Commands carried out and written at a time by `Ledger.execute_in_chunks`; memory holds one chunk."""
CARRIED = 10_000
"""Aggregates a chunk hands on to the next (the most recently used), so records used again soon are not read back."""


class Writing(Protocol):
    """One open write transaction of a recorder (`recorder.writing()`): reads in it see its own uncommitted writes."""

    def events_of(self, ids: Collection[UUID]) -> dict[UUID, list[StoredEvent]]: ...

    def personal_data(self, person: str) -> tuple[str, str] | None: ...

    def write(
        self, stored_events: Sequence[StoredEvent], personal_data: Sequence[tuple[str, str, str]] = (), forget: Sequence[str] = ()
    ) -> list[int]: ...

    def keep(self) -> None: ...


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(tz=timezone.utc)


def default_actor() -> str:
    """The operating-system user, for commands that name no actor."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def acting(actor: str | None) -> str:
    """The actor of the commands that name none: `actor`, else the system user, held to the rules a command's actor gets."""
    return checked_actor(default_actor() if actor is None else actor)


class CommandFailed(LedgerError):
    """A command of a batch broke a rule; `index` says which."""

    def __init__(self, index: int, error: LedgerError) -> None:
        self.index = index
        self.error = error
        super().__init__(str(error))


class BatchFailed(LedgerError):
    """One or more commands of a batch failed; nothing was written."""

    def __init__(self, failures: list[CommandFailed]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"command {f.index + 1}: {f.error}" for f in failures))


@dataclass
class Outcome:
    """What a batch wrote: how many events, and how many commands were already applied."""

    events: int = 0
    repeated: int = 0
    positions: list[int] = field(default_factory=list)


_UNSEEN: Any = object()


class _Batch:
    """Aggregates loaded or created while a batch runs; saved together at its end."""

    def __init__(self, app: Ledger, writing: Writing | None = None, carried: dict[UUID, Aggregate | None] | None = None) -> None:
        self.app = app
        self.writing = writing
        """The open transaction this batch reads from (and is written into), if any."""
        self.aggregates: dict[UUID, Aggregate | None] = {}
        self.loaded: dict[UUID, Aggregate | None] = carried if carried is not None else {}
        """Aggregates preloaded (or handed on by the chunk before, as saved) but not used yet (None: the ref has no events)."""
        self.personal_data: list[tuple[str, str, str]] = []
        self.forgotten: list[str] = []

    def preload(self, refs: Iterable[str]) -> None:
        """Load the aggregates of `refs` in a few queries; a ref with no events is then known to be new, with no lookup."""
        # Refs first made unique as strings, whose hashes Python keeps: a UUID's hash is computed at every lookup.
        ids = {ref_id(ref) for ref in set(refs)} - self.aggregates.keys() - self.loaded.keys()
        if not ids:
            return
        stored = self.writing.events_of(ids) if self.writing is not None else scan.events_of(self.app.recorder, ids)
        if stored is None:
            return  # a store read one aggregate at a time, when first used
        to_event = self.app.mapper.to_domain_event
        for aggregate_id in ids:
            aggregate = None
            for event in stored.get(aggregate_id, ()):
                aggregate = to_event(event).mutate(aggregate)
            self.loaded[aggregate_id] = aggregate

    def find(self, ref: str, cls: type[A]) -> A | None:
        aggregate_id = ref_id(ref)
        found = self.aggregates.get(aggregate_id, _UNSEEN)
        if found is _UNSEEN:
            found = self.loaded.pop(aggregate_id, _UNSEEN)
            if found is _UNSEEN and self.writing is not None:
                self.preload([ref])
                found = self.loaded.pop(aggregate_id)
            elif found is _UNSEEN:
                try:
                    found = self.app.repository.get(aggregate_id)
                except AggregateNotFoundError:
                    found = None
            # Taken over on first use, so a batch saves its aggregates in the order its commands first touch them.
            self.aggregates[aggregate_id] = found
        if found is not None and not isinstance(found, cls):
            raise UnknownReference(cls.kind, f"{ref} (it is a {found.kind})")
        return found  # type: ignore[return-value]

    def get(self, ref: str, cls: type[A]) -> A:
        found = self.find(ref, cls)
        if found is None:
            raise UnknownReference(cls.kind, ref)
        return found

    def is_new(self, ref: str, cls: type[Aggregate], action: Action) -> bool:
        """True if `ref` is free; False if this very action created it; else AlreadyExists."""
        existing = self.find(ref, cls)
        if existing is None:
            return True
        if existing.has_applied(action):
            return False
        raise AlreadyExists(cls.kind, ref)

    def add(self, aggregate: Aggregate) -> None:
        self.aggregates[aggregate.id] = aggregate

    def participation(self, activity: str, participant: str) -> Participation:
        found = self.find(participation_ref(activity, participant), Participation)
        if found is None:
            raise NotRegistered(f"participant: {participant!r} is not registered for activity {activity!r}")
        return found

    def pending(self) -> list[Aggregate]:
        return [a for a in self.aggregates.values() if a is not None and a.pending_events]

    def carried(self, most: int) -> dict[UUID, Aggregate | None]:
        """The aggregates of this batch, the most recently used last, cut to `most` once they pass twice that, for the next
        chunk (call once its events are written)."""
        known = {**self.loaded, **self.aggregates}
        if len(known) > 2 * most:  # trimmed now and then, not at every chunk
            known = dict(itertools.islice(known.items(), len(known) - most, None))
        return known

    def held_personal_data(self, person: str) -> tuple[str, str] | None:
        """The name and e-mail held for `person`, as this batch's transaction sees them."""
        if self.writing is not None:
            return self.writing.personal_data(person)
        return getattr(self.app.recorder, "personal_data", lambda _: None)(person)


Handler = Callable[[_Batch, Any, Action], None]


class Ledger(Application[UUID]):
    """The event-sourced ledger of the cluster collaboration platform."""

    name = "Ledger"

    def __init__(self, env: dict[str, str] | None = None, clock: Clock = utc_now) -> None:
        super().__init__(env)
        self.clock = clock

    def construct_mapper(self) -> Mapper[UUID]:
        return PydanticMapper(transcoder=self.construct_transcoder())

    def execute(self, commands: Sequence[c.Command], actor: str | None = None, *, write: bool = True) -> Outcome:
        """Carry out `commands` in order and save them at once, or raise and write nothing.

        With `write=False` every command is checked against the state the batch would create, and nothing is saved.
        """
        # Everything a batch builds lives until it is saved; the cyclic collector would only walk it again and again.
        with _collector_paused():
            try:
                return self._execute(commands, actor, write)
            except RecordedTimeBackwards as error:
                if not self._overtaken(error) or getattr(self.recorder, "writing", None) is None:
                    raise
            # A write stamped after this one took the lock first: decide and stamp again, this time with the lock held.
        return self.execute_in_chunks(enumerate(commands), actor, positions=True)

    def _execute(self, commands: Sequence[c.Command], actor: str | None, write: bool) -> Outcome:
        fallback_actor = acting(actor)
        batch = _Batch(self)
        # One batch is one transaction, so all its events share one recorded time.
        failures = self._apply(batch, commands, fallback_actor, self.clock())
        if failures:
            raise BatchFailed(failures)
        pending = batch.pending()
        # Each command that is not a repeat records exactly one event.
        repeated = len(commands) - sum(len(a.pending_events) for a in pending)
        if not write:
            return Outcome(events=len(commands) - repeated, repeated=repeated)
        if not pending and not batch.personal_data:
            return Outcome(repeated=repeated)
        self._refuse_if_mirror()
        try:
            recordings = self.save(*pending, personal_data=batch.personal_data, forget=batch.forgotten)
        except IntegrityError as error:
            raise _concurrent_change() from error
        if batch.forgotten:
            # Erased rows must not survive in freed pages or write-ahead logs either.
            getattr(self.recorder, "scrub_personal_data", lambda: None)()
        return Outcome(
            events=len(recordings),
            repeated=repeated,
            positions=[r.notification.id for r in recordings],
        )

    def execute_in_chunks(
        self,
        commands: Iterable[tuple[int, c.Command]],
        actor: str | None = None,
        *,
        failed: Callable[[int, LedgerError], None] | None = None,
        keep: Callable[[], bool] = lambda: True,
        chunk: int | None = None,
        positions: bool = False,
    ) -> Outcome:
        """Carry out a stream of numbered commands (an import's line numbers) as one atomic save, CHUNK at a time.

        Each chunk is checked against the state the commands before it create and written into one open transaction, where
        the next chunk reads it back, so memory holds one chunk whatever the length of the stream. The transaction commits
        at the end if no command failed and `keep()` (asked once the stream is exhausted) is true; else nothing is written.
        Each failure goes to `failed(number, error)` as it is found (or is collected), and the end raises BatchFailed.
        A store without `writing()` (memory://) runs the stream as one batch. The outcome lists the positions written only
        with `positions` (an import's would fill memory).
        """
        fallback_actor = acting(actor)
        open_writing = getattr(self.recorder, "writing", None)
        if open_writing is None:
            return self._execute_at_once(list(commands), fallback_actor, failed, keep)
        found: list[CommandFailed] = []
        report = failed or (lambda number, error: found.append(CommandFailed(number, error)))
        failures = 0
        outcome = Outcome()
        to_stored = self.mapper.to_stored_event
        forgot = kept = False
        carried: dict[UUID, Aggregate | None] = {}
        self._refuse_if_mirror()
        with _collector_paused(), open_writing() as writing:
            # The whole stream is one transaction, so all its events share one recorded time, read once the session holds
            # the write lock: no other write can be recorded after this time and before this stream.
            recorded_at = self.clock()
            for run in _runs(commands, chunk or CHUNK):
                # What the chunk before saved is current: once this transaction has written, no one else writes until it ends
                # (and a record someone changed before that fails the write as a concurrent change).
                batch = _Batch(self, writing, carried)
                for failure in self._apply(batch, [command for _, command in run], fallback_actor, recorded_at):
                    report(run[failure.index][0], failure.error)
                    failures += 1
                events = [event for aggregate in batch.pending() for event in aggregate.collect_events()]
                outcome.repeated += len(run) - len(events)
                outcome.events += len(events)
                forgot = forgot or bool(batch.forgotten)
                if events or batch.personal_data or batch.forgotten:
                    try:
                        written = writing.write([to_stored(event) for event in events], batch.personal_data, batch.forgotten)
                        if positions:
                            outcome.positions += written
                    except IntegrityError as error:
                        raise _concurrent_change() from error
                    except RecordedTimeBackwards as error:
                        raise self._recorded_meanwhile(error) from None
                carried = batch.carried(CARRIED)
            if failures:
                raise BatchFailed(found)
            if kept := keep():
                writing.keep()
        if forgot and kept:
            # Erased rows must not survive in freed pages or write-ahead logs either.
            getattr(self.recorder, "scrub_personal_data", lambda: None)()
        return outcome

    def _overtaken(self, error: RecordedTimeBackwards) -> bool:
        """Whether this clock has passed the stored time the write fell behind: another write overtook it (a clock set back has not)."""
        return bool(self.clock() >= error.last)

    def _recorded_meanwhile(self, error: RecordedTimeBackwards) -> LedgerError:
        """The error to show for a write refused for a recorded time before the last stored event's."""
        if self._overtaken(error):  # cannot happen once the lock is held before the time is read; named should a store differ
            return ConcurrentChange("other writes were recorded while this one waited; nothing was written, run the command again")
        return error

    def _execute_at_once(
        self,
        numbered: list[tuple[int, c.Command]],
        actor: str | None,
        failed: Callable[[int, LedgerError], None] | None,
        keep: Callable[[], bool],
    ) -> Outcome:
        try:
            return self.execute([command for _, command in numbered], actor, write=keep())
        except BatchFailed as error:
            failures = [CommandFailed(numbered[f.index][0], f.error) for f in error.failures]
            if failed is None:
                raise BatchFailed(failures) from None
            for failure in failures:
                failed(failure.index, failure.error)
            raise BatchFailed([]) from None

    def _apply(self, batch: _Batch, commands: Sequence[c.Command], fallback_actor: str, recorded_at: datetime) -> list[CommandFailed]:
        """Run each command's handler against `batch`; the commands that broke a rule (they leave no event)."""
        batch.preload(ref for command in commands for ref in refs_named(command))
        failures: list[CommandFailed] = []
        for index, command in enumerate(commands):
            key, digest = command.key_and_digest()
            action = Action(
                actor=command.actor or fallback_actor,
                occurred_at=command.occurred_at,
                recorded_at=recorded_at,
                key=key_digest(key),
                given_key=command.key,
                digest=digest,
            )
            try:
                HANDLERS[type(command)](batch, command, action)
            except LedgerError as error:
                failures.append(CommandFailed(index, error))
        return failures

    def _refuse_if_mirror(self) -> None:
        """A verified mirror holds another log's events exactly: nothing else may be added to it."""
        source = getattr(self.recorder, "mirror_source", lambda: None)()
        if source is not None:
            raise ReadOnlyMirror(source)

    def aggregate_events(self, ref_or_id: str, until: datetime | None = None) -> list[Any]:
        """Every event of one aggregate, oldest first; with `until`, those recorded by then."""
        try:
            aggregate_id = UUID(ref_or_id)
        except ValueError:
            aggregate_id = ref_id(ref_or_id)
        events = []
        for index, stored in enumerate(self.recorder.select_events(aggregate_id)):
            try:
                events.append(self.mapper.to_domain_event(stored))
            except UnreadableEvent as error:
                positions = getattr(self.recorder, "positions", None)
                if error.position is not None or positions is None:
                    raise
                # Read by aggregate, an event does not carry its position: the message names it all the same.
                raise UnreadableEvent(error.topic, error.version, positions(aggregate_id)[index], error.reason) from None
        # Ids are looked up as written; an event whose stored id was respelled would be left out without a word.
        respelled = getattr(self.recorder, "altered_ids", lambda after, originator_id: [])(0, aggregate_id)
        if respelled:
            raise AlteredId(*respelled[0], record=ref_or_id)
        if not events:
            raise UnknownReference("record", ref_or_id)
        return [e for e in events if until is None or e.timestamp <= until]


_REF_FIELDS = ("org", "activity", "person", "meeting", "pitch", "case", "publication", "source")


@functools.cache
def _ref_fields(command_type: type[c.Command]) -> tuple[str, ...]:
    return tuple(name for name in _REF_FIELDS if name in command_type.model_fields)


def refs_named(command: c.Command) -> Iterator[str]:
    """The refs a command names (and the participations it implies), so a batch can load them at once."""
    for name in _ref_fields(type(command)):
        value = getattr(command, name)
        if isinstance(value, str):
            yield value
    if isinstance(command, c.IdentifyCase):
        yield from command.orgs
    if isinstance(command, (c.RegisterParticipant, c.AttendActivity, c.CancelRegistration)):
        yield participation_ref(command.activity, command.participant)
    elif isinstance(command, c.RequestMeeting):
        yield participation_ref(command.activity, command.requester)
        yield participation_ref(command.activity, command.partner)


def _runs(commands: Iterable[T], size: int) -> Iterator[list[T]]:
    run: list[T] = []
    for command in commands:
        run.append(command)
        if len(run) == size:
            yield run
            run = []
    if run:
        yield run


def _concurrent_change() -> ConcurrentChange:
    return ConcurrentChange("another writer changed the same record first; nothing was written, run the command again")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _register_org(b: _Batch, cmd: c.RegisterOrg, action: Action) -> None:
    if b.is_new(cmd.org, ClusterOrganisation, action):
        fields = cmd.model_dump(include={"name", "country", "region", "nuts_version", "sectors", "ecosystems", "year_established"})
        b.add(ClusterOrganisation.register(cmd.org, action, members=Members(**cmd.members.model_dump()), **fields))


def _update_org(b: _Batch, cmd: c.UpdateOrg, action: Action) -> None:
    org = b.get(cmd.org, ClusterOrganisation)
    fields = {k: getattr(cmd, k) for k in ("name", "country", "region", "nuts_version", "sectors", "ecosystems", "year_established")}
    # Only the member types the update names change; the others keep their counts.
    fields["members"] = None if cmd.members is None else org.members.model_copy(update=cmd.members.named())
    org.update(action, **fields)


def _schedule_activity(b: _Batch, cmd: c.ScheduleActivity, action: Action) -> None:
    if b.is_new(cmd.activity, Activity, action):
        fields = cmd.model_dump(include={"title", "starts_on", "ends_on", "place", "online", "target_countries"})
        b.add(Activity.schedule(cmd.activity, action, activity_kind=cmd.kind, **fields))


def _register_person(b: _Batch, cmd: c.RegisterPerson, action: Action) -> None:
    if b.is_new(cmd.person, Person, action):
        b.add(Person.register(cmd.person, action))
        b.personal_data.append((cmd.person, cmd.name, cmd.email))
        return
    held = b.held_personal_data(cmd.person)
    if held is None and b.get(cmd.person, Person).forgotten:
        raise AlreadyForgotten(f"person: {cmd.person!r} was forgotten; a forgotten person is not registered again")
    if held is not None and held != (cmd.name, cmd.email):
        raise InvalidValue("person", cmd.person, "is already registered with another name or e-mail")


def _forget_person(b: _Batch, cmd: c.ForgetPerson, action: Action) -> None:
    person = b.get(cmd.person, Person)
    if person.has_applied(action):
        return
    person.forget(action, cmd.reason)
    b.forgotten.append(cmd.person)


def _register_participant(b: _Batch, cmd: c.RegisterParticipant, action: Action) -> None:
    existing = b.find(participation_ref(cmd.activity, cmd.participant), Participation)
    if existing is not None and existing.has_applied(action):
        return
    activity = b.get(cmd.activity, Activity)
    activity.check_open()
    participant: ClusterOrganisation | Person = b.get(cmd.org, ClusterOrganisation) if cmd.org else b.get(cmd.participant, Person)
    if existing is None:
        b.add(Participation.register(action, activity, participant, cmd.participant_kind))
    else:
        existing.register_again(action)


def _request_meeting(b: _Batch, cmd: c.RequestMeeting, action: Action) -> None:
    if b.is_new(cmd.meeting, BilateralMeeting, action):
        activity = b.get(cmd.activity, Activity)
        requester = b.participation(cmd.activity, cmd.requester)
        partner = b.participation(cmd.activity, cmd.partner)
        b.add(BilateralMeeting.request(cmd.meeting, action, activity, requester, partner))


def _hold_meeting(b: _Batch, cmd: c.HoldMeeting, action: Action) -> None:
    meeting = b.get(cmd.meeting, BilateralMeeting)
    if meeting.has_applied(action):
        return
    requester = b.participation(meeting.activity, meeting.requester)
    partner = b.participation(meeting.activity, meeting.partner)
    meeting.hold(action, requester, partner)


def _deliver_pitch(b: _Batch, cmd: c.DeliverPitch, action: Action) -> None:
    if b.is_new(cmd.pitch, Pitch, action):
        org = b.get(cmd.org, ClusterOrganisation)
        b.add(Pitch.deliver(cmd.pitch, action, b.get(cmd.activity, Activity), org, cmd.title))


def _identify_case(b: _Batch, cmd: c.IdentifyCase, action: Action) -> None:
    if b.is_new(cmd.case, CooperationCase, action):
        orgs = tuple(b.get(ref, ClusterOrganisation) for ref in cmd.orgs)
        source_cls: type[Aggregate] = BilateralMeeting if cmd.source_kind == "meeting" else Activity
        source = b.get(cmd.source, source_cls)
        b.add(CooperationCase.identify(cmd.case, action, orgs, cmd.source_kind, source, cmd.title))  # type: ignore[arg-type]


def _publish_publication(b: _Batch, cmd: c.PublishPublication, action: Action) -> None:
    if b.is_new(cmd.publication, Publication, action):
        b.add(Publication.publish(cmd.publication, action, cmd.kind, cmd.title, cmd.country))


HANDLERS: dict[type[c.Command], Handler] = {
    c.RegisterOrg: _register_org,
    c.PublishOrg: lambda b, cmd, a: b.get(cmd.org, ClusterOrganisation).publish(a),
    c.UpdateOrg: _update_org,
    c.AwardLabel: lambda b, cmd, a: b.get(cmd.org, ClusterOrganisation).award_label(a, cmd.level, cmd.valid_until),
    c.ArchiveOrg: lambda b, cmd, a: b.get(cmd.org, ClusterOrganisation).archive(a, cmd.reason),
    c.ScheduleActivity: _schedule_activity,
    c.HoldActivity: lambda b, cmd, a: b.get(cmd.activity, Activity).hold(a),
    c.CancelActivity: lambda b, cmd, a: b.get(cmd.activity, Activity).cancel(a, cmd.reason),
    c.RegisterPerson: _register_person,
    c.ForgetPerson: _forget_person,
    c.RegisterParticipant: _register_participant,
    c.AttendActivity: lambda b, cmd, a: b.participation(cmd.activity, cmd.participant).attend(a),
    c.CancelRegistration: lambda b, cmd, a: b.participation(cmd.activity, cmd.participant).cancel(a),
    c.RequestMeeting: _request_meeting,
    c.AcceptMeeting: lambda b, cmd, a: b.get(cmd.meeting, BilateralMeeting).accept(a),
    c.DeclineMeeting: lambda b, cmd, a: b.get(cmd.meeting, BilateralMeeting).decline(a),
    c.HoldMeeting: _hold_meeting,
    c.CancelMeeting: lambda b, cmd, a: b.get(cmd.meeting, BilateralMeeting).cancel(a, cmd.outcome),
    c.DeliverPitch: _deliver_pitch,
    c.IdentifyCase: _identify_case,
    c.AdvanceCase: lambda b, cmd, a: b.get(cmd.case, CooperationCase).advance(a, cmd.stage, cmd.project),
    c.AbandonCase: lambda b, cmd, a: b.get(cmd.case, CooperationCase).abandon(a, cmd.reason),
    c.PublishPublication: _publish_publication,
    c.UpdatePublication: lambda b, cmd, a: b.get(cmd.publication, Publication).update(a, cmd.title, cmd.note),
}

