"""Bulk reads of the stored events straight from the recorders' tables, in bounded pages, for rebuilds and benchmarks."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent

FETCH = 5_000
"""Rows fetched at a time: memory stays bounded whatever the length of the log."""

StoredRow = tuple[str, int, str, bytes]
"""(aggregate key as 32 hex digits, notification position, topic, stored state)."""


def can_scan(recorder: ApplicationRecorder) -> bool:
    """Whether `recorder` keeps its events in a table this module can read (SQLite or PostgreSQL)."""
    return _kind(recorder) is not None


KeyRange = tuple[str | None, str | None]
"""Stored aggregate ids from the first (included) to the second (left out), as 32 hex digits; None: no bound on that side."""


def by_aggregate(recorder: ApplicationRecorder, upto: int, keys: KeyRange = (None, None)) -> Iterator[StoredRow]:
    """Every event at a position up to `upto` (of the aggregates in `keys`), aggregate by aggregate, each aggregate's
    events in order.

    One read transaction (a consistent snapshot), fetched page by page.
    """
    low, high = keys
    kind = _kind(recorder)
    if kind == "sqlite":
        # Text ids compare as text; a respelled id of another type falls in the first range or the last, as it sorts.
        bounds = "".join((" AND originator_id >= ?" if low is not None else "", " AND originator_id < ?" if high is not None else ""))
        statement = (
            f"SELECT originator_id, rowid, topic, state FROM {recorder.events_table_name} "  # type: ignore[attr-defined]
            f"WHERE rowid <= ?{bounds} ORDER BY originator_id, originator_version"
        )
        yield from _sqlite_rows(recorder, statement, (upto, *(key for key in keys if key is not None)))
    elif kind == "postgres":
        from psycopg.sql import SQL, Identifier

        bounds = SQL("").join((SQL(" AND originator_id >= %s") if low is not None else SQL(""),
                               SQL(" AND originator_id < %s") if high is not None else SQL("")))
        statement = SQL(
            "SELECT originator_id, notification_id, topic, state FROM {}.{} WHERE notification_id <= %s{} ORDER BY originator_id, originator_version"
        ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name), bounds)  # type: ignore[attr-defined]
        params = (upto, *(UUID(key) for key in keys if key is not None))
        for originator_id, position, topic, state in _postgres_rows(recorder, statement, params):
            yield originator_id.hex, position, topic, state
    else:
        raise TypeError(f"cannot scan the events of a {type(recorder).__name__}")


def has_unkeyed_events(recorder: ApplicationRecorder) -> bool:
    """Whether an event is stored with no aggregate id (SQLite's column can be edited to NULL): no range of `keys` holds it."""
    if _kind(recorder) != "sqlite":
        return False  # PostgreSQL's primary key refuses a NULL id
    statement = f"SELECT 1 FROM {recorder.events_table_name} WHERE originator_id IS NULL LIMIT 1"  # type: ignore[attr-defined]
    return any(True for _ in _sqlite_rows(recorder, statement, ()))


def by_aggregate_after(recorder: ApplicationRecorder, after: int, upto: int) -> Iterator[StoredRow]:
    """`by_aggregate` of the events at positions in (`after`, `upto`] only: the database sorts that range, never the whole log."""
    if after <= 0:
        yield from by_aggregate(recorder, upto)
        return
    kind = _kind(recorder)
    if kind == "sqlite":
        # The range is read by rowid, then sorted; `+originator_id` keeps SQLite from walking the whole aggregate index instead.
        statement = (
            f"SELECT originator_id, rowid, topic, state FROM {recorder.events_table_name} "  # type: ignore[attr-defined]
            "WHERE rowid > ? AND rowid <= ? ORDER BY +originator_id, +originator_version"
        )
        yield from _sqlite_rows(recorder, statement, (after, upto))
    elif kind == "postgres":
        from psycopg.sql import SQL, Identifier

        statement = SQL(
            "SELECT originator_id, notification_id, topic, state FROM {}.{} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY originator_id, originator_version"
        ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))  # type: ignore[attr-defined]
        for originator_id, position, topic, state in _postgres_rows(recorder, statement, (after, upto)):
            yield originator_id.hex, position, topic, state
    else:
        raise TypeError(f"cannot scan the events of a {type(recorder).__name__}")


def aggregates_between(recorder: ApplicationRecorder, after: int, upto: int) -> set[str]:
    """The keys (32 hex digits) of the aggregates with an event at a position in (`after`, `upto`]."""
    kind = _kind(recorder)
    if kind == "sqlite":
        statement = f"SELECT DISTINCT originator_id FROM {recorder.events_table_name} WHERE rowid > ? AND rowid <= ?"  # type: ignore[attr-defined]
        return {key for (key,) in _sqlite_rows(recorder, statement, (after, upto))}
    if kind == "postgres":
        from psycopg.sql import SQL, Identifier

        query = SQL("SELECT DISTINCT originator_id FROM {}.{} WHERE notification_id > %s AND notification_id <= %s").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))  # type: ignore[attr-defined]
        return {originator_id.hex for (originator_id,) in _postgres_select(recorder, query, (after, upto))}
    keys: set[str] = set()
    while after < upto:
        page = list(recorder.select_notifications(start=after + 1, limit=FETCH, stop=upto))
        if not page:
            break
        keys.update(n.originator_id.hex if isinstance(n.originator_id, UUID) else str(n.originator_id) for n in page)
        after = page[-1].id
    return keys


IDS_PER_QUERY = 500


def events_of(recorder: ApplicationRecorder, ids: Collection[UUID], cursor: Any = None) -> dict[UUID, list[StoredEvent]] | None:
    """The stored events of every aggregate in `ids`, oldest first, read in a few queries (aggregates with no event are
    left out); None if the recorder cannot be read this way. With `cursor` (an sqlite3 or psycopg cursor), read inside
    its open transaction, which sees its own uncommitted writes."""
    kind = _kind(recorder)
    if kind is None:
        return None
    found: dict[UUID, list[StoredEvent]] = {}
    wanted = list(ids)
    table = recorder.events_table_name  # type: ignore[attr-defined]
    for start in range(0, len(wanted), IDS_PER_QUERY):
        chunk = wanted[start : start + IDS_PER_QUERY]
        if kind == "sqlite":
            marks = ",".join("?" * len(chunk))
            statement = (f"SELECT originator_id, originator_version, topic, state FROM {table} "
                         f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version")
            params: tuple[Any, ...] = tuple(i.hex for i in chunk)
            rows: Any = _sqlite_rows(recorder, statement, params) if cursor is None else _sqlite_in(cursor, statement, params)
        else:
            from psycopg.sql import SQL, Identifier

            query = SQL("SELECT originator_id, originator_version, topic, state FROM {}.{} "
                        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
                        ).format(Identifier(recorder.datastore.schema), Identifier(table))  # type: ignore[attr-defined]
            rows = _postgres_select(recorder, query, (chunk,)) if cursor is None else _postgres_in(cursor, query, (chunk,))
        for originator_id, version, topic, state in rows:
            aggregate_id = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
            found.setdefault(aggregate_id, []).append(StoredEvent(aggregate_id, version, topic, bytes(state)))
    return found


def first_events(recorder: ApplicationRecorder, ids: Collection[UUID]) -> dict[UUID, StoredEvent] | None:
    """The first stored event (version 1) of each aggregate in `ids` that has one, read in a few queries; None if the
    recorder cannot be read this way."""
    kind = _kind(recorder)
    if kind is None:
        return None
    found: dict[UUID, StoredEvent] = {}
    wanted = list(ids)
    table = recorder.events_table_name  # type: ignore[attr-defined]
    for start in range(0, len(wanted), IDS_PER_QUERY):
        chunk = wanted[start : start + IDS_PER_QUERY]
        if kind == "sqlite":
            statement = (f"SELECT originator_id, originator_version, topic, state FROM {table} "
                         f"WHERE originator_id IN ({','.join('?' * len(chunk))}) AND originator_version = 1")
            rows: Any = _sqlite_rows(recorder, statement, tuple(i.hex for i in chunk))
        else:
            from psycopg.sql import SQL, Identifier

            query = SQL("SELECT originator_id, originator_version, topic, state FROM {}.{} WHERE originator_id = ANY(%s) AND originator_version = 1"
                        ).format(Identifier(recorder.datastore.schema), Identifier(table))  # type: ignore[attr-defined]
            rows = _postgres_select(recorder, query, (chunk,))
        for originator_id, version, topic, state in rows:
            aggregate_id = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
            found[aggregate_id] = StoredEvent(aggregate_id, version, topic, bytes(state))
    return found


def _postgres_select(recorder: Any, statement: Any, params: tuple[Any, ...]) -> list[Any]:
    from psycopg.rows import tuple_row

    with recorder.datastore.get_connection() as connection, connection.cursor(row_factory=tuple_row) as cursor:
        return cursor.execute(statement, params).fetchall()


def _sqlite_in(cursor: Any, statement: str, params: tuple[Any, ...]) -> list[Any]:
    own = cursor.connection.cursor()  # plain tuples, whatever the row factory of the given cursor
    own.row_factory = None
    try:
        return own.execute(statement, params).fetchall()
    finally:
        own.close()


def _postgres_in(cursor: Any, statement: Any, params: tuple[Any, ...]) -> list[Any]:
    from psycopg.rows import tuple_row

    with cursor.connection.cursor(row_factory=tuple_row) as own:
        return own.execute(statement, params).fetchall()


def _kind(recorder: ApplicationRecorder) -> str | None:
    module = type(recorder).__mro__
    names = {cls.__module__ for cls in module}
    if "eventsourcing.sqlite" in names:
        return "sqlite"
    if "eventsourcing.postgres" in names:
        return "postgres"
    return None


def _sqlite_rows(recorder: Any, statement: str, params: tuple[Any, ...]) -> Iterator[Any]:
    with recorder.datastore.transaction(commit=False) as wrapped:
        cursor = wrapped.sqlite_cursor  # the sqlite3 cursor itself: eventsourcing's wrapper has no fetchmany
        cursor.row_factory = None
        cursor.execute(statement, params)
        while rows := cursor.fetchmany(FETCH):
            yield from rows


def _postgres_rows(recorder: Any, statement: Any, params: tuple[Any, ...]) -> Iterator[Any]:
    from psycopg.rows import tuple_row

    with recorder.datastore.get_connection() as connection, connection.transaction(force_rollback=True):
        with connection.cursor(name="ledger_scan", row_factory=tuple_row) as cursor:
            cursor.itersize = FETCH
            cursor.execute(statement, params)
            while rows := cursor.fetchmany(FETCH):
                yield from rows
