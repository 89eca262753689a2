"""PostgreSQL storage: eventsourcing's recorder plus personal data, and events the database itself refuses to change."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError, InterfaceError, Notification, OperationalError, PersistenceError, ProgrammingError, StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.errors import LockNotAvailable, UniqueViolation
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier, Literal

from adapters import recorded_time, scan
from adapters.mapper import CATALOGUE
from domain.base import ref_id
from domain.model import Person
from domain.catalogue import VERSION_KEY

T = TypeVar("T")

# One INSERT of personal data carries at most this many rows or bytes, so no single message grows with the batch.
ROWS_PER_STATEMENT = 1_000
BYTES_PER_STATEMENT = 4 << 20


FORGET_FUNCTION = "forget_personal_data"
"""The function through which personal data is erased (see the recorder's DDL)."""
ACTOR_FUNCTION = "event_actor"
"""A stored event's actor (NULL for a state that is not JSON), which the audit log's actor index holds."""


class LedgerBusy(PersistenceError):
    """Another write held the events table for longer than the lock timeout; nothing was written."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"another write held the ledger for more than {seconds} s; nothing was written, run the command again")


def chunks(rows: Sequence[T], size: Callable[[T], int]) -> Iterator[Sequence[T]]:
    """`rows` in order, cut into runs of at most ROWS_PER_STATEMENT rows and (but for one huge row) BYTES_PER_STATEMENT bytes."""
    start, total = 0, 0
    for end, row in enumerate(rows):
        if end > start and (end - start == ROWS_PER_STATEMENT or total + size(row) > BYTES_PER_STATEMENT):
            yield rows[start:end]
            start, total = end, 0
        total += size(row)
    if start < len(rows):
        yield rows[start:]


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """Writes events and the personal data of a batch in one transaction; UPDATE, DELETE and TRUNCATE of events raise.

    eventsourcing writes a batch as one INSERT inside psycopg's pipeline mode, which can stall for good
    on a large message (psycopg issue #685) while holding the events table's lock. This recorder writes
    without pipeline mode, still in one transaction: personal data in bounded INSERTs, then events by COPY.
    It takes the lock only for the COPY and gives up waiting for it after POSTGRES_LOCK_TIMEOUT seconds.
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema, table = Identifier(datastore.schema), Identifier(events_table_name)
        guard = Identifier(f"{events_table_name}_immutable")
        self.personal_table = SQL("{}.{}").format(schema, Identifier("personal_data"))
        self.lock_timeout_statement = SQL("SET LOCAL lock_timeout = {}").format(Literal(f"{datastore.lock_timeout}s"))
        self.copy_events_statement = SQL(
            "COPY {}.{} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(schema, table)
        self.last_event_statement = SQL(
            "SELECT clock_timestamp() AS now, e.notification_id AS id, e.state FROM (SELECT 1) AS one "
            "LEFT JOIN (SELECT notification_id, state FROM {}.{} ORDER BY notification_id DESC LIMIT 1) AS e ON true"
        ).format(schema, table)
        self.ids_after_statement = SQL("SELECT notification_id FROM {}.{} WHERE notification_id > %s ORDER BY notification_id").format(schema, table)
        self.insert_personal_data_statement = SQL(
            "INSERT INTO {} (person, name, email) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) ON CONFLICT (person) DO NOTHING"
        ).format(self.personal_table)
        self.sql_create_statements += [
            SQL("CREATE TABLE IF NOT EXISTS {} (person text PRIMARY KEY, name text NOT NULL, email text NOT NULL)").format(self.personal_table),
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{guard}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN RAISE EXCEPTION 'stored events are immutable: % refused on %', TG_OP, TG_TABLE_NAME "
                "USING ERRCODE = 'insufficient_privilege'; END$$"
            ).format(schema=schema, guard=guard),
            SQL(
                "CREATE OR REPLACE TRIGGER {guard} BEFORE UPDATE OR DELETE ON {schema}.{table} "
                "FOR EACH ROW EXECUTE FUNCTION {schema}.{guard}()"
            ).format(schema=schema, table=table, guard=guard),
            SQL(
                "CREATE OR REPLACE TRIGGER {truncate_guard} BEFORE TRUNCATE ON {schema}.{table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{guard}()"
            ).format(schema=schema, table=table, guard=guard, truncate_guard=Identifier(f"{events_table_name}_no_truncate")),
            # TRUNCATE stays granted (the trigger refuses it): LOCK ... IN EXCLUSIVE MODE needs one of these privileges.
            SQL("REVOKE UPDATE, DELETE ON {schema}.{table} FROM PUBLIC, CURRENT_USER").format(schema=schema, table=table),
            # An event takes the id the column's sequence just gave it: one inserted with an id of its own (above the sequence)
            # would make every later write find fewer new ids than it wrote. currval fails in a session that drew none.
            # Only the owner, who can lift every guard, can insert around it (`db init --owner-url` again adds it to a schema
            # made before it).
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{next_id}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN RAISE EXCEPTION 'stored events take the next notification id: % refused', NEW.notification_id "
                "USING ERRCODE = 'insufficient_privilege'; END$$"
            ).format(schema=schema, next_id=Identifier(f"{events_table_name}_next_id")),
            # The condition is evaluated without calling the function, so a COPY of the normal path costs little.
            SQL(
                "CREATE OR REPLACE TRIGGER {next_id} BEFORE INSERT ON {schema}.{table} FOR EACH ROW "
                "WHEN (NEW.notification_id IS DISTINCT FROM currval({sequence}::regclass)) EXECUTE FUNCTION {schema}.{next_id}()"
            ).format(schema=schema, table=table, next_id=Identifier(f"{events_table_name}_next_id"), sequence=Literal(
                SQL("{}.{}").format(schema, Identifier(f"{events_table_name}_notification_id_seq")).as_string())),
            # The one way a role that may not delete personal data erases it: one person's row, once the log holds the
            # Person.Forgotten event of that person, in the same transaction. Runs as the schema's owner (SECURITY DEFINER).
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{forget}(who text, record uuid) RETURNS integer LANGUAGE plpgsql "
                "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$"
                "DECLARE erased integer; BEGIN "
                "IF NOT EXISTS (SELECT FROM {schema}.{table} WHERE originator_id = record AND originator_version = 1 "
                "AND topic = {registered} AND convert_from(state, 'UTF8')::jsonb ->> 'ref' = who) "
                "OR NOT EXISTS (SELECT FROM {schema}.{table} WHERE originator_id = record AND topic = {forgotten}) THEN "
                "RAISE EXCEPTION 'personal data of % may be erased only with its Person.Forgotten event', who "
                "USING ERRCODE = 'insufficient_privilege'; END IF; "
                "DELETE FROM {personal} WHERE person = who; GET DIAGNOSTICS erased = ROW_COUNT; RETURN erased; END$$"
            ).format(schema=schema, table=table, forget=Identifier(FORGET_FUNCTION), personal=self.personal_table,
                     registered=Literal(CATALOGUE.topic_for(Person.Registered)), forgotten=Literal(CATALOGUE.topic_for(Person.Forgotten))),
            SQL("REVOKE ALL ON FUNCTION {schema}.{forget}(text, uuid) FROM PUBLIC").format(schema=schema, forget=Identifier(FORGET_FUNCTION)),
            # The audit log's indexes: an actor's or a type's events are found in log order without reading the others.
            # The actor is read from the stored JSON; a state that is not JSON (only a forgery could store one) has none.
            # Not PARALLEL SAFE: its exception block is a subtransaction, which parallel workers cannot start. Its COST
            # tells the planner that reading the index is cheaper than calling it on every row.
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{actor}(state bytea) RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE COST 1000 "
                "SET search_path = pg_catalog, pg_temp AS "
                "$$BEGIN RETURN convert_from(state, 'UTF8')::jsonb ->> 'actor'; EXCEPTION WHEN others THEN RETURN NULL; END$$"
            ).format(schema=schema, actor=Identifier(ACTOR_FUNCTION)),
            SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} ({schema}.{actor}(state), notification_id)").format(
                index=Identifier(f"{events_table_name}_actor"), schema=schema, table=table, actor=Identifier(ACTOR_FUNCTION)),
            # Made last: `_tables_in_place` looks for it, so `db init --owner-url` adds the indexes to a schema made before them.
            SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} (topic, notification_id)").format(
                index=Identifier(f"{events_table_name}_topic"), schema=schema, table=table),
        ]
        self.forget_statement = SQL("SELECT {}.{}(%s, %s)").format(schema, Identifier(FORGET_FUNCTION))

    def _owned_by_another_role(self) -> bool:
        """Whether the events table exists and belongs to a role the connected one is not a member of."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            row = curs.execute(
                "SELECT NOT pg_has_role(current_user, relowner, 'MEMBER') FROM pg_class WHERE oid = to_regclass(%s)",
                (f'"{self.datastore.schema}"."{self.events_table_name}"',),
            ).fetchone()
        return bool(row and row[0])

    def create_table(self) -> None:
        # `ledger db init --owner-url` made these tables: this role may only append and read, so it runs no DDL.
        # Nor does it once the DDL has run: it waits, with no timeout, behind a running write's lock (CREATE INDEX
        # IF NOT EXISTS locks the table before it looks), so every command would hang during a long import.
        if self._owned_by_another_role() or self._tables_in_place():
            self.datastore.register_type_adapters()
            return
        # Processes that start together would otherwise run this DDL at once and fail on catalog conflicts.
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"cluster-ledger-ddl:{self.datastore.schema}",))
            try:
                with conn.transaction():
                    conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.datastore.schema)))
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"cluster-ledger-ddl:{self.datastore.schema}",))

    def _tables_in_place(self) -> bool:
        """True once the DDL has run: its newest objects, the forget function, the guard of notification ids and the audit
        log's last index, exist."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s AND p.proname = %s) AND EXISTS (SELECT FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND t.tgname = %s) "
                "AND to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL AS done",
                (self.datastore.schema, FORGET_FUNCTION, self.datastore.schema, self.events_table_name, f"{self.events_table_name}_next_id",
                 self.datastore.schema, f"{self.events_table_name}_topic"),
            )
            row = curs.fetchone()
        return row is not None and bool(row["done"])

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            try:
                curs.execute(self.lock_timeout_statement)
                # Personal data first: its table needs no table lock, so the events table is locked for less time.
                self._insert_events(curs, stored_events, **kwargs)
                if not stored_events:
                    return None
                self._lock_table(curs)
            except LockNotAvailable:
                raise LedgerBusy(self.datastore.lock_timeout) from None
            self._notify_channel(curs)
            try:
                positions = self._copy_events(curs, stored_events)
            except UniqueViolation as error:
                raise IntegrityError(error) from error
            self._forget(curs, kwargs.get("forget", ()))
            return positions

    @contextlib.contextmanager
    def writing(self) -> Iterator[PostgresWriting]:
        """One transaction for many chunks: each chunk's reads see the chunks written before it; committed at the end only
        if `keep()` was called, else rolled back (as on any error). The events table is locked from the start to the
        commit, so notification ids become visible in order, and no write is recorded between the session's recorded
        time (read once it is open) and its events."""
        with self.datastore.get_connection() as conn, conn.transaction() as transaction, conn.cursor() as curs:
            curs.execute(self.lock_timeout_statement)
            writing = PostgresWriting(self, curs)
            try:
                self._lock_table(curs)
            except LockNotAvailable:
                raise LedgerBusy(self.datastore.lock_timeout) from None
            self._notify_channel(curs)
            writing.locked = True
            yield writing
            if not writing.kept:
                raise psycopg.Rollback(transaction)

    def _copy_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent]) -> list[int]:
        """COPY the events in order (psycopg streams it in bounded pieces); their notification ids, in the same order."""
        # Under the EXCLUSIVE lock no other transaction inserts, so every id above the current maximum is one of ours,
        # and the last event read here is the one this batch follows: its recorded time must not go back from it.
        last = curs.execute(self.last_event_statement).fetchone()
        assert last is not None
        with curs.copy(self.copy_events_statement) as copy:
            copy.set_types([self.datastore.originator_id_type, "int8", "text", "bytea"])
            for e in stored_events:
                copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
        # After the COPY, so a concurrent change of the same record is named as such; a refusal rolls the COPY back.
        recorded_time.check_after_last(stored_events, last["state"], last["id"] or 0)
        recorded_time.check_not_ahead(stored_events, last["now"])
        curs.execute(self.ids_after_statement, (last["id"] or 0,))
        notification_ids = [row["notification_id"] for row in curs.fetchall()]
        if len(notification_ids) != len(stored_events):
            raise ProgrammingError(f"expected {len(stored_events)} notification ids, found {len(notification_ids)}")
        return notification_ids

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        personal_data: Sequence[tuple[str, str, str]] = (),
        forget: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        for chunk in chunks(personal_data, lambda row: len(row[1]) + len(row[2])):
            curs.execute(self.insert_personal_data_statement, [list(column) for column in zip(*chunk)])

    def _forget(self, curs: Cursor[DictRow], forget: Sequence[str]) -> None:
        """Erase the personal data of `forget`, whose Person.Forgotten events this transaction has just written."""
        for person in forget:
            curs.execute(self.forget_statement, (person, ref_id(person)))

    def scrub_personal_data(self) -> None:
        """Vacuum the personal-data table, so the deleted rows' space is reclaimed rather than left for later."""
        with self.datastore.get_connection() as conn:
            conn.autocommit = True
            try:
                conn.execute(SQL("VACUUM {}").format(self.personal_table))
            finally:
                conn.autocommit = False

    def mirror_source(self) -> str | None:
        """The prefix of the log this ledger mirrors (`ledger mirror`), if it is a mirror."""
        table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier("mirror_source"))
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (f'"{self.datastore.schema}"."mirror_source"',))
            present = curs.fetchone()
            if not present or not present["present"]:
                return None
            curs.execute(SQL("SELECT prefix FROM {}").format(table))
            row = curs.fetchone()
        return None if row is None else str(row["prefix"])

    def personal_data(self, person: str) -> tuple[str, str] | None:
        """The name and e-mail of a person, if still held."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT name, email FROM {} WHERE person = %s").format(self.personal_table), (person,))
            row = curs.fetchone()
        return None if row is None else (row["name"], row["email"])

    def stored_types(self, after: int = 0) -> list[tuple[str, int, int, int]]:
        """(topic, class version, how many, first position) of the events after position `after`; a missing version is 1."""
        # A pattern, not a jsonb cast, so one malformed state cannot fail the whole check; only a key is followed by a colon.
        pattern = f'"{VERSION_KEY}"\\s*:\\s*(-?[0-9]{{1,9}})'
        statement = SQL(
            "SELECT topic, COALESCE(substring(encode(state, 'escape') FROM {pattern})::bigint, 1) AS v, "
            "count(*), min(notification_id) FROM {schema}.{table} WHERE notification_id > %s GROUP BY topic, v ORDER BY 4"
        ).format(pattern=Literal(pattern), schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (after,))
            return [(row["topic"], int(row["v"]), int(row["count"]), int(row["min"])) for row in curs.fetchall()]

    def positions(self, originator_id: UUID) -> list[int]:
        """The log positions of one aggregate's events, oldest version first."""
        statement = SQL("SELECT notification_id FROM {schema}.{table} WHERE originator_id = %s ORDER BY originator_version").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (originator_id,))
            return [int(row["notification_id"]) for row in curs.fetchall()]

    def log_rows(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int, limit: int,
                 newest_first: bool = False) -> list[Notification]:
        """Up to `limit` events at positions strictly between `after` and `before` that have this actor, topic and record
        (None: any), nearest `after` first (or nearest `before`); read through the audit log's indexes."""
        where, params = self._log_where(actor, topic, record, after, before)
        statement = SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {}.{} WHERE {} "
                        "ORDER BY notification_id {} LIMIT %s").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name), where, SQL("DESC" if newest_first else "ASC"))
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement, (*params, limit))
            return [Notification(id=int(row["notification_id"]), originator_id=row["originator_id"], originator_version=row["originator_version"],
                                 topic=row["topic"], state=bytes(row["state"])) for row in curs.fetchall()]

    def log_count(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int) -> int:
        """How many events `log_rows` would give without a limit (counted in the index)."""
        where, params = self._log_where(actor, topic, record, after, before)
        statement = SQL("SELECT count(*) AS n FROM {}.{} WHERE {}").format(Identifier(self.datastore.schema), Identifier(self.events_table_name), where)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(statement, params)
            row = curs.fetchone()
        return int(row["n"]) if row else 0

    def log_plan(self, actor: str | None, topic: str | None, record: UUID | None) -> str:
        """How PostgreSQL reads a page of `log_rows` (EXPLAIN, sequential scans ruled out: a test table is too small to
        show what the planner does at scale), one step a line."""
        where, params = self._log_where(actor, topic, record, 0, 1 << 62)
        statement = SQL("EXPLAIN SELECT notification_id, state FROM {}.{} WHERE {} ORDER BY notification_id LIMIT 50").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name), where)
        with self.datastore.get_connection() as conn, conn.transaction(force_rollback=True), conn.cursor(row_factory=tuple_row) as curs:
            curs.execute("SET LOCAL enable_seqscan = off")
            curs.execute(statement, params)
            return "\n".join(str(row[0]) for row in curs.fetchall())

    def _log_where(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int) -> tuple[SQL | Any, tuple[Any, ...]]:
        conditions, params = [SQL("notification_id > %s"), SQL("notification_id < %s")], [after, before]
        actor_of = SQL("{}.{}(state) = %s").format(Identifier(self.datastore.schema), Identifier(ACTOR_FUNCTION))
        for condition, value in ((actor_of, actor), (SQL("topic = %s"), topic), (SQL("originator_id = %s"), record)):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        return SQL(" AND ").join(conditions), tuple(params)


class PostgresWriting:
    """Reads and writes inside one open transaction of a `LedgerPostgresRecorder`."""

    def __init__(self, recorder: LedgerPostgresRecorder, cursor: Cursor[DictRow]) -> None:
        self.recorder = recorder
        self.cursor = cursor
        self.locked = False
        self.kept = False

    def events_of(self, ids: Collection[UUID]) -> dict[UUID, list[StoredEvent]]:
        """The stored events of the aggregates in `ids` (this transaction's own included), oldest first."""
        return scan.events_of(self.recorder, ids, cursor=self.cursor) or {}

    def personal_data(self, person: str) -> tuple[str, str] | None:
        row = self.cursor.execute(SQL("SELECT name, email FROM {} WHERE person = %s").format(self.recorder.personal_table), (person,)).fetchone()
        return None if row is None else (row["name"], row["email"])

    def write(
        self, stored_events: Sequence[StoredEvent], personal_data: Sequence[tuple[str, str, str]] = (), forget: Sequence[str] = ()
    ) -> list[int]:
        """Insert one chunk's personal data, then COPY its events; their notification ids. Nothing is visible before the commit."""
        try:
            self.recorder._insert_events(self.cursor, stored_events, personal_data=personal_data, forget=forget)
            if not stored_events:
                return []
            if not self.locked:
                self.recorder._lock_table(self.cursor)
                self.recorder._notify_channel(self.cursor)
                self.locked = True
        except LockNotAvailable:
            raise LedgerBusy(self.recorder.datastore.lock_timeout) from None
        try:
            positions = self.recorder._copy_events(self.cursor, stored_events)
        except UniqueViolation as error:
            # Another writer stored one of these (aggregate, version) pairs first: the caller reports a concurrent change.
            raise IntegrityError(error) from error
        self.recorder._forget(self.cursor, forget)
        return positions

    def keep(self) -> None:
        """Commit when the session ends."""
        self.kept = True
