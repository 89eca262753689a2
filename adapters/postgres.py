"""PostgreSQL storage: eventsourcing's recorder plus personal data, and events the database itself refuses to change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier, Literal

from domain.catalogue import VERSION_KEY


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """Writes events and the personal data of a batch in one transaction; UPDATE, DELETE and TRUNCATE of events raise."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema, table = Identifier(datastore.schema), Identifier(events_table_name)
        guard = Identifier(f"{events_table_name}_immutable")
        self.personal_table = SQL("{}.{}").format(schema, Identifier("personal_data"))
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
        ]

    def _owned_by_another_role(self) -> bool:
        """Whether the events table exists and belongs to a role the connected one is not a member of."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            row = curs.execute(
                "SELECT NOT pg_has_role(current_user, relowner, 'MEMBER') FROM pg_class WHERE oid = to_regclass(%s)",
                (f'"{self.datastore.schema}"."{self.events_table_name}"',),
            ).fetchone()
        return bool(row and row[0])

    def create_table(self) -> None:
        if self._owned_by_another_role():
            # `ledger db init --owner-url` made these tables: this role may only append and read, so it runs no DDL.
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

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        personal_data: Sequence[tuple[str, str, str]] = (),
        **kwargs: Any,
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        if personal_data:
            curs.executemany(
                SQL("INSERT INTO {} (person, name, email) VALUES (%s, %s, %s) ON CONFLICT (person) DO NOTHING").format(self.personal_table),
                list(personal_data),
            )

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
