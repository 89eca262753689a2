"""eventsourcing's own recorder contract tests, run on the PostgreSQL configuration the ledger uses."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, InfrastructureFactory, ProcessRecorder, TrackingRecorder
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

import bootstrap
from adapters.postgres import LedgerPostgresRecorder
from tests.conftest import drop_schema, fresh_postgres_url


class _LedgerPostgres:
    """Builds recorders exactly as the ledger does for a postgresql:// URL, each on a new schema."""

    def _factory(self) -> InfrastructureFactory[Any]:
        url = fresh_postgres_url()
        self.addCleanup(drop_schema, url)  # type: ignore[attr-defined]
        env = bootstrap.persistence_env(url)
        factory = InfrastructureFactory.construct(Environment("Ledger", env))
        self.addCleanup(factory.close)  # type: ignore[attr-defined]
        recorder = factory.application_recorder()  # creates the schema the other recorders share
        assert isinstance(recorder, LedgerPostgresRecorder)
        return factory


class TestAggregateRecorder(_LedgerPostgres, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self._factory().aggregate_recorder(purpose="snapshots")


class TestApplicationRecorder(_LedgerPostgres, ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        return self._factory().application_recorder()


class TestNonInterleavingNotificationIDs(_LedgerPostgres, NonInterleavingNotificationIDsBaseCase):
    insert_num = 500

    def create_recorder(self) -> ApplicationRecorder:
        return self._factory().application_recorder()


class TestTrackingRecorder(_LedgerPostgres, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self._factory().tracking_recorder()


class TestProcessRecorder(_LedgerPostgres, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self._factory().process_recorder()
