"""SQLite storage: eventsourcing's recorder plus an erasable personal-data table and immutability triggers."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from adapters import recorded_time, scan
from domain.catalogue import VERSION_KEY
from domain.errors import ErasureIncomplete

SCRUB_WAIT = 10.0
"""Seconds a forget waits for other connections' reads before it says what it could not erase."""
COMPACT_WAIT = 30.0
"""Seconds `ledger db compact` waits for other connections' reads."""
IMPORT_CACHE_KIB = 64 << 10
"""SQLite's page cache during a long write: random UUID keys spread over the primary-key index, far past the default 2 MiB."""
ACTOR = "CASE WHEN json_valid(CAST(state AS TEXT)) THEN json_extract(CAST(state AS TEXT), '$.actor') END"
"""A stored event's actor as the audit log's index holds it (NULL for a state that is not JSON); queries repeat it exactly."""
RESPELLED = "typeof(originator_id) <> 'text' OR length(originator_id) <> 32 OR originator_id GLOB '*[^0-9a-f]*'"
"""A stored id not written as 32 lowercase hex digits: the condition of the partial index and of the query that uses it."""
AUDIT_INDEXES = ("actor", "topic", "respelled")
"""The events table's indexes, `{events table}_{name}`: an actor's or a type's events, and respelled ids, are found
without reading the others."""


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """Writes events and the personal data of a batch in one transaction; refuses edits of events."""

    def construct_create_table_statements(self) -> list[str]:
        table = self.events_table_name
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS personal_data ("
            "person TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'stored events are immutable'); END",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'stored events are immutable'); END",
            # REPLACE, INSERT OR REPLACE and upserts delete the row they collide with without firing DELETE triggers
            # (unless recursive_triggers is on), so an insert that would collide with a stored event is refused first.
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE rowid = NEW.rowid) "
            f"OR EXISTS (SELECT 1 FROM {table} WHERE originator_id = NEW.originator_id AND originator_version = NEW.originator_version) "
            "BEGIN SELECT RAISE(ABORT, 'stored events are immutable'); END",
            # An event takes the position after the last one: one put at a position of its own would leave a gap or sit
            # before events stored earlier. AFTER, because a BEFORE trigger does not see the rowid SQLite picks.
            f"CREATE TRIGGER IF NOT EXISTS {table}_next_position AFTER INSERT ON {table} "
            f"WHEN NEW.rowid <> coalesce((SELECT max(rowid) FROM {table} WHERE rowid < NEW.rowid), 0) + 1 "
            "BEGIN SELECT RAISE(ABORT, 'stored events take the next position'); END",
            # Every index of SQLite ends with the rowid, so each holds its events in log order.
            f"CREATE INDEX IF NOT EXISTS {table}_actor ON {table} ({ACTOR})",
            f"CREATE INDEX IF NOT EXISTS {table}_topic ON {table} (topic)",
            # Ids not spelled as this recorder writes them (none, unless stored rows were edited): a record's history is
            # checked for them through this index, not by reading the log. Dropped, the same query reads the log.
            f"CREATE INDEX IF NOT EXISTS {table}_respelled ON {table} (originator_id) WHERE {RESPELLED}",
        ]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        personal_data: Sequence[tuple[str, str, str]] = (),
        forget: Sequence[str] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        # Freed space is zeroed, so erased personal data leaves no trace in the file.
        c.execute("PRAGMA secure_delete = ON")
        positions = self._insert_all(c, stored_events)
        if personal_data:
            c.executemany(
                "INSERT OR IGNORE INTO personal_data (person, name, email) VALUES (?, ?, ?)",
                list(personal_data),
            )
        if forget:
            c.executemany("DELETE FROM personal_data WHERE person = ?", [(person,) for person in forget])
        return positions

    def _insert_all(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Insert the events with one executemany (eventsourcing inserts one row at a time); their positions, in order.

        The write transaction holds the database's only write lock, and each new row gets the highest rowid plus one,
        so the events take the run of positions that ends at the highest rowid after the insert. A batch recorded before
        the event stored before it is refused (RecordedTimeBackwards), and the transaction rolls back.
        """
        if not stored_events:
            return []
        c.executemany(
            self.insert_events_statement,
            [(s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id, s.originator_version, s.topic, s.state)
             for s in stored_events],
        )
        c.execute(self.select_max_notification_id_statement)
        last = int(c.fetchone()[0])
        first = last - len(stored_events) + 1
        # Read after the insert, under the write lock: no other writer's event can fall between the one read and this batch.
        c.execute(f"SELECT rowid, state FROM {self.events_table_name} WHERE rowid < ? ORDER BY rowid DESC LIMIT 1", (first,))
        before = c.fetchone()
        recorded_time.check_after_last(stored_events, before[1] if before else None, int(before[0]) if before else 0)
        return list(range(first, last + 1))

    @contextlib.contextmanager
    def writing(self) -> Iterator[SQLiteWriting]:
        """One write transaction for many chunks: each chunk's reads see the chunks written before it; committed at the
        end only if `keep()` was called, else rolled back (as on any error)."""
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("PRAGMA cache_size")
            cache = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
            try:
                # IMMEDIATE: the write lock is taken now, so no other writer can slip in between this session's reads and writes.
                cursor.execute("BEGIN IMMEDIATE")
                writing = SQLiteWriting(self, cursor)
                try:
                    yield writing
                except BaseException:
                    conn.rollback()
                    raise
                if writing.kept:
                    conn.commit()
                else:
                    conn.rollback()
            finally:
                cursor.execute(f"PRAGMA cache_size = {int(cache)}")
                cursor.sqlite_cursor.close()

    def scrub_personal_data(self, wait: float | None = None) -> None:
        """Copy the write-ahead log into the file and empty it, so no old page with erased data survives there; waits up to
        `wait` seconds for readers, then raises ErasureIncomplete (what was committed stays committed)."""
        try:
            emptied = self._empty_log(SCRUB_WAIT if wait is None else wait)
        except sqlite3.Error as error:
            raise ErasureIncomplete(
                "person: the forgetting is recorded and the name and e-mail are erased from the table, but the write-ahead log "
                f"could not be emptied ({error}), so an old copy may remain in {self.datastore.pool.db_name}-wal; "
                "run `ledger db compact` once the disk has room"
            ) from None
        if not emptied:
            raise ErasureIncomplete(
                "person: the forgetting is recorded and the name and e-mail are erased from the table, but an open read by "
                f"another connection kept the write-ahead log from being emptied, so an old copy may remain in {self.datastore.pool.db_name}-wal; "
                "run `ledger db compact` once no reader is open"
            )

    def compact(self) -> str:
        """Empty the write-ahead log into the file (waiting up to 30 s for readers); what was done, in one line."""
        if not self._empty_log(COMPACT_WAIT):
            raise ErasureIncomplete(f"db: another connection still reads {self.datastore.pool.db_name}; nothing was compacted, run the command again")
        return f"compacted: the write-ahead log of {self.datastore.pool.db_name} is empty; freed pages were zeroed when they were freed"

    def _empty_log(self, wait: float) -> bool:
        """Checkpoint the write-ahead log and truncate it, waiting up to `wait` seconds for readers; whether it is empty."""
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("PRAGMA busy_timeout")
            before = int(cursor.fetchone()[0])
            cursor.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
            try:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy, frames, copied = cursor.fetchone()
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {before}")
        # busy: a reader or writer stopped the checkpoint short; otherwise every frame was copied and the log truncated.
        return bool(busy == 0 and frames == copied)

    def mirror_source(self) -> str | None:
        """The prefix of the log this ledger mirrors (`ledger mirror`), if it is a mirror."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mirror_source'")
            if c.fetchone() is None:
                return None
            c.execute("SELECT prefix FROM mirror_source")
            row = c.fetchone()
        return None if row is None else str(row[0])

    def personal_data(self, person: str) -> tuple[str, str] | None:
        """The name and e-mail of a person, if still held."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT name, email FROM personal_data WHERE person = ?", (person,))
            row = c.fetchone()
        return None if row is None else (row["name"], row["email"])

    def stored_types(self, after: int = 0) -> list[tuple[str, int, int, int]]:
        """(topic, class version, how many, first position) of the events after position `after`; a missing version is 1."""
        version = f"CASE WHEN json_valid(CAST(state AS TEXT)) THEN COALESCE(json_extract(CAST(state AS TEXT), '$.{VERSION_KEY}'), 1) ELSE 1 END"
        statement = (
            f"SELECT topic, {version} AS v, COUNT(*), MIN(rowid) FROM {self.events_table_name} NOT INDEXED "
            "WHERE rowid > ? GROUP BY topic, v ORDER BY MIN(rowid)"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (after,))
            return [(row[0], _whole(row[1]), int(row[2]), int(row[3])) for row in c.fetchall()]

    def altered_ids(self, after: int = 0, originator_id: UUID | None = None) -> list[tuple[int, str]]:
        """(position, stored id) of each event after `after` whose aggregate id is not 32 lowercase hex digits, as this
        recorder writes ids; with `originator_id`, only the other spellings of that id."""
        table = self.events_table_name
        statement = "SELECT rowid, originator_id FROM {} WHERE rowid > ? AND ({}) ORDER BY rowid"
        with self.datastore.transaction(commit=False) as c:
            # The planner prefers the rowid range; the partial index holds only respelled ids (none, unless rows were edited).
            c.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (f"{table}_respelled",))
            try:
                if c.fetchone() is None:
                    raise sqlite3.OperationalError("no index of respelled ids")
                c.execute(statement.format(f"{table} INDEXED BY {table}_respelled", RESPELLED), (after,))
            except sqlite3.OperationalError:  # dropped, or not the index it should be: the same question, by reading the log
                c.execute(statement.format(table, RESPELLED), (after,))
            found = [(int(row[0]), str(row[1])) for row in c.fetchall()]
        return [(p, i) for p, i in found if originator_id is None or _spells(i, originator_id)]

    def positions(self, originator_id: UUID) -> list[int]:
        """The log positions of one aggregate's events, oldest version first."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid FROM {self.events_table_name} WHERE originator_id = ? ORDER BY originator_version", (originator_id.hex,))
            return [int(row[0]) for row in c.fetchall()]

    def log_rows(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int, limit: int,
                 newest_first: bool = False) -> list[Notification]:
        """Up to `limit` events at positions strictly between `after` and `before` that have this actor, topic and record
        (None: any), nearest `after` first (or nearest `before`); read through the audit log's indexes."""
        where, params = self._log_where(actor, topic, record, after, before)
        statement = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} WHERE {where} "
                     f"ORDER BY rowid {'DESC' if newest_first else 'ASC'} LIMIT ?")
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (*params, limit))
            return [Notification(id=int(row[0]), originator_id=UUID(row[1]), originator_version=row[2], topic=row[3], state=bytes(row[4]))
                    for row in c.fetchall()]

    def log_count(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int) -> int:
        """How many events `log_rows` would give without a limit (counted in the index)."""
        where, params = self._log_where(actor, topic, record, after, before)
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) FROM {self.events_table_name} WHERE {where}", params)
            return int(c.fetchone()[0])

    def log_plan(self, actor: str | None, topic: str | None, record: UUID | None) -> str:
        """How SQLite reads a page of `log_rows` (EXPLAIN QUERY PLAN), one step a line."""
        where, params = self._log_where(actor, topic, record, 0, 1 << 62)
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"EXPLAIN QUERY PLAN SELECT rowid, state FROM {self.events_table_name} WHERE {where} ORDER BY rowid LIMIT 50", params)
            return "\n".join(str(row[3]) for row in c.fetchall())

    @staticmethod
    def _log_where(actor: str | None, topic: str | None, record: UUID | None, after: int, before: int) -> tuple[str, tuple[Any, ...]]:
        conditions, params = ["rowid > ?", "rowid < ?"], [after, before]
        for condition, value in ((f"{ACTOR} = ?", actor), ("topic = ?", topic), ("originator_id = ?", record.hex if record else None)):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        return " AND ".join(conditions), tuple(params)


class SQLiteWriting:
    """Reads and writes inside one open transaction of a `LedgerSQLiteRecorder`."""

    def __init__(self, recorder: LedgerSQLiteRecorder, cursor: SQLiteCursor) -> None:
        self.recorder = recorder
        self.cursor = cursor
        self.kept = False

    def events_of(self, ids: Collection[UUID]) -> dict[UUID, list[StoredEvent]]:
        """The stored events of the aggregates in `ids` (this transaction's own included), oldest first."""
        return scan.events_of(self.recorder, ids, cursor=self.cursor.sqlite_cursor)

    def personal_data(self, person: str) -> tuple[str, str] | None:
        self.cursor.execute("SELECT name, email FROM personal_data WHERE person = ?", (person,))
        row = self.cursor.fetchone()
        return None if row is None else (row[0], row[1])

    def write(
        self, stored_events: Sequence[StoredEvent], personal_data: Sequence[tuple[str, str, str]] = (), forget: Sequence[str] = ()
    ) -> list[int]:
        """Insert one chunk's events and personal data; their positions. Nothing is visible to others before the commit."""
        try:
            return list(self.recorder._insert_events(self.cursor, stored_events, personal_data=personal_data, forget=forget) or [])
        except sqlite3.IntegrityError as error:
            raise IntegrityError(error) from error

    def keep(self) -> None:
        """Commit when the session ends."""
        self.kept = True


def _whole(value: object) -> int:
    """A stored version as a whole number; anything else as 0, which no event type has."""
    return value if isinstance(value, int) else 0


def _spells(stored: str, originator_id: UUID) -> bool:
    """Whether a stored id text is another spelling of `originator_id` (case, hyphens, braces, a `urn:uuid:` prefix)."""
    try:
        return UUID(stored) == originator_id
    except ValueError:
        return False
