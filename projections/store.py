"""Where projection rows live: one table of JSON rows and one tracking row per projection, and snapshots of the rows
at positions of the log (each boundary keeps only the rows changed since the one before)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from projections.platform import Row

SQLITE_KIND = "json_extract(data, '$.kind')"
POSTGRES_KIND = "((data::jsonb) ->> 'kind')"
"""A row's kind as the stores index it: the same expression in the index and in the queries that read through it."""


def encode(row: Row) -> str:
    """The canonical text of a row: equal rows give equal bytes."""
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_fast(row: Row) -> str:
    """`encode` by orjson, for rebuilds (the same text: tests/unit/test_row_encoding.py)."""
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


class ProjectionStore(Protocol):
    """Rows and tracking position of named projections; `write` is one transaction."""

    def position(self, projection: str, version: int) -> int:
        """The last notification applied; 0 if none, or if the rows were built by another fold version."""
        ...

    def tracked_version(self, projection: str) -> int | None:
        """The fold version that built the stored rows; None if nothing is tracked."""
        ...

    def rows(self, projection: str, keys: Iterable[str]) -> dict[str, Row]:
        """The stored rows of `keys` (missing keys are left out)."""
        ...

    def raw_rows(self, projection: str) -> list[tuple[str, str]]:
        """Every row as stored text, sorted by key."""
        ...

    def write(
        self, projection: str, version: int, rows: Mapping[str, Row], position: int, expected: int | None = None,
        snapshot: tuple[int, Collection[str] | None] | None = None,
    ) -> bool:
        """Write `rows` and the tracking `position` in one transaction; with `expected`, only if the
        stored position is still that (another catch-up may have moved it): returns False otherwise.
        With `snapshot` (a boundary and keys), the stored rows of those keys (of every key if None), once written, are
        also kept as the rows changed since the previous snapshot, and the boundary is marked as a snapshot of fold `version`."""
        ...

    def put_rows(self, projection: str, rows: Sequence[tuple[str, str]]) -> None:
        """Write already encoded `(key, text)` rows in one transaction without moving the tracking position
        (a rebuild writes its rows in large chunks, then the position with the last)."""
        ...

    def reset(self, projection: str) -> None:
        """Drop every row and the tracking position of the projection."""
        ...

    def fed_by_consumers(self, projection: str) -> bool:
        """Whether Kafka consumers build this projection here (then it follows Kafka offsets, not log positions)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...

    def snapshot_boundary(self, projection: str, version: int, upto: int) -> int:
        """The last snapshot boundary at or before `upto` marked for fold `version`; 0 if none."""
        ...

    def snapshot_rows(self, projection: str, boundary: int, kinds: Collection[str] | None = None) -> Iterator[tuple[str, str]]:
        """The snapshot at `boundary` as stored `(key, text)`, in key order: each key's latest version at a boundary up to it
        (with `kinds`, the rows of those kinds, and perhaps others: the caller checks each row's kind)."""
        ...

    def snapshot_rows_of(self, projection: str, boundary: int, keys: Collection[str]) -> dict[str, str]:
        """The stored text of `keys` in the snapshot at `boundary` (keys it does not hold are left out)."""
        ...

    def put_snapshot_rows(self, projection: str, rows: Sequence[tuple[int, str, str]]) -> None:
        """Write already encoded `(boundary, key, text)` snapshot rows in one transaction (a rebuild's chunks)."""
        ...

    def mark_snapshots(self, projection: str, version: int, boundaries: Iterable[int]) -> None:
        """Mark `boundaries` as complete snapshots of fold `version` (after their rows are written)."""
        ...

    def raw_snapshots(self, projection: str) -> list[tuple[int, int | None, str, str]]:
        """Every stored snapshot row as `(boundary, version marked, key, text)`, by boundary and key."""
        ...

    def iter_rows(self, projection: str, kinds: Collection[str] | None = None, holding: str | None = None) -> Iterator[Row]:
        """Every row of the projection, or of `kinds` only, streamed in no particular order and decoded as read; with
        `holding`, rows whose text cannot hold it (ignoring case) may be left out."""
        ...


class SQLiteProjectionStore:
    """Projection rows in the same SQLite file as the ledger (or in memory, for a role that may only read them)."""

    note = ""
    """One line to show when the rows are not where the ledger keeps them (folded in memory)."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.connection.executescript(
            "CREATE TABLE IF NOT EXISTS projection_rows ("
            " projection TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (projection, key));"
            "CREATE TABLE IF NOT EXISTS projection_tracking ("
            " projection TEXT PRIMARY KEY, version INTEGER NOT NULL, position INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS projection_snapshots ("
            " projection TEXT NOT NULL, key TEXT NOT NULL, boundary INTEGER NOT NULL, data TEXT NOT NULL,"
            " PRIMARY KEY (projection, key, boundary)) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS projection_snapshot_marks ("
            " projection TEXT NOT NULL, boundary INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (projection, boundary));"
            # A page that needs some kinds of rows (organisations, activities) reads only those, not the whole table.
            f"CREATE INDEX IF NOT EXISTS projection_rows_kind ON projection_rows (projection, {SQLITE_KIND});"
        )

    def position(self, projection: str, version: int) -> int:
        row = self.connection.execute(
            "SELECT version, position FROM projection_tracking WHERE projection = ?", (projection,)
        ).fetchone()
        return 0 if row is None or row[0] != version else int(row[1])

    def tracked_version(self, projection: str) -> int | None:
        row = self.connection.execute("SELECT version FROM projection_tracking WHERE projection = ?", (projection,)).fetchone()
        return None if row is None else int(row[0])

    def rows(self, projection: str, keys: Iterable[str]) -> dict[str, Row]:
        found: dict[str, Row] = {}
        wanted = list(keys)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, data in self.connection.execute(
                f"SELECT key, data FROM projection_rows WHERE projection = ? AND key IN ({marks})", (projection, *chunk)
            ):
                found[key] = json.loads(data)
        return found

    def raw_rows(self, projection: str) -> list[tuple[str, str]]:
        return list(
            self.connection.execute("SELECT key, data FROM projection_rows WHERE projection = ? ORDER BY key", (projection,))
        )

    def write(
        self, projection: str, version: int, rows: Mapping[str, Row], position: int, expected: int | None = None,
        snapshot: tuple[int, Collection[str] | None] | None = None,
    ) -> bool:
        try:
            return self._write(projection, version, rows, position, expected, snapshot)
        except _Moved:
            return False

    def _write(
        self, projection: str, version: int, rows: Mapping[str, Row], position: int, expected: int | None,
        snapshot: tuple[int, Collection[str] | None] | None = None,
    ) -> bool:
        with _transaction(self.connection):
            if expected is not None and self.position(projection, version) != expected:
                raise _Moved
            self.connection.executemany(
                "INSERT INTO projection_rows (projection, key, data) VALUES (?, ?, ?) "
                "ON CONFLICT (projection, key) DO UPDATE SET data = excluded.data",
                [(projection, key, encode(row)) for key, row in rows.items()],
            )
            self.connection.execute(
                "INSERT INTO projection_tracking (projection, version, position) VALUES (?, ?, ?) "
                "ON CONFLICT (projection) DO UPDATE SET version = excluded.version, position = excluded.position",
                (projection, version, position),
            )
            if snapshot is not None:
                boundary, keys = snapshot
                copy = ("INSERT INTO projection_snapshots (projection, key, boundary, data) "
                        "SELECT projection, key, ?, data FROM projection_rows WHERE projection = ? {} "
                        "ON CONFLICT (projection, key, boundary) DO UPDATE SET data = excluded.data")
                if keys is None:
                    self.connection.execute(copy.format(""), (boundary, projection))
                else:
                    self.connection.executemany(copy.format("AND key = ?"), [(boundary, projection, key) for key in keys])
                self._mark(projection, version, [boundary])
        return True

    def put_rows(self, projection: str, rows: Sequence[tuple[str, str]]) -> None:
        with _transaction(self.connection):
            self.connection.executemany(
                "INSERT INTO projection_rows (projection, key, data) VALUES (?, ?, ?) "
                "ON CONFLICT (projection, key) DO UPDATE SET data = excluded.data",
                [(projection, key, data) for key, data in rows],
            )

    def reset(self, projection: str) -> None:
        with _transaction(self.connection):
            self.connection.execute("DELETE FROM projection_rows WHERE projection = ?", (projection,))
            self.connection.execute("DELETE FROM projection_tracking WHERE projection = ?", (projection,))
            self.connection.execute("DELETE FROM projection_snapshots WHERE projection = ?", (projection,))
            self.connection.execute("DELETE FROM projection_snapshot_marks WHERE projection = ?", (projection,))

    def fed_by_consumers(self, projection: str) -> bool:
        return False

    def close(self) -> None:
        self.connection.close()

    def snapshot_boundary(self, projection: str, version: int, upto: int) -> int:
        row = self.connection.execute(
            "SELECT MAX(boundary) FROM projection_snapshot_marks WHERE projection = ? AND version = ? AND boundary <= ?",
            (projection, version, upto),
        ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def snapshot_rows(self, projection: str, boundary: int, kinds: Collection[str] | None = None) -> Iterator[tuple[str, str]]:
        if kinds is not None and not kinds:
            return
        # SQLite takes the bare `data` from the row holding the MAX: each key's latest version, read in key order from the index.
        query, params = "SELECT key, data, MAX(boundary) FROM projection_snapshots WHERE projection = ? AND boundary <= ? GROUP BY key", [projection, boundary]
        if kinds is not None:
            # Picked by their text, as `iter_rows` picks them (a key's rows are all of one kind, whichever version is read).
            query += " HAVING " + " OR ".join(["instr(data, ?) > 0"] * len(kinds)) + " OR instr(data, ?) = 0"
            params += kind_marks(kinds)
        cursor = self.connection.execute(query + " ORDER BY key", params)
        try:
            while found := cursor.fetchmany(5_000):
                for key, data, _ in found:
                    yield key, data
        finally:
            cursor.close()

    def snapshot_rows_of(self, projection: str, boundary: int, keys: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        wanted = list(keys)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for key, data, _ in self.connection.execute(
                f"SELECT key, data, MAX(boundary) FROM projection_snapshots WHERE projection = ? AND boundary <= ? "
                f"AND key IN ({','.join('?' * len(chunk))}) GROUP BY key", (projection, boundary, *chunk),
            ):
                found[key] = data
        return found

    def put_snapshot_rows(self, projection: str, rows: Sequence[tuple[int, str, str]]) -> None:
        with _transaction(self.connection):
            self.connection.executemany(
                "INSERT INTO projection_snapshots (projection, key, boundary, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (projection, key, boundary) DO UPDATE SET data = excluded.data",
                [(projection, key, boundary, data) for boundary, key, data in rows],
            )

    def mark_snapshots(self, projection: str, version: int, boundaries: Iterable[int]) -> None:
        with _transaction(self.connection):
            self._mark(projection, version, boundaries)

    def _mark(self, projection: str, version: int, boundaries: Iterable[int]) -> None:
        self.connection.executemany(
            "INSERT INTO projection_snapshot_marks (projection, boundary, version) VALUES (?, ?, ?) "
            "ON CONFLICT (projection, boundary) DO UPDATE SET version = excluded.version",
            [(projection, boundary, version) for boundary in boundaries],
        )

    def raw_snapshots(self, projection: str) -> list[tuple[int, int | None, str, str]]:
        return list(self.connection.execute(
            "SELECT s.boundary, m.version, s.key, s.data FROM projection_snapshots AS s LEFT JOIN projection_snapshot_marks AS m "
            "ON m.projection = s.projection AND m.boundary = s.boundary WHERE s.projection = ? ORDER BY s.boundary, s.key",
            (projection,),
        ))

    def iter_rows(self, projection: str, kinds: Collection[str] | None = None, holding: str | None = None) -> Iterator[Row]:
        if kinds is not None and not kinds:
            return
        params: list[Any]
        if kinds is None:
            # NOT INDEXED: a scan in table order reads twice as fast as a walk of the primary key.
            query, params = "SELECT data FROM projection_rows NOT INDEXED WHERE projection = ?", [projection]
        else:
            # Through the index of kinds: only those rows are read, however few of the table they are.
            query = f"SELECT data FROM projection_rows INDEXED BY projection_rows_kind WHERE projection = ? AND {SQLITE_KIND} IN ({','.join('?' * len(kinds))})"
            params = [projection, *sorted(kinds)]
        if holding is not None and _plain(holding):
            # lower() folds ASCII only: a row with other characters or an escape is always read, and judged by the caller.
            query += " AND (instr(lower(data), ?) > 0 OR length(data) <> length(CAST(data AS BLOB)) OR instr(data, '\\') > 0)"
            params.append(holding.lower())
        for (data,) in self.connection.execute(query, params):
            row = orjson.loads(data)
            if kinds is None or row["kind"] in kinds:
                yield row


class _Moved(Exception):
    """Another catch-up moved the tracking position first."""


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT; rolls back on error, and turns a moved position into False."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> bool:
        if kind is None:
            self.connection.execute("COMMIT")
        elif self.connection.in_transaction:  # SQLite may have rolled back already (a full disk): the real error goes on
            self.connection.execute("ROLLBACK")
        return False


class PostgresProjectionStore:
    """Projection rows in the ledger's PostgreSQL database; rows and tracking in one transaction."""

    def __init__(self, conninfo: str, schema: str = "public") -> None:
        import psycopg
        from psycopg.sql import SQL, Identifier

        self._sql, self._identifier = SQL, Identifier
        self.connection = psycopg.connect(conninfo, autocommit=True)
        self.schema = schema
        self.rows_table = SQL("{}.{}").format(Identifier(schema), Identifier("projection_rows"))
        self.tracking_table = SQL("{}.{}").format(Identifier(schema), Identifier("projection_tracking"))
        self.snapshots_table = SQL("{}.{}").format(Identifier(schema), Identifier("projection_snapshots"))
        self.marks_table = SQL("{}.{}").format(Identifier(schema), Identifier("projection_snapshot_marks"))
        made = self.connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
            (f'"{schema}".projection_rows', f'"{schema}".projection_tracking'),
        ).fetchone()
        if made is not None and made[0]:
            self.keeps_snapshots = self._snapshot_tables()
            self.indexes_kinds = self._kind_index()
            return  # no DDL: the schema's owner may have made these tables for a role that only reads and writes rows
        with self.connection.transaction():
            # The same lock as the event store's DDL: concurrent CREATE ... IF NOT EXISTS can still collide.
            self.connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cluster-ledger-ddl:{schema}",))
            self.connection.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
            self.connection.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (projection text NOT NULL, key text NOT NULL, data text NOT NULL, PRIMARY KEY (projection, key))"
            ).format(self.rows_table))
            self.connection.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (projection text PRIMARY KEY, version integer NOT NULL, position bigint NOT NULL)"
            ).format(self.tracking_table))
        self.keeps_snapshots = self._snapshot_tables()
        self.indexes_kinds = self._kind_index()

    def position(self, projection: str, version: int) -> int:
        row = self.connection.execute(
            self._sql("SELECT version, position FROM {} WHERE projection = %s").format(self.tracking_table), (projection,)
        ).fetchone()
        return 0 if row is None or row[0] != version else int(row[1])

    def tracked_version(self, projection: str) -> int | None:
        row = self.connection.execute(
            self._sql("SELECT version FROM {} WHERE projection = %s").format(self.tracking_table), (projection,)
        ).fetchone()
        return None if row is None else int(row[0])

    def rows(self, projection: str, keys: Iterable[str]) -> dict[str, Row]:
        # A join on the keys probes the primary key once per key; `key = ANY(...)` may be planned as a scan of the whole table.
        cursor = self.connection.execute(
            self._sql("SELECT r.key, r.data FROM unnest(%b::text[]) AS k(key) JOIN {} AS r ON r.projection = %s AND r.key = k.key"
                      ).format(self.rows_table), (list(keys), projection)
        )
        return {key: json.loads(data) for key, data in cursor}

    def raw_rows(self, projection: str) -> list[tuple[str, str]]:
        cursor = self.connection.execute(
            self._sql("SELECT key, data FROM {} WHERE projection = %s ORDER BY key COLLATE \"C\"").format(self.rows_table), (projection,)
        )
        return [(key, data) for key, data in cursor]

    def write(
        self, projection: str, version: int, rows: Mapping[str, Row], position: int, expected: int | None = None,
        snapshot: tuple[int, Collection[str] | None] | None = None,
    ) -> bool:
        try:
            with self.connection.transaction(), self.connection.cursor() as cursor:
                if expected is not None:
                    cursor.execute(
                        self._sql("INSERT INTO {} (projection, version, position) VALUES (%s, %s, 0) ON CONFLICT DO NOTHING").format(self.tracking_table),
                        (projection, version),
                    )
                    current = cursor.execute(
                        self._sql("SELECT version, position FROM {} WHERE projection = %s FOR UPDATE").format(self.tracking_table), (projection,)
                    ).fetchone()
                    if current is None or (0 if current[0] != version else int(current[1])) != expected:
                        raise _Moved
                self.upsert_rows(cursor, projection, rows)
                self.upsert_tracking(cursor, projection, version, position)
                if snapshot is not None and self.keeps_snapshots:
                    self._snapshot(cursor, projection, version, *snapshot)
        except _Moved:
            return False
        return True

    def upsert_rows(self, cursor: Any, projection: str, rows: Mapping[str, Row]) -> None:
        """Write `rows` within the caller's transaction."""
        if not rows:
            return
        cursor.execute(
            # Arrays in binary (%b): psycopg's text form escapes every element through a regular expression.
            self._sql("INSERT INTO {} (projection, key, data) SELECT %s, key, data FROM unnest(%b::text[], %b::text[]) AS u(key, data) "
                      "ON CONFLICT (projection, key) DO UPDATE SET data = excluded.data").format(self.rows_table),
            (projection, list(rows), [encode(row) for row in rows.values()]),
        )

    def put_rows(self, projection: str, rows: Sequence[tuple[str, str]]) -> None:
        if not rows:
            return
        self._copy_upsert(projection, rows, self.rows_table, "projection_rows_in", ("key", "data"), "key text, data text", ("projection", "key"))

    def upsert_tracking(self, cursor: Any, projection: str, version: int, position: int, *, keep_highest: bool = False) -> None:
        """Write the tracking position within the caller's transaction."""
        new_position = "GREATEST(excluded.position, {}.position)" if keep_highest else "excluded.position"
        cursor.execute(
            self._sql("INSERT INTO {} AS t (projection, version, position) VALUES (%s, %s, %s) "
                      "ON CONFLICT (projection) DO UPDATE SET version = excluded.version, position = " + new_position.format("t")).format(self.tracking_table),
            (projection, version, position),
        )

    def reset(self, projection: str) -> None:
        with self.connection.transaction():
            self.connection.execute(self._sql("DELETE FROM {} WHERE projection = %s").format(self.rows_table), (projection,))
            self.connection.execute(self._sql("DELETE FROM {} WHERE projection = %s").format(self.tracking_table), (projection,))
            if self.keeps_snapshots:
                self.connection.execute(self._sql("DELETE FROM {} WHERE projection = %s").format(self.snapshots_table), (projection,))
                self.connection.execute(self._sql("DELETE FROM {} WHERE projection = %s").format(self.marks_table), (projection,))

    def close(self) -> None:
        self.connection.close()

    def fed_by_consumers(self, projection: str) -> bool:
        table = self.connection.execute("SELECT to_regclass(%s)", (f'"{self.schema}".consumer_versions',)).fetchone()
        if table is None or table[0] is None:
            return False
        found = self.connection.execute(
            self._sql("SELECT 1 FROM {}.consumer_versions WHERE projection = %s LIMIT 1").format(self._identifier(self.schema)), (projection,)
        ).fetchone()
        return found is not None

    def _snapshot_tables(self) -> bool:
        """Whether the snapshot tables are there, made now if not; a role that may not make them keeps no snapshots."""
        import psycopg

        names = (f'"{self.schema}".projection_snapshots', f'"{self.schema}".projection_snapshot_marks')
        made = self.connection.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL", names).fetchone()
        if made is not None and made[0]:
            return True
        try:
            with self.connection.transaction():
                self.connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cluster-ledger-ddl:{self.schema}",))
                self.connection.execute(self._sql(
                    "CREATE TABLE IF NOT EXISTS {} (projection text NOT NULL, key text COLLATE \"C\" NOT NULL, boundary bigint NOT NULL, "
                    "data text NOT NULL, PRIMARY KEY (projection, key, boundary))"
                ).format(self.snapshots_table))
                self.connection.execute(self._sql(
                    "CREATE TABLE IF NOT EXISTS {} (projection text NOT NULL, boundary bigint NOT NULL, version integer NOT NULL, "
                    "PRIMARY KEY (projection, boundary))"
                ).format(self.marks_table))
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def _kind_index(self) -> bool:
        """Whether the rows are indexed by kind, the index made now if not; a role that may not make it reads by scanning."""
        import psycopg

        if self.connection.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{self.schema}".projection_rows_kind',)).fetchone() == (True,):
            return True
        try:
            with self.connection.transaction():
                self.connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cluster-ledger-ddl:{self.schema}",))
                self.connection.execute(self._sql("CREATE INDEX IF NOT EXISTS projection_rows_kind ON {} (projection, " + POSTGRES_KIND + ")")
                                        .format(self.rows_table))
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def _snapshot(self, cursor: Any, projection: str, version: int, boundary: int, keys: Collection[str] | None) -> None:
        """Keep the stored rows of `keys` (of every key if None) as the snapshot rows at `boundary`, within the caller's transaction."""
        if keys is None:
            cursor.execute(
                self._sql("INSERT INTO {} (projection, key, boundary, data) SELECT projection, key, %s, data FROM {} WHERE projection = %s "
                          "ON CONFLICT (projection, key, boundary) DO UPDATE SET data = excluded.data").format(self.snapshots_table, self.rows_table),
                (boundary, projection),
            )
            self._mark(cursor, projection, version, [boundary])
            return
        cursor.execute(
            self._sql("INSERT INTO {} (projection, key, boundary, data) SELECT %s, r.key, %s, r.data FROM unnest(%s::text[]) AS k(key) "
                      "JOIN {} AS r ON r.projection = %s AND r.key = k.key "
                      "ON CONFLICT (projection, key, boundary) DO UPDATE SET data = excluded.data").format(self.snapshots_table, self.rows_table),
            (projection, boundary, list(keys), projection),
        )
        self._mark(cursor, projection, version, [boundary])

    def snapshot_boundary(self, projection: str, version: int, upto: int) -> int:
        if not self.keeps_snapshots:
            return 0
        row = self.connection.execute(
            self._sql("SELECT MAX(boundary) FROM {} WHERE projection = %s AND version = %s AND boundary <= %s").format(self.marks_table),
            (projection, version, upto),
        ).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def snapshot_rows(self, projection: str, boundary: int, kinds: Collection[str] | None = None) -> Iterator[tuple[str, str]]:
        if kinds is not None and not kinds:
            return
        query = self._sql("SELECT DISTINCT ON (key) key, data FROM {} WHERE projection = %s AND boundary <= %s "
                          "ORDER BY key, boundary DESC").format(self.snapshots_table)
        params: list[Any] = [projection, boundary]
        if kinds is not None:
            # Picked by their text, as `iter_rows` picks them, once each key's latest version is found.
            query = self._sql("SELECT key, data FROM ({}) AS latest WHERE " + " OR ".join(["strpos(data, %s) > 0"] * len(kinds))
                              + " OR strpos(data, %s) = 0").format(query)
            params += kind_marks(kinds)
        with self.connection.transaction(), self.connection.cursor(name="projection_snapshot_rows") as cursor:
            cursor.itersize = 5_000
            cursor.execute(query, params)
            for key, data in cursor:
                yield key, data

    def snapshot_rows_of(self, projection: str, boundary: int, keys: Collection[str]) -> dict[str, str]:
        if not keys:
            return {}
        cursor = self.connection.execute(
            self._sql("SELECT DISTINCT ON (s.key) s.key, s.data FROM unnest(%s::text[]) AS k(key) JOIN {} AS s ON s.projection = %s "
                      "AND s.key = k.key AND s.boundary <= %s ORDER BY s.key, s.boundary DESC").format(self.snapshots_table),
            (list(keys), projection, boundary),
        )
        return {key: data for key, data in cursor}

    def put_snapshot_rows(self, projection: str, rows: Sequence[tuple[int, str, str]]) -> None:
        if not rows or not self.keeps_snapshots:
            return
        self._copy_upsert(projection, rows, self.snapshots_table, "projection_snapshots_in", ("boundary", "key", "data"),
                          "boundary bigint, key text, data text", ("projection", "key", "boundary"))

    def _copy_upsert(self, projection: str, rows: Sequence[tuple[Any, ...]], table: Any, scratch_name: str, columns: tuple[str, ...],
                     types: str, conflict: tuple[str, ...]) -> None:
        """COPY `rows` into a scratch table, then one upsert into `table`: arrays of JSON text cost psycopg a regex escape per element."""
        scratch = self._identifier(scratch_name)
        names = self._sql(", ").join(self._identifier(c) for c in columns)
        with self.connection.transaction(), self.connection.cursor() as cursor:
            cursor.execute(self._sql("CREATE TEMPORARY TABLE IF NOT EXISTS {} (" + types + ") ON COMMIT DELETE ROWS").format(scratch))
            with cursor.copy(self._sql("COPY {} ({}) FROM STDIN").format(scratch, names)) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                self._sql("INSERT INTO {} (projection, {}) SELECT %s, {} FROM {} ON CONFLICT ({}) DO UPDATE SET data = excluded.data").format(
                    table, names, names, scratch, self._sql(", ").join(self._identifier(c) for c in conflict)),
                (projection,),
            )

    def mark_snapshots(self, projection: str, version: int, boundaries: Iterable[int]) -> None:
        if not self.keeps_snapshots:
            return
        with self.connection.transaction(), self.connection.cursor() as cursor:
            self._mark(cursor, projection, version, boundaries)

    def _mark(self, cursor: Any, projection: str, version: int, boundaries: Iterable[int]) -> None:
        cursor.execute(
            self._sql("INSERT INTO {} (projection, boundary, version) SELECT %s, b, %s FROM unnest(%s::bigint[]) AS u(b) "
                      "ON CONFLICT (projection, boundary) DO UPDATE SET version = excluded.version").format(self.marks_table),
            (projection, version, list(boundaries)),
        )

    def raw_snapshots(self, projection: str) -> list[tuple[int, int | None, str, str]]:
        if not self.keeps_snapshots:
            return []
        cursor = self.connection.execute(
            self._sql("SELECT s.boundary, m.version, s.key, s.data FROM {} AS s LEFT JOIN {} AS m ON m.projection = s.projection "
                      "AND m.boundary = s.boundary WHERE s.projection = %s ORDER BY s.boundary, s.key").format(self.snapshots_table, self.marks_table),
            (projection,),
        )
        return [(int(boundary), version, key, data) for boundary, version, key, data in cursor]

    def iter_rows(self, projection: str, kinds: Collection[str] | None = None, holding: str | None = None) -> Iterator[Row]:
        query = self._sql("SELECT data FROM {} WHERE projection = %s").format(self.rows_table)
        params: list[Any] = [projection]
        if kinds is not None and not kinds:
            return
        if kinds is not None and self.indexes_kinds:
            # Through the index of kinds: only those rows are read, however few of the table they are.
            query += self._sql(" AND " + POSTGRES_KIND + " = ANY(%s)")
            params.append(sorted(kinds))
        elif kinds is not None:
            query += self._sql(" AND (" + " OR ".join(["strpos(data, %s) > 0"] * len(kinds)) + " OR strpos(data, %s) = 0)")
            params += kind_marks(kinds)
        if holding is not None and _plain(holding):
            # lower() in the C collation folds ASCII only: a row with other characters or an escape is always read, and judged by the caller.
            query += self._sql(" AND (strpos(lower(data COLLATE \"C\"), %s) > 0 OR octet_length(data) <> char_length(data) OR strpos(data, '\\') > 0)")
            params.append(holding.lower())
        # A server-side cursor: the rows come from the server a page at a time.
        with self.connection.transaction(), self.connection.cursor(name="projection_iter_rows") as cursor:
            cursor.itersize = 5_000
            cursor.execute(query, params)
            for (data,) in cursor:
                row = orjson.loads(data)
                if kinds is None or row["kind"] in kinds:
                    yield row


def _plain(text: str) -> bool:
    """Whether `text` is printable ASCII that JSON writes as it is: a store may then look for it in a row's text, ignoring case."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def kind_marks(kinds: Collection[str]) -> list[str]:
    """The texts a store looks for to pick rows of `kinds` without parsing them: each kind as `encode` writes it, then
    the start of any kind as it writes it (a row without that one was written otherwise, so it is read and checked)."""
    return [f'"kind":{json.dumps(kind)}' for kind in sorted(kinds)] + ['"kind":"']
