"""Where the tree lives: leaf and node hashes in tables beside the events, and raw reads of the events themselves."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from transparency.leaf import StoredRecord
from transparency.merkle import Hash, node_hash

LOWEST = -(1 << 63)
"""Reads `after` this position see every stored row, even one forged at position 0 or below."""


@dataclass(frozen=True)
class StoredLeaf:
    index: int
    position: int
    hash: bytes


@dataclass(frozen=True)
class Published:
    """A checkpoint as published: its number in publication order, tree size, signed note and when it was recorded."""

    number: int
    size: int
    note: str
    published_at: str


@dataclass(frozen=True)
class MirroredEvent:
    """An event as a mirror writes it: the fields of its leaf bytes, stored unchanged at its source position."""

    position: int
    aggregate_id: str
    version: int
    topic: str
    payload: bytes


class TreeStore(Protocol):
    """The events as stored, and the tree's leaves and complete-subtree nodes; `append` is one transaction."""

    def records(self, after: int, limit: int) -> list[StoredRecord]:
        """Up to `limit` stored events after position `after`, in position order, whatever their stored bytes."""
        ...

    def size(self) -> int:
        """How many leaves the stored tree holds."""
        ...

    def last_position(self) -> int:
        """The highest position of a stored event; 0 if none."""
        ...

    def last_leaf(self) -> StoredLeaf | None:
        """The tree's last leaf, if any."""
        ...

    def leaf_at(self, position: int) -> StoredLeaf | None:
        """The leaf of the event at `position`, if the tree holds one."""
        ...

    def complete(self, level: int, index: int) -> Hash:
        """The stored hash of a complete subtree (level 0: a leaf hash); raises KeyError if missing."""
        ...

    def append(self, expected_size: int, leaves: Sequence[tuple[int, Hash]]) -> bool:
        """Add `(position, leaf hash)` leaves and the nodes they complete, if the tree still has `expected_size` leaves."""
        ...

    def leaves_after(self, index: int, limit: int) -> list[StoredLeaf]:
        """Up to `limit` stored leaves after leaf `index`, by index."""
        ...

    def leaves_between(self, first: int, last: int) -> list[StoredLeaf]:
        """The stored leaves of the events at positions `first` to `last`, both included."""
        ...

    def positions_present(self, positions: Sequence[int]) -> set[int]:
        """Which of these positions hold a stored event."""
        ...

    def nodes_at(self, level: int, first: int, limit: int) -> dict[int, Hash]:
        """The stored hashes of one level (0: the leaves) from index `first`, up to `limit` of them, by index."""
        ...

    def nodes_beyond(self, size: int) -> int:
        """How many stored node rows a tree of `size` leaves has no place for: below level 1, or past the last complete node."""
        ...

    def publish(self, size: int, note: str, published_at: str) -> None:
        """Record a published checkpoint (never updated nor deleted)."""
        ...

    def published(self, limit: int) -> list[Published]:
        """The last `limit` published checkpoints, the newest first."""
        ...

    def mirror_source(self) -> tuple[str, str] | None:
        """The (prefix, verifier key) this ledger mirrors, if it is a mirror."""
        ...

    def mark_mirror(self, prefix: str, verifier_key: str, at: str) -> None:
        """Record that this ledger is a read-only mirror of the log at `prefix`."""
        ...

    def append_mirrored(self, expected_size: int, events: Sequence[MirroredEvent], leaves: Sequence[Hash]) -> bool:
        """Insert the events at their positions and add their leaves, in one transaction, if the tree still has `expected_size` leaves."""
        ...

    def reopened(self) -> TreeStore:
        """The same tables on a connection of its own (for a worker process)."""
        ...

    def sweep_rows(self, after: int, limit: int) -> list[SweepRow]:
        """Up to `limit` stored events after position `after`, in position order, each beside its leaf, for the fast path of `verify`."""
        ...

    def leaf_count(self) -> int:
        """How many rows the leaves table holds."""
        ...

    def writer_events(self, topics: Sequence[str]) -> list[tuple[int, str, bytes]]:
        """(position, topic, stored bytes) of every event of these topics stored as bytes, in position order."""
        ...

    def close(self) -> None:
        ...


SweepRow = tuple[int, "bytes | None", "int | None", "bytes | None", "bytes | None", "int | None", "bytes | None"]
"""(position, aggregate id (32 characters from SQLite, to check and hyphenate; 36 from PostgreSQL, checked), version, topic as UTF-8, stored bytes, leaf index, leaf hash): None in place
of anything not as the store writes it (an id in another spelling, a payload that is not bytes, no leaf...)."""


def _leaf(index: Any, position: Any, digest: Any) -> StoredLeaf:
    """A stored leaf row as read, whatever an editor of the table put in it: odd values make it fail every check."""
    return StoredLeaf(_whole(index), _whole(position), _hash(digest))


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else LOWEST


def _hash(digest: Any) -> bytes:
    return bytes(digest) if isinstance(digest, (bytes, memoryview)) else b""


def nodes_completed(size: int, new: Sequence[Hash], lookup: Callable[[int, int], Hash]) -> list[tuple[int, int, Hash]]:
    """The (level, index, hash) of every node that appending `new` leaf hashes to a tree of `size` leaves completes."""
    made: dict[tuple[int, int], Hash] = {}
    out = []
    for k, current in enumerate(new):
        level, index = 0, size + k
        made[(0, index)] = current
        while index & 1:
            left = made.get((level, index - 1)) or lookup(level, index - 1)
            current = node_hash(left, current)
            level, index = level + 1, index >> 1
            made[(level, index)] = current
            out.append((level, index, current))
    return out


def _int(value: Any) -> tuple[int, str]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, ""
    return 0, f"version stored as {type(value).__name__}"


SQLITE_ID = re.compile(r"[0-9a-f]{32}")
"""An aggregate id as eventsourcing's SQLite recorder writes it (and looks it up): 32 lower-case hex digits."""
POSTGRES_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""An aggregate id as PostgreSQL's uuid type prints it; a column altered to text may hold any other spelling."""


def _canonical_id(stored: Any, written: re.Pattern[str]) -> tuple[str, bool]:
    """The id the leaf commits to, and whether it is stored as the store writes it.

    As written: the hyphenated lower-case form, as both stores read it (the leaf bytes of every tree so far). Any other
    spelling, even one that names the same UUID, is one the application does not find: its repr, which no hex id equals.
    """
    if isinstance(stored, str) and written.fullmatch(stored):
        return str(uuid.UUID(stored)), True
    return repr(stored), False


def _record(position: int, aggregate: Any, version: Any, topic: Any, state: Any, stored_type: str = "", *,
            written: re.Pattern[str] = SQLITE_ID) -> StoredRecord:
    notes = []
    aggregate_id, as_written = _canonical_id(aggregate, written)
    if not as_written:
        notes.append(f"aggregate id stored as {aggregate_id[:100]}")
    number, problem = _int(version)
    if problem:
        notes.append(problem)
    if isinstance(state, memoryview):
        state = bytes(state)
    payload: bytes | None = state if isinstance(state, bytes) and stored_type in ("", "blob") else None
    if payload is None:
        notes.append(f"payload stored as {stored_type or type(state).__name__}: {state!r}"[:2000])
    return StoredRecord(
        position=position, aggregate_id=aggregate_id, version=number,
        topic=topic if isinstance(topic, str) else repr(topic), state=payload, note="; ".join(notes), id_as_written=as_written,
    )


_SQLITE_HASH = "CASE WHEN typeof(hash) = 'blob' THEN hash ELSE x'' END"
_SQLITE_LEAF = f"leaf_index, CASE WHEN typeof(position) = 'integer' THEN position ELSE ({LOWEST + 1} - 1) END, {_SQLITE_HASH}"
"""A leaf row as `_leaf` reads it, whatever an editor of the table put in it, converted by SQLite itself."""


class SQLiteTreeStore:
    """Tree tables in the ledger's SQLite file."""

    def __init__(self, path: str, events_table: str = "stored_events") -> None:
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        # TEXT that is not UTF-8 must still be read, as bytes, so that verification can name it.
        self.connection.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
        self.path = path
        self.events = events_table
        self.connection.executescript(
            "CREATE TABLE IF NOT EXISTS tlog_leaves (leaf_index INTEGER PRIMARY KEY, position INTEGER NOT NULL UNIQUE, hash BLOB NOT NULL);"
            "CREATE TABLE IF NOT EXISTS tlog_nodes (level INTEGER NOT NULL, node_index INTEGER NOT NULL, hash BLOB NOT NULL,"
            " PRIMARY KEY (level, node_index));"
            "CREATE TABLE IF NOT EXISTS tlog_checkpoints (number INTEGER PRIMARY KEY, tree_size INTEGER NOT NULL, note TEXT NOT NULL,"
            " published_at TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS mirror_source (one INTEGER PRIMARY KEY CHECK (one = 1), prefix TEXT NOT NULL,"
            " verifier_key TEXT NOT NULL, marked_at TEXT NOT NULL);"
            + "".join(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'the tree is append-only'); END;"
                for table in ("tlog_leaves", "tlog_nodes", "tlog_checkpoints", "mirror_source") for op in ("UPDATE", "DELETE")
            )
        )

    def records(self, after: int, limit: int) -> list[StoredRecord]:
        rows = self.connection.execute(
            f"SELECT rowid, originator_id, originator_version, topic, state, typeof(state) FROM {self.events} "
            "WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, limit),
        )
        return [_record(*row) for row in rows]

    def reopened(self) -> SQLiteTreeStore:
        return SQLiteTreeStore(self.path, self.events)

    def sweep_rows(self, after: int, limit: int) -> list[SweepRow]:
        # SQLite checks each column's type before Python sees the row; the id's 32 characters are checked as they are hyphenated.
        return self.connection.execute(
            "SELECT e.rowid, CASE WHEN typeof(e.originator_id) = 'text' AND length(e.originator_id) = 32 THEN CAST(e.originator_id AS BLOB) END,"
            " CASE WHEN typeof(e.originator_version) = 'integer' AND e.originator_version >= 0 THEN e.originator_version END,"
            " CASE WHEN typeof(e.topic) = 'text' THEN CAST(e.topic AS BLOB) END, CASE WHEN typeof(e.state) = 'blob' THEN e.state END,"
            " CASE WHEN typeof(l.leaf_index) = 'integer' THEN l.leaf_index END, CASE WHEN typeof(l.hash) = 'blob' THEN l.hash END"
            f" FROM {self.events} AS e LEFT JOIN tlog_leaves AS l ON l.position = e.rowid WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?",
            (after, limit),
        ).fetchall()

    def leaf_count(self) -> int:
        return int(self.connection.execute("SELECT count(*) FROM tlog_leaves").fetchone()[0])

    def writer_events(self, topics: Sequence[str]) -> list[tuple[int, str, bytes]]:
        rows = self.connection.execute(
            f"SELECT rowid, topic, state FROM {self.events} WHERE topic IN (SELECT value FROM json_each(?)) AND typeof(state) = 'blob'"
            " ORDER BY rowid", (json.dumps(list(topics)),),
        )
        return [(position, topic, bytes(state)) for position, topic, state in rows]

    def size(self) -> int:
        row = self.connection.execute("SELECT max(leaf_index) FROM tlog_leaves").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def last_position(self) -> int:
        row = self.connection.execute(f"SELECT max(rowid) FROM {self.events}").fetchone()
        return 0 if row[0] is None else int(row[0])

    def last_leaf(self) -> StoredLeaf | None:
        row = self.connection.execute("SELECT leaf_index, position, hash FROM tlog_leaves ORDER BY leaf_index DESC LIMIT 1").fetchone()
        return None if row is None else _leaf(*row)

    def leaf_at(self, position: int) -> StoredLeaf | None:
        row = self.connection.execute("SELECT leaf_index, position, hash FROM tlog_leaves WHERE position = ?", (position,)).fetchone()
        return None if row is None else _leaf(*row)

    def complete(self, level: int, index: int) -> Hash:
        if level == 0:
            row = self.connection.execute("SELECT hash FROM tlog_leaves WHERE leaf_index = ?", (index,)).fetchone()
        else:
            row = self.connection.execute("SELECT hash FROM tlog_nodes WHERE level = ? AND node_index = ?", (level, index)).fetchone()
        if row is None or not isinstance(row[0], bytes):
            raise KeyError((level, index))
        return bytes(row[0])

    def append(self, expected_size: int, leaves: Sequence[tuple[int, Hash]]) -> bool:
        return self._append(expected_size, [], leaves)

    def append_mirrored(self, expected_size: int, events: Sequence[MirroredEvent], leaves: Sequence[Hash]) -> bool:
        return self._append(expected_size, events, [(e.position, h) for e, h in zip(events, leaves, strict=True)])

    def _append(self, expected_size: int, events: Sequence[MirroredEvent], leaves: Sequence[tuple[int, Hash]]) -> bool:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            if self.size() != expected_size:
                self.connection.execute("ROLLBACK")
                return False
            # The ledger's recorder stores an aggregate id as 32 hex digits.
            self.connection.executemany(
                f"INSERT INTO {self.events} (rowid, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
                [(e.position, _hex_id(e.aggregate_id), e.version, e.topic, e.payload) for e in events],
            )
            self.connection.executemany(
                "INSERT INTO tlog_leaves (leaf_index, position, hash) VALUES (?, ?, ?)",
                [(expected_size + k, position, h) for k, (position, h) in enumerate(leaves)],
            )
            nodes = nodes_completed(expected_size, [h for _, h in leaves], self.complete)
            self.connection.executemany("INSERT INTO tlog_nodes (level, node_index, hash) VALUES (?, ?, ?)", nodes)
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        return True

    def publish(self, size: int, note: str, published_at: str) -> None:
        self.connection.execute("INSERT INTO tlog_checkpoints (tree_size, note, published_at) VALUES (?, ?, ?)", (size, note, published_at))

    def published(self, limit: int) -> list[Published]:
        rows = self.connection.execute(
            "SELECT number, tree_size, note, published_at FROM tlog_checkpoints ORDER BY number DESC LIMIT ?", (limit,)
        )
        return [Published(*row) for row in rows]

    def mirror_source(self) -> tuple[str, str] | None:
        row = self.connection.execute("SELECT prefix, verifier_key FROM mirror_source").fetchone()
        return None if row is None else (row[0], row[1])

    def mark_mirror(self, prefix: str, verifier_key: str, at: str) -> None:
        self.connection.execute("INSERT INTO mirror_source (one, prefix, verifier_key, marked_at) VALUES (1, ?, ?, ?)", (prefix, verifier_key, at))

    def leaves_after(self, index: int, limit: int) -> list[StoredLeaf]:
        rows = self.connection.execute(f"SELECT {_SQLITE_LEAF} FROM tlog_leaves WHERE leaf_index > ? ORDER BY leaf_index LIMIT ?", (index, limit))
        return [StoredLeaf(*row) for row in rows]

    def leaves_between(self, first: int, last: int) -> list[StoredLeaf]:
        rows = self.connection.execute(f"SELECT {_SQLITE_LEAF} FROM tlog_leaves WHERE position BETWEEN ? AND ?", (first, last))
        return [StoredLeaf(*row) for row in rows]

    def positions_present(self, positions: Sequence[int]) -> set[int]:
        rows = self.connection.execute(
            f"SELECT rowid FROM {self.events} WHERE rowid IN (SELECT value FROM json_each(?))", (json.dumps(list(positions)),)
        )
        return {row[0] for row in rows}

    def nodes_at(self, level: int, first: int, limit: int) -> dict[int, Hash]:
        if level == 0:
            sql = "SELECT leaf_index, {} FROM tlog_leaves WHERE ? = 0 AND leaf_index >= ? AND leaf_index < ?"
        else:
            sql = "SELECT node_index, {} FROM tlog_nodes WHERE level = ? AND node_index >= ? AND node_index < ? AND typeof(node_index) = 'integer'"
        return dict(self.connection.execute(sql.format(_SQLITE_HASH), (level, first, first + limit)))

    def nodes_beyond(self, size: int) -> int:
        # A level or index that is not a whole number reads as the lowest one (`_whole`), so it counts as out of place.
        row = self.connection.execute(
            "SELECT count(*) FROM tlog_nodes WHERE typeof(level) != 'integer' OR level < 1"
            " OR (typeof(node_index) = 'integer' AND node_index >= (CASE WHEN level >= 63 THEN 0 ELSE ? >> level END))", (size,)
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self.connection.close()


class PostgresTreeStore:
    """Tree tables in the ledger's PostgreSQL schema; created here unless the schema's owner made them (`db init --owner-url`)."""

    def __init__(self, conninfo: str, schema: str = "public", events_table: str = "ledger_events") -> None:
        import psycopg
        from psycopg.sql import SQL, Identifier

        self._sql = SQL
        self.connection = psycopg.connect(conninfo, autocommit=True)
        self.conninfo, self.events_table = conninfo, events_table
        self.schema = schema
        self.events = SQL("{}.{}").format(Identifier(schema), Identifier(events_table))
        self.leaves_table = SQL("{}.{}").format(Identifier(schema), Identifier("tlog_leaves"))
        self.nodes_table = SQL("{}.{}").format(Identifier(schema), Identifier("tlog_nodes"))
        row = self.connection.execute(
            "SELECT to_regclass(%s) IS NULL OR has_table_privilege(to_regclass(%s), 'INSERT')", (f'"{schema}".tlog_leaves',) * 2
        ).fetchone()
        self.appendable = bool(row and row[0])
        """False for a role that may only read the tree (an auditor): it is not extended, only checked."""
        for statement in create_statements(schema):
            table = statement[0]
            found = self.connection.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()
            if found is None or found[0] is None:
                with self.connection.transaction():
                    self.connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cluster-ledger-ddl:{schema}",))
                    self.connection.execute(statement[1])

    def records(self, after: int, limit: int) -> list[StoredRecord]:
        rows = self.connection.execute(
            self._sql("SELECT notification_id, originator_id::text, originator_version, topic, state FROM {} "
                      "WHERE notification_id > %s ORDER BY notification_id LIMIT %s").format(self.events), (after, limit),
        )
        return [_record(*row, written=POSTGRES_ID) for row in rows]

    def reopened(self) -> PostgresTreeStore:
        return PostgresTreeStore(self.conninfo, self.schema, self.events_table)

    def sweep_rows(self, after: int, limit: int) -> list[SweepRow]:
        rows = self.connection.execute(
            self._sql(
                "SELECT e.notification_id, CASE WHEN e.originator_id::text ~ %s THEN convert_to(e.originator_id::text, 'UTF8') END,"
                " CASE WHEN e.originator_version >= 0 THEN e.originator_version END, convert_to(e.topic::text, 'UTF8'), e.state,"
                " l.leaf_index, l.hash FROM {} AS e LEFT JOIN {} AS l ON l.position = e.notification_id"
                " WHERE e.notification_id > %s ORDER BY e.notification_id LIMIT %s"
            ).format(self.events, self.leaves_table),
            (f"^{POSTGRES_ID.pattern}$", after, limit),
        ).fetchall()
        return rows  # type: ignore[return-value]

    def leaf_count(self) -> int:
        row = self.connection.execute(self._sql("SELECT count(*) FROM {}").format(self.leaves_table)).fetchone()
        return 0 if row is None else int(row[0])

    def writer_events(self, topics: Sequence[str]) -> list[tuple[int, str, bytes]]:
        rows = self.connection.execute(
            self._sql("SELECT notification_id, topic, state FROM {} WHERE topic = ANY(%s) ORDER BY notification_id").format(self.events),
            (list(topics),),
        )
        return [(position, topic, bytes(state)) for position, topic, state in rows if isinstance(state, (bytes, memoryview))]

    def size(self) -> int:
        row = self.connection.execute(self._sql("SELECT max(leaf_index) FROM {}").format(self.leaves_table)).fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def last_position(self) -> int:
        row = self.connection.execute(self._sql("SELECT max(notification_id) FROM {}").format(self.events)).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def last_leaf(self) -> StoredLeaf | None:
        row = self.connection.execute(
            self._sql("SELECT leaf_index, position, hash FROM {} ORDER BY leaf_index DESC LIMIT 1").format(self.leaves_table)
        ).fetchone()
        return None if row is None else StoredLeaf(row[0], row[1], bytes(row[2]))

    def leaf_at(self, position: int) -> StoredLeaf | None:
        row = self.connection.execute(
            self._sql("SELECT leaf_index, position, hash FROM {} WHERE position = %s").format(self.leaves_table), (position,)
        ).fetchone()
        return None if row is None else StoredLeaf(row[0], row[1], bytes(row[2]))

    def complete(self, level: int, index: int) -> Hash:
        if level == 0:
            row = self.connection.execute(self._sql("SELECT hash FROM {} WHERE leaf_index = %s").format(self.leaves_table), (index,)).fetchone()
        else:
            row = self.connection.execute(
                self._sql("SELECT hash FROM {} WHERE level = %s AND node_index = %s").format(self.nodes_table), (level, index)
            ).fetchone()
        if row is None:
            raise KeyError((level, index))
        return bytes(row[0])

    def append(self, expected_size: int, leaves: Sequence[tuple[int, Hash]]) -> bool:
        return self._append(expected_size, [], leaves)

    def append_mirrored(self, expected_size: int, events: Sequence[MirroredEvent], leaves: Sequence[Hash]) -> bool:
        return self._append(expected_size, events, [(e.position, h) for e, h in zip(events, leaves, strict=True)])

    def _append(self, expected_size: int, events: Sequence[MirroredEvent], leaves: Sequence[tuple[int, Hash]]) -> bool:
        with self.connection.transaction():
            self.connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cluster-ledger-tlog:{self.schema}",))
            if self.size() != expected_size:
                return False
            with self.connection.cursor() as cursor:
                if events:
                    # Each event takes the id its sequence gives, set to the source's position first: the guard on inserts
                    # refuses an id of its own, and a source's gaps (rolled-back writes) stay gaps.
                    sequence = cursor.execute("SELECT pg_get_serial_sequence(%s, 'notification_id')", (self.events.as_string(),)).fetchone()
                    insert = self._sql("INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)").format(self.events)
                    for e in events:
                        cursor.execute("SELECT setval(%s, %s, false)", (sequence[0] if sequence else None, e.position))
                        cursor.execute(insert, (e.aggregate_id, e.version, e.topic, e.payload))
                cursor.executemany(
                    self._sql("INSERT INTO {} (leaf_index, position, hash) VALUES (%s, %s, %s)").format(self.leaves_table),
                    [(expected_size + k, position, h) for k, (position, h) in enumerate(leaves)],
                )
                nodes = nodes_completed(expected_size, [h for _, h in leaves], self.complete)
                cursor.executemany(self._sql("INSERT INTO {} (level, node_index, hash) VALUES (%s, %s, %s)").format(self.nodes_table), nodes)
        return True

    def leaves_after(self, index: int, limit: int) -> list[StoredLeaf]:
        rows = self.connection.execute(
            self._sql("SELECT leaf_index, position, hash FROM {} WHERE leaf_index > %s ORDER BY leaf_index LIMIT %s").format(self.leaves_table),
            (index, limit),
        )
        return [StoredLeaf(i, p, bytes(h)) for i, p, h in rows]

    def leaves_between(self, first: int, last: int) -> list[StoredLeaf]:
        rows = self.connection.execute(
            self._sql("SELECT leaf_index, position, hash FROM {} WHERE position BETWEEN %s AND %s").format(self.leaves_table), (first, last)
        )
        return [StoredLeaf(i, p, bytes(h)) for i, p, h in rows]

    def positions_present(self, positions: Sequence[int]) -> set[int]:
        rows = self.connection.execute(
            self._sql("SELECT notification_id FROM {} WHERE notification_id = ANY(%s::bigint[])").format(self.events), (list(positions),)
        )
        return {row[0] for row in rows}

    def nodes_at(self, level: int, first: int, limit: int) -> dict[int, Hash]:
        if level == 0:
            sql = self._sql("SELECT leaf_index, hash FROM {} WHERE leaf_index >= %s AND leaf_index < %s").format(self.leaves_table)
            rows = self.connection.execute(sql, (first, first + limit))
        else:
            sql = self._sql("SELECT node_index, hash FROM {} WHERE level = %s AND node_index >= %s AND node_index < %s").format(self.nodes_table)
            rows = self.connection.execute(sql, (level, first, first + limit))
        return {index: bytes(h) for index, h in rows}

    def nodes_beyond(self, size: int) -> int:
        row = self.connection.execute(
            self._sql("SELECT count(*) FROM {} WHERE level < 1 OR node_index >= (CASE WHEN level >= 63 THEN 0 ELSE %s::bigint >> level END)")
            .format(self.nodes_table), (size,),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def publish(self, size: int, note: str, published_at: str) -> None:
        self.connection.execute(
            self._sql("INSERT INTO {} (tree_size, note, published_at) VALUES (%s, %s, %s)").format(self._table("tlog_checkpoints")),
            (size, note, published_at),
        )

    def published(self, limit: int) -> list[Published]:
        rows = self.connection.execute(
            self._sql("SELECT number, tree_size, note, published_at FROM {} ORDER BY number DESC LIMIT %s").format(self._table("tlog_checkpoints")),
            (limit,),
        )
        return [Published(*row) for row in rows]

    def mirror_source(self) -> tuple[str, str] | None:
        row = self.connection.execute(self._sql("SELECT prefix, verifier_key FROM {}").format(self._table("mirror_source"))).fetchone()
        return None if row is None else (row[0], row[1])

    def mark_mirror(self, prefix: str, verifier_key: str, at: str) -> None:
        self.connection.execute(
            self._sql("INSERT INTO {} (one, prefix, verifier_key, marked_at) VALUES (1, %s, %s, %s)").format(self._table("mirror_source")),
            (prefix, verifier_key, at),
        )

    def _table(self, name: str) -> Any:
        from psycopg.sql import Identifier

        return self._sql("{}.{}").format(Identifier(self.schema), Identifier(name))

    def close(self) -> None:
        self.connection.close()


def _hex_id(aggregate_id: str) -> str:
    """An aggregate id as the SQLite recorder stores it (32 hex digits); anything that is not a UUID as it is."""
    try:
        return uuid.UUID(aggregate_id).hex
    except ValueError:
        return aggregate_id


def create_statements(schema: str) -> list[tuple[str, Any]]:
    """(table, CREATE statement) of the tree tables in a PostgreSQL schema."""
    from psycopg.sql import SQL, Identifier

    return [
        ("tlog_leaves", SQL(
            "CREATE TABLE IF NOT EXISTS {}.tlog_leaves (leaf_index bigint PRIMARY KEY, position bigint NOT NULL UNIQUE, hash bytea NOT NULL)"
        ).format(Identifier(schema))),
        ("tlog_nodes", SQL(
            "CREATE TABLE IF NOT EXISTS {}.tlog_nodes (level smallint NOT NULL, node_index bigint NOT NULL, hash bytea NOT NULL, "
            "PRIMARY KEY (level, node_index))"
        ).format(Identifier(schema))),
        ("tlog_checkpoints", SQL(
            "CREATE TABLE IF NOT EXISTS {}.tlog_checkpoints (number bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tree_size bigint NOT NULL, "
            "note text NOT NULL, published_at text NOT NULL)"
        ).format(Identifier(schema))),
        ("mirror_source", SQL(
            "CREATE TABLE IF NOT EXISTS {}.mirror_source (one smallint PRIMARY KEY CHECK (one = 1), prefix text NOT NULL, "
            "verifier_key text NOT NULL, marked_at text NOT NULL)"
        ).format(Identifier(schema))),
    ]
