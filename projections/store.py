"""Where projection rows live: one table of JSON rows and one tracking row per projection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import orjson

from projections.platform import Row


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

    def all_rows(self, projection: str) -> dict[str, Row]:
        """Every row of the projection."""
        ...

    def raw_rows(self, projection: str) -> list[tuple[str, str]]:
        """Every row as stored text, sorted by key."""
        ...

    def write(self, projection: str, version: int, rows: Mapping[str, Row], position: int, expected: int | None = None) -> bool:
        """Write `rows` and the tracking `position` in one transaction; with `expected`, only if the
        stored position is still that (another catch-up may have moved it): returns False otherwise."""
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

    def iter_rows(self, projection: str, kinds: Collection[str] | None = None) -> Iterator[Row]:
        """Every row of the projection, or of `kinds` only, streamed in no particular order and decoded as read."""
        ...


class SQLiteProjectionStore:
    """Projection rows in the same SQLite file as the ledger."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.connection.executescript(
            "CREATE TABLE IF NOT EXISTS projection_rows ("
            " projection TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (projection, key));"
            "CREATE TABLE IF NOT EXISTS projection_tracking ("
            " projection TEXT PRIMARY KEY, version INTEGER NOT NULL, position INTEGER NOT NULL);"
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

    def all_rows(self, projection: str) -> dict[str, Row]:
        # Decoded as the cursor goes, so the rows' text is never all held at once beside the rows.
        cursor = self.connection.execute("SELECT key, data FROM projection_rows WHERE projection = ? ORDER BY key", (projection,))
        return {key: orjson.loads(data) for key, data in cursor}

    def raw_rows(self, projection: str) -> list[tuple[str, str]]:
        return list(
            self.connection.execute("SELECT key, data FROM projection_rows WHERE projection = ? ORDER BY key", (projection,))
        )

    def write(self, projection: str, version: int, rows: Mapping[str, Row], position: int, expected: int | None = None) -> bool:
        try:
            return self._write(projection, version, rows, position, expected)
        except _Moved:
            return False

    def _write(self, projection: str, version: int, rows: Mapping[str, Row], position: int, expected: int | None) -> bool:
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

    def fed_by_consumers(self, projection: str) -> bool:
        return False

    def close(self) -> None:
        self.connection.close()

    def iter_rows(self, projection: str, kinds: Collection[str] | None = None) -> Iterator[Row]:
        # NOT INDEXED: a scan in table order reads twice as fast as a walk of the primary key.
        query, params = "SELECT data FROM projection_rows NOT INDEXED WHERE projection = ?", [projection]
        if kinds is not None and not kinds:
            return
        if kinds is not None:
            query += " AND (" + " OR ".join(["instr(data, ?) > 0"] * len(kinds)) + " OR instr(data, ?) = 0)"
            params += kind_marks(kinds)
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
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")
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
        made = self.connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
            (f'"{schema}".projection_rows', f'"{schema}".projection_tracking'),
        ).fetchone()
        if made is not None and made[0]:
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
            self._sql("SELECT r.key, r.data FROM unnest(%s::text[]) AS k(key) JOIN {} AS r ON r.projection = %s AND r.key = k.key"
                      ).format(self.rows_table), (list(keys), projection)
        )
        return {key: json.loads(data) for key, data in cursor}

    def all_rows(self, projection: str) -> dict[str, Row]:
        # A server-side cursor decoded as it goes, so the rows' text is never all held at once beside the rows.
        with self.connection.transaction(), self.connection.cursor(name="projection_all_rows") as cursor:
            cursor.itersize = 5_000
            cursor.execute(
                self._sql("SELECT key, data FROM {} WHERE projection = %s ORDER BY key COLLATE \"C\"").format(self.rows_table), (projection,)
            )
            return {key: orjson.loads(data) for key, data in cursor}

    def raw_rows(self, projection: str) -> list[tuple[str, str]]:
        cursor = self.connection.execute(
            self._sql("SELECT key, data FROM {} WHERE projection = %s ORDER BY key COLLATE \"C\"").format(self.rows_table), (projection,)
        )
        return [(key, data) for key, data in cursor]

    def write(self, projection: str, version: int, rows: Mapping[str, Row], position: int, expected: int | None = None) -> bool:
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
        except _Moved:
            return False
        return True

    def upsert_rows(self, cursor: Any, projection: str, rows: Mapping[str, Row]) -> None:
        """Write `rows` within the caller's transaction."""
        if not rows:
            return
        cursor.execute(
            self._sql("INSERT INTO {} (projection, key, data) SELECT %s, key, data FROM unnest(%s::text[], %s::text[]) AS u(key, data) "
                      "ON CONFLICT (projection, key) DO UPDATE SET data = excluded.data").format(self.rows_table),
            (projection, list(rows), [encode(row) for row in rows.values()]),
        )

    def put_rows(self, projection: str, rows: Sequence[tuple[str, str]]) -> None:
        if not rows:
            return
        # COPY into a scratch table, then one upsert: arrays of JSON text cost psycopg a regex escape per element.
        with self.connection.transaction(), self.connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS projection_rows_in (key text, data text) ON COMMIT DELETE ROWS")
            with cursor.copy("COPY projection_rows_in (key, data) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                self._sql("INSERT INTO {} (projection, key, data) SELECT %s, key, data FROM projection_rows_in "
                          "ON CONFLICT (projection, key) DO UPDATE SET data = excluded.data").format(self.rows_table),
                (projection,),
            )

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

    def iter_rows(self, projection: str, kinds: Collection[str] | None = None) -> Iterator[Row]:
        query = self._sql("SELECT data FROM {} WHERE projection = %s").format(self.rows_table)
        params: list[Any] = [projection]
        if kinds is not None and not kinds:
            return
        if kinds is not None:
            query += self._sql(" AND (" + " OR ".join(["strpos(data, %s) > 0"] * len(kinds)) + " OR strpos(data, %s) = 0)")
            params += kind_marks(kinds)
        # A server-side cursor: the rows come from the server a page at a time.
        with self.connection.transaction(), self.connection.cursor(name="projection_iter_rows") as cursor:
            cursor.itersize = 5_000
            cursor.execute(query, params)
            for (data,) in cursor:
                row = orjson.loads(data)
                if kinds is None or row["kind"] in kinds:
                    yield row


def kind_marks(kinds: Collection[str]) -> list[str]:
    """The texts a store looks for to pick rows of `kinds` without parsing them: each kind as `encode` writes it, then
    the start of any kind as it writes it (a row without that one was written otherwise, so it is read and checked)."""
    return [f'"kind":{json.dumps(kind)}' for kind in sorted(kinds)] + ['"kind":"']
