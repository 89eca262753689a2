"""What each page of the auditor's browser view shows, as JSON-ready dicts built from the report and projection functions."""

from __future__ import annotations

import calendar
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

import pycountry
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

import bootstrap
from adapters import scan
from adapters.mapper import CATALOGUE
from presentation.text import event_details, event_type, parse_moment, summary
from domain.base import ref_id
from domain.errors import EventDoesNotFit, InvalidValue, LedgerError
from domain.nuts import NUTS_PREFIX
from domain.values import CountryCode
from projections import reports, runner
from projections import figures as counting
from projections.figures import Evidence, EvidencePage, Figures, RowSource, Settings as Period, evidence_page, meets, published_figures
from projections.platform import FOLD_VERSION
from projections.reports import Included, Sources
from service_layer.ledger import Ledger
from service_layer import log_check
from service_layer.log_check import require_readable
from transparency import log, tiles
from transparency.errors import TransparencyError
from transparency.note import Checkpoint, parse_checkpoint
from transparency.proofs import InclusionProof, b64
from transparency.signing import recorded_by
from transparency.tlogproof import TlogProof, from_inclusion
from transparency.store import Published, TreeStore
from web import audit, state
from web.audit import LogFilter

PAGE_SIZE = 50
EVIDENCE_RUN = 1_000
"""A figure's events are computed this many at a time and kept, so its next pages need no new pass over the rows."""
POOL_WAIT = 1
"""Seconds a page waits for a connection (one thread reads, so one is always free): an outage that begins during a page
is answered within about 10 of them (eventsourcing's attempts), not 100."""
KEPT = 8
"""Reports and runs of events kept per app (the oldest go first); each is small, whatever the ledger's size."""
MONTHS_CHARTED = 120
"""The most months a figure's chart by month covers: each adds the counting of every row the figure reads."""
SPREAD = 20
"""A page's events are read as one run of the log when it holds at most this many stored events for each of them."""
LOG_RUN = 10_000
"""Stored events read at a time in such a run."""
logger = logging.getLogger(__name__)
PUBLISHED_OFFERED = 20
"""Published checkpoints the event page offers to prove against, the newest first."""
PUBLISHED_SEARCHED = 1_000
"""How far back a published checkpoint is looked up by its number."""
_COUNTRY: TypeAdapter[str] = TypeAdapter(CountryCode)
_ISO_OF_NUTS = {nuts: iso for iso, nuts in NUTS_PREFIX.items()}
"""The two countries NUTS spells apart from ISO 3166 (EL, UK), so a sheet's address may use either spelling."""
T = TypeVar("T")


class NotFound(LedgerError):
    """A page asked for something the ledger does not hold."""


class DatabaseUnavailable(LedgerError):
    """The ledger's database cannot be reached now (restarting, down); the next request tries again."""


@dataclass(frozen=True)
class Query:
    """The period, moment and country a report page is asked for, as given in the address."""

    start: str | None = None
    end: str | None = None
    as_of: str | None = None
    window_days: int = 365
    country: str | None = None

    def period(self) -> Period:
        default_start, default_end = reports.default_period()
        first = parse_moment("from", self.start).date() if self.start else default_start
        last = parse_moment("to", self.end).date() if self.end else default_end
        if last < first:
            raise InvalidValue("to", last.isoformat(), f"is before from ({first.isoformat()})")
        return Period(first, last, self.window_days, country=country_code(self.country) if self.country else None)

    def moment(self) -> datetime | None:
        return parse_moment("as-of", self.as_of) if self.as_of else None

    def params(self) -> dict[str, str]:
        """The query as address parameters, for links to the next page."""
        given = {"from": self.start, "to": self.end, "as_of": self.as_of, "country": self.country}
        if self.window_days != 365:
            given["window_days"] = str(self.window_days)
        return {k: v for k, v in given.items() if v}


def country_code(given: str) -> str:
    """The ISO 3166 code of a country given by its ISO code or as NUTS spells it (EL for Greece, UK for the United Kingdom)."""
    try:
        return _COUNTRY.validate_python(_ISO_OF_NUTS.get(given.strip().upper(), given))
    except ValidationError:
        raise InvalidValue("country", given, "not an ISO 3166 alpha-2 country code (or EL, UK as NUTS spells them)") from None


def country_name(code: str) -> str:
    """A country's name in English (Greece for GR), or its code if it has none."""
    found = pycountry.countries.get(alpha_2=code)
    return str(getattr(found, "common_name", None) or found.name) if found is not None else code


@dataclass
class Reader:
    """The ledger and projection store of one web app; used from one thread only, opened on first use."""

    db: str | None
    _ledger: Ledger | None = None
    _sources: Sources | None = None
    _rows: OrderedDict[tuple[Any, ...], tuple[RowSource, Included]] = field(default_factory=OrderedDict)
    _reports: OrderedDict[tuple[Any, ...], tuple[dict[str, Any], Figures]] = field(default_factory=OrderedDict)
    _runs: OrderedDict[tuple[Any, ...], EvidencePage] = field(default_factory=OrderedDict)
    _refs: dict[UUID, str] = field(default_factory=dict)
    _months: OrderedDict[tuple[Any, ...], list[Any]] = field(default_factory=OrderedDict)
    _countries: OrderedDict[tuple[Any, ...], dict[str, int]] = field(default_factory=OrderedDict)
    _tree: TreeStore | None = None
    _checked: int = 0
    """Every stored event up to this position is known to be readable by this code."""
    _lost: bool = True
    """The database dropped the connections (or none is open yet): the next request first checks that it answers, then opens them."""
    _probe: bootstrap.Probe = field(init=False)

    def __post_init__(self) -> None:
        self._probe = bootstrap.Probe(self.db)

    def attempt(self, job: Callable[[], T]) -> T:
        """`job`, run again once on new connections if the database dropped the old ones (a restart of PostgreSQL);
        DatabaseUnavailable if it cannot be reached."""
        try:
            return self._reconnected(job)
        except bootstrap.lost_connection() as error:
            self._drop(error)
        try:
            return self._reconnected(job)
        except bootstrap.lost_connection() as error:
            self._drop(error)
            raise DatabaseUnavailable("the ledger's database is unavailable; retrying") from None

    def _reconnected(self, job: Callable[[], T]) -> T:
        if not self._probe.answers():  # the server restarted or went away: every connection kept is gone
            self._drop(DatabaseUnavailable("the connection kept to check it broke"))
        if self._lost:
            down = self._probe.reason()  # one quick connection: an outage answers at once, not after the pool's retries
            if down:
                raise DatabaseUnavailable(f"the ledger's database is unavailable; retrying ({bootstrap.describe(down)})")
            self._lost = False
        return job()

    def _drop(self, error: Exception) -> None:
        logger.warning("the ledger's database dropped its connections; they are opened again: %s", " ".join(str(error).split()))
        self.close()
        self._lost = True

    def sources(self) -> Sources:
        if self._sources is None:
            self._ledger = bootstrap.build_ledger(self.db, pool_wait=POOL_WAIT)
            self._sources = Sources(self._ledger.recorder, self._ledger.mapper, bootstrap.build_projection_store(self.db))
        return self._sources

    def ledger(self) -> Ledger:
        self.sources()
        assert self._ledger is not None
        return self._ledger

    def tree(self) -> TreeStore:
        if self._tree is None:
            self._tree = bootstrap.build_tree_store(self.db)
        return self._tree

    def close(self) -> None:
        if self._tree is not None:
            self._tree.close()
            self._tree = None
        if self._sources is not None:
            self._sources.store.close()
        if self._ledger is not None:
            self._ledger.close()
        self._sources = self._ledger = None
        self._probe.close()
        # What was kept may read through the connections just closed, or belong to another state of the database.
        self._rows.clear()
        self._reports.clear()
        self._runs.clear()
        self._months.clear()
        self._countries.clear()
        self._checked = 0

    def require_readable(self, after: int = 0) -> None:
        """`log_check.require_readable` for the events after `after`, each checked once while the app runs."""
        recorder = self.sources().recorder
        upto = recorder.max_notification_id() or 0
        require_readable(recorder, max(after, self._checked))
        if after <= self._checked:  # nothing left unchecked below `after`: everything up to `upto` is known readable now
            self._checked = max(self._checked, upto)

    def warm_up(self) -> None:
        """What the first pages need, done once when the app starts: the log's readability check and the default figures.

        A failure is left for the page that needs it to report (to the user, in one line).
        """
        try:
            self.require_readable(0)
            self.report(Query())
        except Exception as error:  # noqa: BLE001 - reported again by the first page that needs it
            logger.warning("start-up work left to the first page: %s", error)

    def rows(self, as_of: datetime | None) -> tuple[RowSource, Included]:
        """The projection's rows now (streamed from the store) or as of a moment; the last few are kept until the log grows."""
        sources = self.sources()
        size = sources.recorder.max_notification_id() or 0
        if as_of is not None and self._all_recorded_by(as_of, size):
            now = self.rows(None)
            if now[1].position == size:  # a permalink to the log as it stands: the caught-up projection, with no fold of the log
                return now
        key = (as_of, size)
        if key not in self._rows:
            position = sources.store.position(runner.PROJECTION, FOLD_VERSION)
            if as_of is not None or not sources.store.fed_by_consumers(runner.PROJECTION):
                self.require_readable(0 if as_of is not None else position)
            self._rows[key] = reports.platform_rows_included(sources, as_of)
            while len(self._rows) > 8:
                self._rows.popitem(last=False)
        self._rows.move_to_end(key)
        return self._rows[key]

    def _all_recorded_by(self, as_of: datetime, size: int) -> bool:
        """Whether every stored event was recorded by `as_of` (recorded times never go back along the log), in a projection
        this app keeps up to date itself."""
        if not size or self.sources().store.fed_by_consumers(runner.PROJECTION):
            return False
        last = _event_at(self, size)
        return last is not None and last.timestamp <= as_of

    def report(self, query: Query) -> tuple[dict[str, Any], Figures]:
        """The impact report (or country sheet) of `query`, as `ledger report impact --format json` gives it; computed once
        while the log stays the same size, and once for every moment that includes the same events (the rows as of a
        position are the same whichever moment reaches it: a pinned link reads the figures already computed)."""
        period, moment = query.period(), query.moment()
        rows, included = self.rows(moment)
        key = (replace(query, as_of=None), included.position, self.sources().recorder.max_notification_id() or 0)
        if key not in self._reports:
            self._reports[key] = reports.impact(rows, period, moment, included=included)
            _trim(self._reports)
        self._reports.move_to_end(key)
        report, figures = self._reports[key]
        as_of = moment.isoformat() if moment else None
        return (report if report["as_of"] == as_of else {**report, "as_of": as_of}), figures

    def evidence(self, query: Query, figure: str, after: int, limit: int) -> tuple[EvidencePage, Included]:
        """`limit` of one figure's events after position `after`, from a kept run of them when one covers the page."""
        period, moment = query.period(), query.moment()
        rows, included = self.rows(moment)
        size = self.sources().recorder.max_notification_id() or 0
        for (q, f, s, start), run in reversed(self._runs.items()):
            covers = start <= after and (not run.more or (run.events and after < run.events[-1].position))
            if (q, f, s) == (query, figure, size) and covers:
                page = _page_of(run, after, limit)
                if page is not None:
                    return page, included
        run = evidence_page(rows, period, figure, after=after, limit=max(limit, EVIDENCE_RUN))
        self._runs[(query, figure, size, after)] = run
        _trim(self._runs)
        page = _page_of(run, after, limit)
        assert page is not None  # a run starting at `after` holds at least `limit` of its events, or all of them
        return page, included

    def ref(self, originator_id: UUID) -> str:
        """The platform reference of an aggregate (from its first event), or its id if it has none."""
        if originator_id not in self._refs:
            first = self.ledger().events.get(originator_id, lte=1)
            found = next(iter(first), None)
            self._refs[originator_id] = getattr(found, "ref", None) or originator_id.hex
        return self._refs[originator_id]

    def months(self, query: Query, figure: str, compute: Callable[[], list[Any]]) -> list[Any]:
        """One figure's value in each month of `query`'s period, computed once while the log stays the same size."""
        key = (query, figure, self.sources().recorder.max_notification_id() or 0)
        if key not in self._months:
            self._months[key] = compute()
            _trim(self._months)
        self._months.move_to_end(key)
        return self._months[key]

    def countries(self, query: Query, compute: Callable[[], dict[str, int]]) -> dict[str, int]:
        """The countries of `query` with their profiles on the platform, computed once while the log stays the same size."""
        key = (query, self.sources().recorder.max_notification_id() or 0)
        if key not in self._countries:
            self._countries[key] = compute()
            _trim(self._countries)
        self._countries.move_to_end(key)
        return self._countries[key]

    def is_record(self, text: str) -> bool:
        """Whether `text` is the reference of a record the ledger holds (a value in a state that can be linked to)."""
        if not text or len(text) > 200 or text.isspace():
            return False
        return self.ref(ref_id(text)) == text

    def refs(self, ids: Collection[UUID], kept: dict[UUID, str] | None = None) -> dict[UUID, str]:
        """`ref` of each aggregate in `ids`, the ones not yet known read in one query; kept in `kept` (default: this reader's)."""
        known = self._refs if kept is None else kept
        missing = [i for i in dict.fromkeys(ids) if i not in known]
        sources = self.sources()
        firsts = scan.first_events(sources.recorder, missing) if missing else {}
        for originator_id in missing:
            stored = (firsts or {}).get(originator_id)
            if firsts is None or (stored is None and kept is None):
                known[originator_id] = self.ref(originator_id)
                continue
            found = sources.mapper.to_domain_event(stored) if stored is not None else None
            known[originator_id] = getattr(found, "ref", None) or originator_id.hex
        return {i: known[i] for i in ids}


def _trim(kept: OrderedDict[Any, Any]) -> None:
    while len(kept) > KEPT:
        kept.popitem(last=False)


def _page_of(run: EvidencePage, after: int, limit: int) -> EvidencePage | None:
    """The page after `after` out of a kept run of a figure's events; None if the run cannot tell what follows the page."""
    rest = [e for e in run.events if e.position > after]
    shown = rest[:limit]
    if len(shown) < limit and run.more:
        return None
    return replace(run, events=shown, more=len(rest) > len(shown) or run.more, skipped=run.skipped + len(run.events) - len(rest))


def figures_page(reader: Reader, query: Query) -> dict[str, Any]:
    """Page 1: every figure beside its published value."""
    found, figures = reader.report(query)
    published = {f["key"]: f for f in published_figures()["figures"]}
    listed = []
    for key, value in found["figures"].items():
        ref = published[key]
        listed.append({
            "key": key, "label": ref.get("label") or key.replace("_", " "), "value": value, "is_count": key in figures.counts,
            "events": figures.totals[key],
            "published": None if query.country else {"qualifier": ref["qualifier"], "value": ref["value"]},
            "meets": None if query.country or value is None else meets(value, ref["value"], ref["qualifier"]),
            "rule": counting.counting_rule(key, found["assumptions"]),
        })
    page = {k: v for k, v in found.items() if k != "figures"}
    page["figures"] = listed
    page["pinned_as_of"] = _pinned_as_of(reader, query, found.get("as_of_position"))
    return page


def _pinned_as_of(reader: Reader, query: Query, position: int | None) -> str | None:
    """When the position a report shows was recorded: as `as_of`, the report reads the same however the log grows."""
    if query.as_of or not position:
        return query.as_of
    stored = _event_at(reader, position)
    return stored.timestamp.isoformat() if stored is not None else None


def country_page(reader: Reader, query: Query) -> dict[str, Any]:
    """Page 6: a country fact sheet, as `ledger report country CC` gives it."""
    if not query.country:
        raise InvalidValue("country", "", "not an ISO 3166 alpha-2 country code")
    page = figures_page(reader, query)
    page["country_name"] = country_name(page["country"])
    page["partner_names"] = {code: country_name(code) for code in page["cross_border_partners"]}
    return page


def countries_page(reader: Reader, query: Query) -> dict[str, Any]:
    """The list of country sheets: every country with an organisation recorded (by the as-of moment), by name, with how many
    of its profiles are on the platform at the end of the period."""
    period, moment = query.period(), query.moment()
    rows, included = reader.rows(moment)
    found = reader.countries(query, lambda: counting.countries(rows, period))
    listed = sorted(({"code": c, "name": country_name(c), "profiles": n} for c, n in found.items()), key=lambda c: c["name"])
    return {"period": {"from": period.start.isoformat(), "to": period.end.isoformat()}, "as_of": moment.isoformat() if moment else None,
            "as_of_position": included.position, "as_of_recorded_at": included.recorded_at.isoformat() if included.recorded_at else None,
            "countries": listed}


def figure_page(reader: Reader, key: str, query: Query, after: int = 0, limit: int = PAGE_SIZE) -> dict[str, Any]:
    """Page 2: the events behind one figure, `limit` at a time after position `after`."""
    require_figure(key)
    period, moment = query.period(), query.moment()
    found, included = reader.evidence(query, key, after, limit)
    events = listed_events(reader, found.events)
    first = found.skipped + 1 if events else 0
    return {
        "figure": key, "value": found.value, "is_count": found.is_count, "total": found.total,
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()}, "as_of": moment.isoformat() if moment else None,
        "as_of_position": included.position, "as_of_recorded_at": included.recorded_at.isoformat() if included.recorded_at else None,
        "country": period.country, "country_name": country_name(period.country) if period.country else None,
        "rule": counting.counting_rule(key, counting.assumptions(period)),
        "after": after, "events": events, "next_after": found.events[-1].position if found.more else None,
        "first": first, "last": first + len(events) - 1 if events else 0, "page_size": limit,
        # The moment the position shown was recorded: with it as `as_of`, the page reads the same however the log grows.
        "pinned_as_of": _pinned_as_of(reader, query, included.position),
    }


def listed_events(reader: Reader, found: list[Evidence]) -> list[dict[str, Any]]:
    """A figure's events as its page and its download list them, with when each happened and was recorded."""
    events = []
    at = _events_at(reader, [e.position for e in found])
    for e in found:
        stored = at.get(e.position)
        events.append({
            "position": e.position, "ref": e.ref, "type": e.event, "value": to_jsonable_python(e.value),
            "occurred_at": stored.occurred_at.isoformat() if stored is not None else None,
            "recorded_at": stored.timestamp.isoformat() if stored is not None else None,
        })
    return events


def require_figure(key: str) -> None:
    """NotFound unless `key` is one of the published figures."""
    keys = [f["key"] for f in published_figures()["figures"]]
    if key not in keys:
        raise NotFound(f"figure: {key!r} is not a figure; one of: {', '.join(keys)}")


def figure_months(reader: Reader, key: str, query: Query) -> dict[str, Any]:
    """One figure month by month over the period: each month's value is the figure with that month (within the period) as
    its period, by the same counting rule. One pass over the rows the figure reads for every month, kept while the log stays
    the same size."""
    require_figure(key)
    period, moment = query.period(), query.moment()
    rows, included = reader.rows(moment)
    spans = [(month, max(first, period.start), min(last, period.end)) for month, first, last in _month_spans(period.start, period.end)]
    values = reader.months(query, key, lambda: counting.values_by_period(rows, [replace(period, start=first, end=last) for _, first, last in spans], key))
    return {
        "figure": key, "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "as_of": moment.isoformat() if moment else None, "as_of_position": included.position,
        "as_of_recorded_at": included.recorded_at.isoformat() if included.recorded_at else None,
        "country": period.country, "country_name": country_name(period.country) if period.country else None,
        "rule": counting.counting_rule(key, counting.assumptions(period)),
        "months": [{"month": month, "from": first.isoformat(), "to": last.isoformat(), "value": value}
                   for (month, first, last), value in zip(spans, values)],
    }


def _month_spans(start: date, end: date) -> list[tuple[str, date, date]]:
    """Every month from `start` to `end`: its name (YYYY-MM), first and last day."""
    if (end.year - start.year) * 12 + end.month - start.month >= MONTHS_CHARTED:
        raise InvalidValue("to", end.isoformat(), f"a chart by month covers at most {MONTHS_CHARTED} months from {start.isoformat()}")
    listed = []
    for month in counting.months_between(start, end):
        first = date.fromisoformat(month + "-01")
        listed.append((month, first, first.replace(day=calendar.monthrange(first.year, first.month)[1])))
    return listed


def figure_page_number(reader: Reader, key: str, query: Query, number: int, limit: int = PAGE_SIZE) -> dict[str, Any]:
    """Page `number` (from 1) of the events behind one figure: the page after the position of its `(number - 1) * limit`-th event."""
    after = 0
    if number > 1:
        # An unknown figure or a bad period is refused as on the first page, before any pass over the rows.
        require_figure(key)
        query.period(), query.moment()
        # The pages before it and the page itself in one pass: the page is then read from the run kept.
        found, _ = reader.evidence(query, key, 0, number * limit)
        if found.total <= (number - 1) * limit:
            raise NotFound(f"page: {number} is past the last page of {key} ({-(-found.total // limit) or 1})")
        after = found.events[(number - 1) * limit - 1].position
    return figure_page(reader, key, query, after, limit)


def _event_at(reader: Reader, position: int) -> Any:
    sources = reader.sources()
    found = list(sources.recorder.select_notifications(start=position, limit=1))
    if not found or found[0].id != position:
        return None
    return sources.mapper.to_domain_event(found[0])


def _events_at(reader: Reader, positions: list[int]) -> dict[int, Any]:
    """The stored events at `positions`, decoded: read as one run of the log when they lie close together, else one by one."""
    if not positions:
        return {}
    first, last = min(positions), max(positions)
    if last - first >= SPREAD * len(positions):
        return {p: _event_at(reader, p) for p in positions}
    sources, wanted = reader.sources(), set(positions)
    found: dict[int, Any] = {}
    start = first
    while start <= last and (run := list(sources.recorder.select_notifications(start=start, limit=LOG_RUN, stop=last))):
        found.update((n.id, sources.mapper.to_domain_event(n)) for n in run if n.id in wanted)
        start = run[-1].id + 1
    return found


def record_page(reader: Reader, ref: str, as_of: str | None = None) -> dict[str, Any]:
    """Page 3: one record's whole history, each event marked as recorded by `as_of` or not with what it changed, and its state then."""
    ledger = reader.ledger()
    until = parse_moment("as-of", as_of) if as_of else None
    events = ledger.aggregate_events(ref)
    originator_id = events[0].originator_id
    positions = _positions(reader, originator_id)
    own = getattr(events[0], "ref", ref)

    def other_record(text: str) -> bool:  # the record's own reference needs no link to itself
        return text != own and reader.is_record(text)

    history = []
    aggregate: Any = None
    before: dict[str, Any] | None = None
    states: list[dict[str, Any]] = []
    for number, (e, position) in enumerate(zip(events, positions), start=1):
        if e.originator_version != number:  # the aggregate could not be rebuilt past it
            raise EventDoesNotFit(position, event_type(e), f"it is stored as version {e.originator_version} of {ref!r}, where version {number} belongs")
        # The same fold as the repository's: each event applied to the state before it, so each update shows what it changed.
        aggregate = e.mutate(aggregate)
        after = state.state_of(aggregate)
        history.append({
            "position": position, "version": e.originator_version, "type": event_type(e),
            "occurred_at": e.occurred_at.isoformat(), "recorded_at": e.timestamp.isoformat(), "actor": e.actor,
            "details": event_details(e), "summary": summary(e), "recorded_by_as_of": until is None or e.timestamp <= until,
            "changes": state.changes(before, after, other_record),
        })
        states.append(after)
        before = after
    known = [i for i, h in enumerate(history) if h["recorded_by_as_of"]]
    then = states[known[-1]] if known else None
    return {
        "ref": own, "id": originator_id.hex, "kind": type(events[0]).__qualname__.split(".")[0],
        "as_of": until.isoformat() if until else None, "version": history[known[-1]]["version"] if known else 0, "state": then,
        "fields": state.fields(then, other_record) if then is not None else None, "events": history,
    }


def _positions(reader: Reader, originator_id: UUID) -> list[int]:
    recorder = reader.sources().recorder
    query = getattr(recorder, "positions", None)
    if query is not None:
        return list(query(originator_id))
    return [n.id for page in runner.notifications(recorder, 0) for n in page if n.originator_id == originator_id]


def event_page(reader: Reader, position: int, published: int | None = None, pasted: str | None = None) -> dict[str, Any]:
    """Page 4: one stored event, its payload as stored and its position, and its inclusion proof in a checkpoint: the latest
    published one by default, the published one numbered `published`, or the one the auditor `pasted`."""
    sources = reader.sources()
    found = list(sources.recorder.select_notifications(start=position, limit=1)) if position > 0 else []
    if not found or found[0].id != position:
        raise NotFound(f"position: {position} holds no event")
    stored = found[0]
    text = stored.state.decode("utf-8", errors="replace")
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = None
    common = {
        "position": position, "topic": stored.topic, "current_topic": CATALOGUE.current_topic(stored.topic), "version": stored.originator_version,
        "stored_state": text, "payload": payload, "originator_id": stored.originator_id.hex if isinstance(stored.originator_id, UUID) else str(stored.originator_id),
    }
    unreadable = log_check.problem(stored.topic, stored.state)
    if unreadable is not None:
        # Shown as stored, with the reason, rather than refused: an auditor still sees what is there.
        decoded: dict[str, Any] = {
            "ref": None, "type": None, "occurred_at": None, "recorded_at": None, "actor": None, "recorded_by": None, "details": None,
        }
    else:
        event = sources.mapper.to_domain_event(stored)
        decoded = {
            "ref": reader.ref(event.originator_id), "type": event_type(event), "occurred_at": event.occurred_at.isoformat(),
            "recorded_at": event.timestamp.isoformat(), "actor": event.actor, "recorded_by": recorded_by(stored.state) or None,
            "details": event_details(event),
        }
    return {**common, **decoded, "unreadable": unreadable, **_inclusion(reader, position, published, pasted)}


def seen_as_of(event: dict[str, Any], moment: datetime | None) -> dict[str, Any]:
    """The moment an event page is read at (kept from the page it was reached from), and whether the event was recorded after it."""
    recorded = datetime.fromisoformat(event["recorded_at"]) if event.get("recorded_at") else None
    return {"as_of": moment.isoformat() if moment else None, "after_moment": bool(moment and recorded and recorded > moment)}


@dataclass(frozen=True)
class ProvenIn:
    """The checkpoint an event's proof leads to: as signed (or the bare body of the unsigned tree), and where it came from."""

    note: str
    checkpoint: Checkpoint
    number: int | None = None
    """Its publication number (`ledger checkpoint --list`); None if pasted or unsigned."""
    published_at: str | None = None
    pasted: bool = False

    def signed(self) -> bool:
        return "\n\n" in self.note

    def describe(self) -> dict[str, Any]:
        return {
            "note": self.note, "origin": self.checkpoint.origin, "tree_size": self.checkpoint.size, "root": b64(self.checkpoint.root),
            "signed": self.signed(), "number": self.number, "published_at": self.published_at, "pasted": self.pasted,
        }


def _published(reader: Reader, number: int | None) -> Published | None:
    """The published checkpoint numbered `number` (the latest if None); None if there is none."""
    if number is None:
        latest = reader.tree().published(1)
        return latest[0] if latest else None
    found = next((p for p in reader.tree().published(PUBLISHED_SEARCHED) if p.number == number), None)
    if found is None:
        raise NotFound(f"published: {number}: no published checkpoint has this number (see `ledger checkpoint --list`)")
    return found


def proven_in(reader: Reader, published: int | None = None, pasted: str | None = None) -> ProvenIn | None:
    """The checkpoint asked for: pasted, published with that number, or the latest published (None if none is)."""
    if pasted is not None:
        # A form's text area sends CRLF line ends, and a copied note may lose its last newline: neither is signed.
        pasted = pasted.replace("\r\n", "\n").strip() + "\n"
        try:
            checkpoint = parse_checkpoint(pasted)
        except TransparencyError as error:
            raise InvalidValue("checkpoint", pasted.split("\n", 1)[0], str(error)) from None
        return ProvenIn(pasted, checkpoint, pasted=True)
    chosen = _published(reader, published)
    if chosen is None:
        return None
    return ProvenIn(chosen.note, parse_checkpoint(chosen.note), chosen.number, chosen.published_at)


def _prove(reader: Reader, position: int, where: ProvenIn) -> InclusionProof:
    """`ledger prove POSITION --checkpoint` of that checkpoint's tree. A pasted checkpoint is proven in this ledger's tree of its
    size whatever its root: whether the two roots agree is for the auditor's browser to find."""
    tree = reader.tree()
    size = where.checkpoint.size
    log.catch_up(tree)
    if size > tree.size():
        raise InvalidValue("checkpoint", f"tree size {size}", f"this ledger's tree has only {tree.size()} leaves")
    try:
        return log.prove_inclusion(tree, position, Checkpoint(where.checkpoint.origin, size, log.root(tree, size)))
    except TransparencyError as error:
        raise NotFound(str(error)) from None


def _covers(tree: TreeStore, position: int, size: int) -> bool:
    log.catch_up(tree)
    leaf = tree.leaf_at(position)
    return leaf is not None and leaf.index < size


def _inclusion(reader: Reader, position: int, published: int | None, pasted: str | None) -> dict[str, Any]:
    """The event's proof (exactly `ledger prove`'s output) and the checkpoint it leads to, with the published ones to choose from.

    By default that is the latest published checkpoint; an event it does not cover (or a ledger that has published none) is
    proven in the unsigned checkpoint of the whole tree, which the page's check refuses as unanchored.
    """
    tree = reader.tree()
    offered = [{"number": p.number, "tree_size": p.size, "published_at": p.published_at} for p in tree.published(PUBLISHED_OFFERED)]
    chosen = published is not None or pasted is not None
    where = proven_in(reader, published, pasted)
    if not chosen and (where is None or not _covers(tree, position, where.checkpoint.size)):
        whole = log.checkpoint(tree)
        where = ProvenIn(whole.body(), whole)
    try:
        proof: dict[str, Any] | None = _prove(reader, position, where).model_dump()
    except NotFound:
        if chosen:
            raise
        proof = None  # not in the tree: the page says so
    return {"proof": proof, "checkpoint": where.describe(), "published": offered}


def published_proof(reader: Reader, position: int, published: int | None = None, pasted: str | None = None) -> tuple[InclusionProof, TlogProof]:
    """The event's inclusion proof in a signed checkpoint (the latest published by default): as `ledger prove` writes it, and as a
    C2SP tlog-proof carrying that checkpoint; NotFound if none is published or the event came after it."""
    where = proven_in(reader, published, pasted)
    if where is None:
        raise NotFound("checkpoint: this ledger has published no checkpoint yet")
    if not where.signed():
        raise InvalidValue("checkpoint", where.note.split("\n", 1)[0], "carries no signature; give a signed checkpoint")
    try:
        proof = _prove(reader, position, where)
    except NotFound as error:
        raise NotFound(f"{error} ({'the latest published checkpoint' if published is None and pasted is None else 'the checkpoint given'})") from None
    return proof, from_inclusion(proof, where.note)


def audit_page(reader: Reader, given: LogFilter, after: int = 0, limit: int = PAGE_SIZE, before: int | None = None,
               at: int | None = None) -> dict[str, Any]:
    """Page 5: the audit log, filtered through the store's indexes (web/audit.py)."""
    return audit.audit_page(reader, given, after=after, before=before, at=at, limit=limit)


def tlog_checkpoint(reader: Reader) -> str:
    """The latest published checkpoint, as signed; NotFound until `ledger checkpoint --sign` has published one."""
    latest = reader.tree().published(1)
    if not latest:
        raise NotFound("checkpoint: this ledger has published no checkpoint yet")
    return latest[0].note


def tlog_tile(reader: Reader, path: str) -> bytes:
    """A hash tile or entry bundle of the stored tree (C2SP tlog-tiles); NotFound if the tree does not hold it."""
    try:
        return tiles.read_tile(reader.tree(), tiles.parse_path(path))
    except tiles.TileNotFound as error:
        raise NotFound(str(error)) from None
