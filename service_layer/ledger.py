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

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Mapper, Notification, Recording, StoredEvent

from adapters import scan
from adapters.mapper import PydanticMapper
from domain.base import Action, Aggregate, ref_id
from domain.catalogue import topic_of
from domain.errors import (
    AlreadyExists, AlreadyForgotten, AlteredId, ConcurrentChange, InvalidValue, LedgerError, NotRegistered, ReadOnlyMirror,
    RecordedTimeBackwards, SigningRefused, UnknownReference, UnreadableEvent, WriterRuleBroken,
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
from domain.writer import Writer, check_writer_name, writer_ref
from service_layer import commands as c
from transparency.errors import BadKey
from transparency.note import Signer, parse_signer, parse_verifier
from transparency.signing import recorded_by, sign_batch

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")
Clock = Callable[[], datetime]

CHUNK = 2_000
"""Commands carried out and written at a time by `Ledger.execute_in_chunks`; memory holds one chunk."""
NO_SIGNING_KEY = "signing key: none given; give --signing-key FILE or set $LEDGER_SIGNING_KEY (make one with: ledger keygen NAME)"
"""Why a write without a signer is refused, and the fix."""
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
    first_writer: str = ""
    """The writer whose key this batch authorized before its commands' events, being the first signed write on an empty
    ledger (that event is not counted in `events` nor listed in `positions`)."""
    first_writer_position: int = 0


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
        self.scrub_again = False
        """A forgetting repeated: its erasure is scrubbed again, in case the first could not finish it."""

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

    def __init__(
        self, env: dict[str, str] | None = None, clock: Clock = utc_now, signer: Signer | None = None, signing_key: str | None = None
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.signer = signer
        """The key every write is signed with; the ledger refuses to write without one."""
        self.signing_key = signing_key
        """The file the signer is read from at the first write, when no signer is given (reads need no key)."""
        self._authorized = False
        """Whether the signer was found to be an authorized writer (once per process: a later revocation is seen by the next one)."""

    def construct_mapper(self) -> Mapper[UUID]:
        return PydanticMapper(transcoder=self.construct_transcoder())

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """`Application.save`, the pending events of a batch's aggregates collected without the library's runtime protocol
        checks (about 0.1 ms an aggregate); anything but the ledger's aggregates is saved the library's way."""
        if not all(isinstance(obj, Aggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in objs:
            processing_event.events += aggregate.collect_events()
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Store the events of one save as one batch signed by the signer (or unsigned, for the root writer only)."""
        events = processing_event.events
        stored = [self.mapper.to_stored_event(e) for e in events]
        if self.signer is not None:
            stored = sign_batch(stored, self.signer)
        ids = self.recorder.insert_events(stored, tracking=processing_event.tracking, **processing_event.saved_kwargs) or []
        recordings = [
            Recording(d, Notification(originator_id=s.originator_id, originator_version=s.originator_version, topic=s.topic, state=s.state, id=n))
            for d, s, n in zip(events, stored, ids, strict=True)
        ]
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        return recordings

    def writers(self) -> dict[str, Writer]:
        """Every writer ever authorized, by name, as stored."""
        topics = [topic_of(Writer.Authorized), topic_of(Writer.Revoked)]
        found: dict[str, Writer] = {}
        after = 0
        while page := list(self.recorder.select_notifications(start=after + 1, limit=1000, topics=topics)):
            for n in page:
                event = self.mapper.to_domain_event(n)
                found[event.name] = event.mutate(found.get(event.name))
            after = page[-1].id
        return found

    def _writer_check(self) -> tuple[c.AuthorizeWriter | None, SigningRefused | None]:
        """Before a write: the command that makes the signer the first writer of an empty ledger, if needed, or why the write
        will be refused if it writes anything (a batch of repeats writes nothing and needs no writer)."""
        try:
            return self._writer_to_add(), None
        except SigningRefused as error:
            return None, error

    def _writer_to_add(self) -> c.AuthorizeWriter | None:
        """Refuse a write without an authorized signer; on an empty ledger, the command that makes the signer its first writer."""
        if self.signer is None and self.signing_key:
            self.signer = read_signer(self.signing_key)
        if self.signer is None:
            raise SigningRefused(NO_SIGNING_KEY)
        if self._authorized:
            return None
        name = self.signer.name
        # Whether the ledger is empty is read before the writer: a first write committed in between then shows as this
        # writer's authorization (or the write fails as a concurrent change and is tried again), never as a stranger's key.
        empty = not self.recorder.max_notification_id()
        try:
            writer: Writer | None = self.repository.get(ref_id(writer_ref(name)))
        except AggregateNotFoundError:
            writer = None
        if writer is None and empty:
            check_writer_name(name)
            return c.AuthorizeWriter(name=name, verifier=self.signer.verifier.encode(), occurred_at=self.clock())
        if writer is not None and writer.revoked:
            raise SigningRefused(f"signing key: {name!r} was revoked as a writer of this ledger; sign with the key of an authorized writer")
        if writer is None or writer.verifier != self.signer.verifier.encode():
            why = " (another key of that name is)" if writer is not None else ""
            raise SigningRefused(
                f"signing key: {name!r} is not an authorized writer of this ledger{why}; an authorized writer runs: ledger writer authorize {name}.pub"
            )
        self._authorized = True
        return None

    def record_root_writer(self, verifier_text: str, actor: str | None = None) -> int:
        """Record the first writer, unsigned: the trust anchor, on a ledger that has no writer yet; its position."""
        try:
            verifier = parse_verifier(verifier_text)
        except BadKey as error:
            raise InvalidValue("root-key", verifier_text.strip()[:80], str(error)) from None
        if self.writers():
            raise WriterRuleBroken("root-key: this ledger already has writers; an authorized writer runs: ledger writer authorize NAME.pub")
        command = c.AuthorizeWriter(name=verifier.name, verifier=verifier.encode(), occurred_at=self.clock())
        batch = _Batch(self)
        failures = self._apply(batch, [command], actor or default_actor(), self.clock())
        if failures:
            raise failures[0].error
        signer, self.signer = self.signer, None
        try:
            recordings = self.save(*batch.pending())
        except IntegrityError as error:
            raise _concurrent_change() from error
        finally:
            self.signer = signer
        return recordings[0].notification.id

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
            except BatchFailed as error:
                if write and any(isinstance(f.error, AlreadyForgotten) for f in error.failures):
                    # Forgetting again finishes an erasure an earlier forget recorded but could not scrub (a reader, a full disk).
                    getattr(self.recorder, "scrub_personal_data", lambda: None)()
                raise
            # A write stamped after this one took the lock first: decide and stamp again, this time with the lock held.
        return self.execute_in_chunks(enumerate(commands), actor, positions=True)

    def _execute(self, commands: Sequence[c.Command], actor: str | None, write: bool) -> Outcome:
        fallback_actor = acting(actor)
        batch = _Batch(self)
        first_writer, refused = self._writer_check() if write else (None, None)
        # One batch is one transaction, so all its events share one recorded time.
        recorded_at = self.clock()
        if first_writer is not None:
            # The first signed write on an empty ledger authorizes its own key: that event goes first in the batch.
            commands = [first_writer, *commands]
        failures = self._apply(batch, commands, fallback_actor, recorded_at)
        if failures:
            offset = 1 if first_writer is not None else 0
            raise BatchFailed([CommandFailed(f.index - offset, f.error) for f in failures])
        pending = batch.pending()
        # Each command that is not a repeat records exactly one event.
        repeated = len(commands) - sum(len(a.pending_events) for a in pending)
        if not write:
            return Outcome(events=len(commands) - repeated, repeated=repeated)
        if not pending and not batch.personal_data:
            if batch.scrub_again:
                getattr(self.recorder, "scrub_personal_data", lambda: None)()
            return Outcome(repeated=repeated)
        self._refuse_if_mirror()
        if refused is not None:
            raise refused
        try:
            recordings = self.save(*pending, personal_data=batch.personal_data, forget=batch.forgotten)
        except IntegrityError as error:
            raise _concurrent_change() from error
        if batch.forgotten:
            # Erased rows must not survive in freed pages or write-ahead logs either.
            getattr(self.recorder, "scrub_personal_data", lambda: None)()
        positions = [r.notification.id for r in recordings]
        if first_writer is None:
            return Outcome(events=len(recordings), repeated=repeated, positions=positions)
        return Outcome(
            events=len(recordings) - 1, repeated=repeated, positions=positions[1:],
            first_writer=first_writer.name, first_writer_position=positions[0],
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
        first_writer, refused = self._writer_check()
        to_stored = self.mapper.to_stored_event
        signer = self.signer
        if first_writer is not None:
            outcome.first_writer, outcome.events = first_writer.name, -1  # its event is not one of the commands'
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
                if first_writer is not None:
                    # The first signed write on an empty ledger authorizes its own key: that event goes first in the first chunk.
                    run, first_writer = [(0, first_writer), *run], None
                for failure in self._apply(batch, [command for _, command in run], fallback_actor, recorded_at):
                    report(run[failure.index][0], failure.error)
                    failures += 1
                events = [event for aggregate in batch.pending() for event in aggregate.collect_events()]
                outcome.repeated += len(run) - len(events)
                outcome.events += len(events)
                forgot = forgot or bool(batch.forgotten)
                if events or batch.personal_data or batch.forgotten:
                    if refused is not None or signer is None:
                        raise refused or SigningRefused(NO_SIGNING_KEY)
                    try:
                        written = writing.write(sign_batch([to_stored(event) for event in events], signer), batch.personal_data, batch.forgotten)
                    except IntegrityError as error:
                        raise _concurrent_change() from error
                    except RecordedTimeBackwards as error:
                        raise self._recorded_meanwhile(error) from None
                    if outcome.first_writer and not outcome.first_writer_position and written:
                        outcome.first_writer_position, written = written[0], written[1:]
                    if positions:
                        outcome.positions += written
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
                key=key if command.key is None else key_digest(key),  # a key made from the content already is a digest
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
        aggregate_id = _aggregate_id(ref_or_id)
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

    def recorded_by(self, ref_or_id: str) -> dict[int, str]:
        """The writer whose key signed each version of one aggregate ("" for an unsigned one)."""
        return {s.originator_version: recorded_by(s.state) for s in self.recorder.select_events(_aggregate_id(ref_or_id))}


def _aggregate_id(ref_or_id: str) -> UUID:
    try:
        return UUID(ref_or_id)
    except ValueError:
        return ref_id(ref_or_id)


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


def read_signer(path: str) -> Signer:
    """The signer key in the file at `path`; SigningRefused naming the file if it cannot be read or is not a signer key."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise SigningRefused(f"signing key: {path!r}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise SigningRefused(f"signing key: {path!r}: not a signer key (not UTF-8 text)") from None
    try:
        return parse_signer(text)
    except BadKey as error:
        raise SigningRefused(f"signing key: {path!r}: {error}") from None


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
        b.scrub_again = True
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
        activity, org = b.get(cmd.activity, Activity), b.get(cmd.org, ClusterOrganisation)
        if b.find(participation_ref(cmd.activity, cmd.org), Participation) is None:  # a pitch is delivered by a participant
            raise NotRegistered(f"org: {cmd.org!r} is not registered for activity {cmd.activity!r}; register it first (participant register)")
        b.add(Pitch.deliver(cmd.pitch, action, activity, org, cmd.title))


def _identify_case(b: _Batch, cmd: c.IdentifyCase, action: Action) -> None:
    if b.is_new(cmd.case, CooperationCase, action):
        orgs = tuple(b.get(ref, ClusterOrganisation) for ref in cmd.orgs)
        source_cls: type[Aggregate] = BilateralMeeting if cmd.source_kind == "meeting" else Activity
        source = b.get(cmd.source, source_cls)
        b.add(CooperationCase.identify(cmd.case, action, orgs, cmd.source_kind, source, cmd.title))  # type: ignore[arg-type]


def _publish_publication(b: _Batch, cmd: c.PublishPublication, action: Action) -> None:
    if b.is_new(cmd.publication, Publication, action):
        b.add(Publication.publish(cmd.publication, action, cmd.kind, cmd.title, cmd.country))


def _authorize_writer(b: _Batch, cmd: c.AuthorizeWriter, action: Action) -> None:
    check_writer_name(cmd.name)
    try:
        verifier = parse_verifier(cmd.verifier)
    except BadKey as error:
        raise InvalidValue("verifier", cmd.verifier, str(error)) from None
    if verifier.name != cmd.name:
        raise InvalidValue("name", cmd.name, f"the verifier key is named {verifier.name!r}; a writer bears its key's name")
    existing = b.find(writer_ref(cmd.name), Writer)
    if existing is None:
        b.add(Writer.authorize(cmd.name, verifier.encode(), action))
    elif not existing.has_applied(action):
        existing.check_same_key(verifier.encode())  # the same key, still active: already authorized, nothing to record


def _revoke_writer(b: _Batch, cmd: c.RevokeWriter, action: Action) -> None:
    writer = b.find(writer_ref(cmd.name), Writer)
    if writer is None:
        raise UnknownReference("writer", cmd.name)
    if writer.has_applied(action):
        return
    if writer.revoked:
        raise WriterRuleBroken(f"writer: {cmd.name!r} is already revoked")
    active = {name for name, stored in b.app.writers().items() if not stored.revoked}
    for held in b.aggregates.values():
        if isinstance(held, Writer):
            (active.discard if held.revoked else active.add)(held.name)
    if not active - {cmd.name}:
        raise WriterRuleBroken(f"writer: {cmd.name!r} is the last active writer; authorize another first")
    writer.revoke(action, cmd.reason)


HANDLERS: dict[type[c.Command], Handler] = {
    c.AuthorizeWriter: _authorize_writer,
    c.RevokeWriter: _revoke_writer,
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

