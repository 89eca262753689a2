"""Rebuilds the projection on every core: the aggregates split by id range, each range folded by `runner.rebuild_in_bulk`
in a process of its own, and every row written by this one process, with the tracking position last."""

from __future__ import annotations

import copy
import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from adapters import scan
from adapters.scan import KeyRange
from domain.errors import LedgerError
from projections import runner
from projections.platform import Row
from projections.store import ProjectionStore

PARALLEL_FROM = 50_000
"""Events below which a rebuild folds in one process: starting the workers costs more than they save."""


def rebuild(recorder: ApplicationRecorder, store: ProjectionStore, *, workers: int | None = None, **options: Any) -> int:
    """`runner.rebuild_in_bulk` on `workers` processes (by default one per core, from `PARALLEL_FROM` events on), else in
    this one: the same rows and snapshots either way (tests/integration/test_parallel_rebuild.py)."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if (recorder.max_notification_id() or 0) < PARALLEL_FROM:
            workers = 1
    if workers < 2 or _reader_settings(recorder) is None or scan.has_unkeyed_events(recorder):
        return runner.rebuild_in_bulk(recorder, store, **options)
    return rebuild_in_parallel(recorder, store, workers=workers, **options)


def key_ranges(workers: int) -> list[KeyRange]:
    """`workers` ranges of aggregate ids, of equal width, that together hold every id (random ids spread evenly)."""
    bounds = [f"{i * (1 << 128) // workers:032x}" for i in range(1, workers)]
    return list(zip([None, *bounds], [*bounds, None]))


def rebuild_in_parallel(
    recorder: ApplicationRecorder,
    store: ProjectionStore,
    *,
    workers: int,
    stop: int | None = None,
    progress: Callable[[int], None] = lambda n: None,
    projection: str = runner.PROJECTION,
    **options: Any,
) -> int:
    """`runner.rebuild_in_bulk`, each of `workers` ranges of aggregate ids folded in a forked process that reads the
    events on connections of its own and sends its rows and snapshot rows here, chunk by chunk, to be written.

    The tracking position and the snapshot marks are written once every range is folded, as the one-process rebuild
    writes them last. A range that meets an event the fold refuses stops every worker, and the rebuild runs again in
    this process, which refuses the first such event in id order, as the one-process rebuild does.
    """
    store.reset(projection)
    upto = recorder.max_notification_id() or 0
    if stop is not None:
        upto = min(upto, stop)
    if upto == 0:
        return runner.rebuild_in_bulk(recorder, store, stop=stop, progress=progress, projection=projection, **options)
    context = multiprocessing.get_context("fork")  # the workers share this process's catalogue and fold as they stand
    running: dict[Connection, Any] = {}
    for keys in key_ranges(workers):
        receiving, sending = context.Pipe(duplex=False)
        worker = context.Process(target=_fold_range, args=(recorder, keys, upto, projection, options, sending), daemon=True)
        worker.start()
        sending.close()
        running[receiving] = worker
    applied = 0
    last_calls: list[list[tuple[str, Any]]] = []
    refused = False
    try:
        while running and not refused:
            for receiving in wait(list(running)):
                what, value = _received(receiving)
                if what == "put_rows":
                    store.put_rows(projection, value)
                elif what == "put_snapshot_rows":
                    store.put_snapshot_rows(projection, value)
                elif what == "progress":
                    progress(value)
                elif what == "done":
                    applied += value[0]
                    last_calls.append(value[1])
                    running.pop(receiving).join()
                    receiving.close()
                elif what == "refused":
                    refused = True
                    break
                else:
                    raise RuntimeError(f"a rebuild worker failed:\n{value}")
    finally:
        for receiving, worker in running.items():
            worker.terminate()
            worker.join()
            receiving.close()
    if refused:
        return runner.rebuild_in_bulk(recorder, store, stop=upto, projection=projection, **options)
    if any(calls != last_calls[0] for calls in last_calls):
        raise RuntimeError("the rebuild workers ended with different tracking writes")
    for name, arguments in last_calls[0]:
        if name == "mark_snapshots":
            store.mark_snapshots(projection, *arguments)
        else:
            store.write(projection, *arguments)
    return applied


def _received(receiving: Connection) -> tuple[str, Any]:
    try:
        return receiving.recv()  # type: ignore[no-any-return]
    except EOFError:
        return "failed", "it ended before it had folded its range"


def _fold_range(recorder: ApplicationRecorder, keys: KeyRange, upto: int, projection: str, options: dict[str, Any], sending: Connection) -> None:
    """In a worker: fold the aggregates in `keys` with `runner.rebuild_in_bulk` and send what it writes through `sending`."""
    reader: Any = None
    forward = _Forward(sending)
    try:
        reader = _reader(recorder)
        applied = runner.rebuild_in_bulk(reader, forward, stop=upto, keys=keys, projection=projection,
                                         progress=lambda n: sending.send(("progress", n)), **options)
        sending.send(("done", (applied, forward.last_calls)))
    except LedgerError:
        sending.send(("refused", None))
    except Exception:  # anything else is a fault of this code: its trace goes to the rebuilding process
        sending.send(("failed", traceback.format_exc()))
    finally:
        if reader is not None:
            reader.datastore.close()
        sending.close()


class _Forward:
    """The projection store of a worker: rows go to the rebuilding process; the tracking writes wait for every range."""

    def __init__(self, sending: Connection) -> None:
        self.sending = sending
        self.last_calls: list[tuple[str, Any]] = []

    def reset(self, projection: str) -> None:
        pass  # the rebuilding process reset the projection before any worker started

    def put_rows(self, projection: str, rows: list[tuple[str, str]]) -> None:
        self.sending.send(("put_rows", rows))

    def put_snapshot_rows(self, projection: str, rows: list[tuple[int, str, str]]) -> None:
        self.sending.send(("put_snapshot_rows", rows))

    def mark_snapshots(self, projection: str, version: int, boundaries: Iterable[int]) -> None:
        self.last_calls.append(("mark_snapshots", (version, list(boundaries))))

    def write(self, projection: str, version: int, changed: dict[str, Row], position: int, **options: Any) -> bool:
        if changed or options:
            raise RuntimeError("a bulk rebuild writes its rows with put_rows, and only its tracking position with write")
        self.last_calls.append(("write", (version, changed, position)))
        return True


def _reader_settings(recorder: ApplicationRecorder) -> dict[str, Any] | None:
    """How another process opens the database of `recorder`; None if it cannot (a database in memory)."""
    datastore = getattr(recorder, "datastore", None)
    kind = type(datastore).__qualname__, type(datastore).__module__
    if kind == ("SQLiteDatastore", "eventsourcing.sqlite"):
        if datastore.pool.is_sqlite_memory_mode:  # type: ignore[union-attr]
            return None
        return {"db_name": datastore.pool.db_name, "lock_timeout": datastore.pool.lock_timeout}  # type: ignore[union-attr]
    if kind == ("PostgresDatastore", "eventsourcing.postgres"):
        kwargs = datastore.pool.kwargs or {}
        return {**{name: kwargs.get(name) for name in ("dbname", "host", "port", "user", "password")}, "schema": datastore.schema,
                "get_password_func": datastore.pool.get_password_func}
    return None


def _reader(recorder: ApplicationRecorder) -> ApplicationRecorder:
    """`recorder` on a datastore of its own: a forked process never uses the connections of the one it was forked from."""
    settings = _reader_settings(recorder)
    if settings is None:
        raise RuntimeError(f"the events of a {type(recorder).__name__} cannot be read from another process")
    reader = copy.copy(recorder)
    if "db_name" in settings:
        from eventsourcing.sqlite import SQLiteDatastore

        reader.datastore = SQLiteDatastore(settings.pop("db_name"), **settings)  # type: ignore[attr-defined]
    else:
        from eventsourcing.postgres import PostgresDatastore

        place = [settings.pop(name) for name in ("dbname", "host", "port", "user", "password")]
        reader.datastore = PostgresDatastore(*place, **settings)  # type: ignore[attr-defined]
    return reader
