"""Reporting jobs: bring the projection up to date (or fold as of a past moment) and compute figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from eventsourcing.persistence import ApplicationRecorder, Mapper

from adapters import recorded_time, scan
from adapters.mapper import CATALOGUE
from domain.errors import InvalidValue, LedgerError, RecordedTimeDisorder
from projections import runner
from projections.platform import FOLD_VERSION
from projections.figures import (
    Figures, RowSource, Settings, StoredRows, assumptions, chart_data, compute, cross_border_partners, published_figures, regions,
)
from projections.store import ProjectionStore, encode


@dataclass
class Sources:
    """What a report reads: the ledger's log and the projection store."""

    recorder: ApplicationRecorder
    mapper: Mapper[Any]
    store: ProjectionStore


def events_recorded_by(sources: Sources, as_of: datetime) -> Iterator[tuple[str, Any, int]]:
    """`(key, event, position)` for every event recorded at or before `as_of`.

    Positions follow recording order, so the scan stops at the first event recorded later.
    """
    for page in runner.notifications(sources.recorder, 0):
        for n in page:
            event = sources.mapper.to_domain_event(n)
            if event.timestamp > as_of:
                return
            yield n.originator_id.hex, event, n.id


RECORDED_ORDER = "recorded-order"
"""The projection-rows name under which the check of recorded times keeps how far it read and the first disorder it met."""


def check_recorded_order(sources: Sources) -> None:
    """Refuse (RecordedTimeDisorder) if any stored recorded time is earlier than one stored before it.

    Writes refuse such times, but a ledger written before that rule, or edited, can hold them. The log is read once per store
    and the result kept in the projection store: later calls read only the events stored since.
    """
    kept = sources.store.rows(RECORDED_ORDER, ["checked"]).get("checked") or {"upto": 0, "latest": None, "at": 0, "disorder": None}
    if kept["disorder"] is None:
        latest = datetime.fromisoformat(kept["latest"]) if kept["latest"] else None
        upto, at = kept["upto"], kept["at"]
        for page in runner.notifications(sources.recorder, upto, page_size=5000):
            for n in page:
                moment = recorded_time.recorded_at(n.state)
                if moment is not None and latest is not None and moment < latest:
                    kept["disorder"] = [n.id, moment.isoformat(), at, latest.isoformat()]
                    break
                if moment is not None:
                    latest, at = moment, n.id
                upto = n.id
            if kept["disorder"] is not None:
                break
        kept.update(upto=upto, latest=latest.isoformat() if latest else None, at=at)
        sources.store.put_rows(RECORDED_ORDER, [("checked", encode(kept))])
    if kept["disorder"] is not None:
        raise _disorder(*kept["disorder"])


def _disorder(position: int, moment: str, before: int, latest: str) -> RecordedTimeDisorder:
    return RecordedTimeDisorder(
        f"recorded time: the event at position {position} was recorded {moment}, before position {before}'s {latest}; "
        "a report as of a moment needs recorded times in order (`ledger verify` names every such position)"
    )


def last_recorded_by(sources: Sources, as_of: datetime) -> Included:
    """The last event recorded at or before `as_of`, found by a binary search on positions (they follow recording order).

    The order is checked, not assumed: once over the whole log (kept, see `check_recorded_order`), and again around the
    boundary found, where an edit made after that check would change the answer (both cheap: no scan per report).
    """
    check_recorded_order(sources)
    low, high = 0, sources.recorder.max_notification_id() or 0
    found = Included()
    while low < high:
        middle = (low + high + 1) // 2
        page = list(sources.recorder.select_notifications(start=middle, limit=1))
        if not page or page[0].id > high:  # no event between middle and high (positions may have gaps)
            high = middle - 1
            continue
        recorded = _recorded_at(page[0].state)
        if recorded <= as_of:
            low, found = page[0].id, Included(page[0].id, recorded)
        else:
            high = middle - 1
    around = list(sources.recorder.select_notifications(start=max(found.position, 1), limit=2))
    times = [(n.id, _recorded_at(n.state)) for n in around]
    for (before, earlier), (position, later) in zip(times, times[1:]):
        if later < earlier:
            raise _disorder(position, later.isoformat(), before, earlier.isoformat())
    return found


def _recorded_at(state: bytes) -> datetime:
    return datetime.fromisoformat(orjson.loads(state)["timestamp"])


class StaleReadModel(LedgerError):
    """A read model built by Kafka consumers with another fold version: its rows cannot be mixed with this code's."""


def platform_rows(
    sources: Sources, as_of: datetime | None = None, progress: Callable[[int], None] = lambda n: None,
    notice: Callable[[str], None] = lambda line: None,
) -> RowSource:
    """The projection's rows, caught up now (streamed from the store at each pass), or folded from what was recorded by `as_of`."""
    if as_of is not None:
        return platform_rows_included(sources, as_of)[0]
    if not sources.store.fed_by_consumers(runner.PROJECTION):
        runner.catch_up(sources.recorder, sources.mapper, sources.store, progress=progress, notice=notice)
    else:
        built_by = sources.store.tracked_version(runner.PROJECTION)
        if built_by is not None and built_by != FOLD_VERSION:
            raise StaleReadModel(
                f"this read model was built by Kafka consumers with fold version {built_by}, and this code folds version {FOLD_VERSION}; "
                "rebuild it: `ledger consume platform --db <new schema URL>`, then report from that schema"
            )
    return StoredRows(sources.store, runner.PROJECTION)


@dataclass(frozen=True)
class Included:
    """The last event a report includes: its position in the log and the time it was recorded (none for an empty ledger)."""

    position: int = 0
    recorded_at: datetime | None = None


def platform_rows_included(
    sources: Sources, as_of: datetime | None = None, progress: Callable[[int], None] = lambda n: None,
    notice: Callable[[str], None] = lambda line: None,
) -> tuple[RowSource, Included]:
    """`platform_rows`, with the last event the rows include."""
    if as_of is None:
        rows = platform_rows(sources, None, progress, notice)
        return rows, _included(sources, sources.store.position(runner.PROJECTION, FOLD_VERSION))
    return _rows_as_of(sources, as_of)


def _rows_as_of(sources: Sources, as_of: datetime) -> tuple[RowSource, Included]:
    """The rows as they stood when `as_of` was reached (from a snapshot and the events after it), and the last event included."""
    if scan.can_scan(sources.recorder):
        last = last_recorded_by(sources, as_of)
        catalogue = getattr(sources.mapper, "catalogue", CATALOGUE)
        # Each pass streams the latest snapshot at or before the position, with the rows the events after it changed.
        return runner.RowsAsOf(sources.recorder, sources.store, last.position, catalogue), last
    last = Included()

    def tracked() -> Iterator[tuple[str, Any, int]]:
        nonlocal last
        for key, event, position in events_recorded_by(sources, as_of):
            if position > last.position:
                last = Included(position, event.timestamp)
            yield key, event, position

    folded = runner.fold_in_memory(tracked())
    return lambda: folded.values(), last


def rows_at_position(sources: Sources, position: int) -> tuple[RowSource, Included]:
    """The rows as they stood once the event at `position` was folded (the path of `--as-of`, from a snapshot where the events
    can be scanned), and that event; what `report verify` re-derives a signed report's figures from."""
    if scan.can_scan(sources.recorder):
        catalogue = getattr(sources.mapper, "catalogue", CATALOGUE)
        return runner.RowsAsOf(sources.recorder, sources.store, position, catalogue), _included(sources, position)

    def upto() -> Iterator[tuple[str, Any, int]]:
        for page in runner.notifications(sources.recorder, 0):
            for n in page:
                if n.id > position:
                    return
                yield n.originator_id.hex, sources.mapper.to_domain_event(n), n.id

    folded = runner.fold_in_memory(upto())
    return lambda: folded.values(), _included(sources, position)


def _included(sources: Sources, position: int) -> Included:
    found = list(sources.recorder.select_notifications(start=position, limit=1)) if position else []
    if not found or found[0].id != position:
        return Included(position)
    return Included(position, sources.mapper.to_domain_event(found[0]).timestamp)


def impact(
    rows: RowSource, settings: Settings, as_of: datetime | None, charts: bool = False, included: Included | None = None,
) -> tuple[dict[str, Any], Figures]:
    """The impact report as a JSON-ready dict, and the figures with their evidence."""
    figures = compute(rows, settings)
    published = {f["key"]: f for f in published_figures()["figures"]}
    report: dict[str, Any] = {
        "period": {"from": settings.start.isoformat(), "to": settings.end.isoformat()},
        "as_of": as_of.isoformat() if as_of else None,
        "figures": {key: figures.values[key] for key in published},
        "assumptions": assumptions(settings),
    }
    if included is not None:
        # What the report is as of, in the ledger's own terms: the last event it includes and when that was recorded.
        report["as_of_position"] = included.position
        report["as_of_recorded_at"] = included.recorded_at.isoformat() if included.recorded_at else None
    if charts:
        report["charts"] = chart_data(rows, settings)
    if settings.country:
        report["country"] = settings.country
        report["cross_border_partners"] = cross_border_partners(rows, settings)
        report["regions"] = regions(rows, settings)
    return report, figures


def rederive(sources: Sources, claimed: dict[str, Any]) -> dict[str, Any]:
    """The report `claimed` says it is (its period, window, country and --as-of), derived again at its `as_of_position`."""
    try:
        period, window = claimed["period"], claimed["assumptions"]["regularly_updated_window_days"]
        settings = Settings(date.fromisoformat(period["from"]), date.fromisoformat(period["to"]), window, country=claimed.get("country"))
        as_of = datetime.fromisoformat(claimed["as_of"]) if claimed.get("as_of") is not None else None
        position = claimed["as_of_position"]
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidValue("report", str(error), "the report does not say what it counts (period, window days, as-of)") from None
    if type(window) is not int or window < 1 or type(position) is not int or position < 0:
        raise InvalidValue("report", f"{window}, {position}", "window days and as_of_position must be whole numbers")
    rows, included = rows_at_position(sources, position)
    return impact(rows, settings, as_of, included=included)[0]


def default_period() -> tuple[date, date]:
    """The period of the published figures."""
    period = published_figures()["period"]
    return date.fromisoformat(period["from"]), date.fromisoformat(period["to"])
