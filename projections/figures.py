"""The 20 published impact figures, computed from platform rows for any period, with their evidence."""

from __future__ import annotations

import heapq
import json
import sys
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from importlib import resources
from typing import Any, Protocol

from domain.errors import InvalidValue
from domain.nuts import CURRENT, NUTS_PREFIX, to_current
from projections.platform import Row

RULES_VERSION = "1"
STANDING = ("registered", "attended")


@dataclass(frozen=True)
class Evidence:
    """One event behind a figure."""

    position: int
    ref: str
    event: str
    value: Any = None


@dataclass(frozen=True)
class Settings:
    """The parameters of the counting rules."""

    start: date
    end: date
    update_window_days: int = 365
    established_within_years: int = 15
    country: str | None = None

    def __post_init__(self) -> None:
        # The update window is counted back from the period's start: it must fit in the calendar.
        if self.update_window_days < 1:
            raise InvalidValue("window_days", str(self.update_window_days), "must be at least 1")
        if self.update_window_days > (self.start - date.min).days:
            raise InvalidValue("window_days", str(self.update_window_days), f"reaches back before the year 1 from {self.start.isoformat()}")


@dataclass
class Figures:
    """Figure values by key; for each, how many events lie behind it and the first of them by position."""

    values: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    counts: set[str] = field(default_factory=set)


def published_figures() -> dict[str, Any]:
    """The published 2024-2025 figures the ledger must be able to rebuild."""
    return json.loads(resources.files("projections").joinpath("published_figures.json").read_text())


SHOWN_AS = {"most_represented_sector": "most_represented_ecosystem"}
"""How a report for people names a figure whose published key says less than it counts; JSON, CSV and signed reports keep the key."""
SHOWN_AS_NOTE = ("most_represented_ecosystem is the published figure most_represented_sector, counted from the profiles' industrial "
                 "ecosystems, not from their free-text sectors")


def compared_with_published(start: str, end: str) -> bool:
    """Whether a report's period is the published figures' own, the only one their values can be set against."""
    period = published_figures()["period"]
    return (start, end) == (period["from"], period["to"])


def assumptions(settings: Settings) -> dict[str, Any]:
    """The counting rules, printed with every report."""
    return {
        "rules_version": RULES_VERSION,
        "dates": "effective dates decide the period (both ends included); --as-of limits the events to those recorded by then",
        "regularly_updated_window_days": settings.update_window_days,
        "regularly_updated": f"a published, not archived profile with a recorded update in the {settings.update_window_days} days up to the reporting date (start and end of the period)",
        "cluster_organisations": "profiles published and not archived at the end of the period",
        "member_organisations_represented": "SMEs + large enterprises + research organisations of those profiles, as their profiles stood at the end of the period",
        "established_within_years": settings.established_within_years,
        "share_established_within_15_years": f"share of those profiles established in or after (end year - {settings.established_within_years})",
        "most_represented_sector": "the industrial ecosystem named by most of those profiles",
        "participants": "registrations still standing (registered or attended) at the end of the period, once per participant and activity, for activities held in the period; a cancelled registration is not a participant",
        "booster_academy_professionals": "distinct people standing in Cluster Booster Academy cohorts held in the period",
        "bilateral_meetings": "meetings at matchmaking events held in the period (a request alone does not count)",
        "cooperation_cases_identified": "cases identified in the period, whatever became of them later",
        "activities_held": "activities held in the period (cancelled ones do not count)",
        "pitches": "pitches delivered in the period at Clusters meet Regions events",
        "publications": "case studies and guides published in the period; country fact sheets published or updated in the period",
        "new_profiles_published": "profiles first published in the period",
        "country": settings.country or "all",
        "regions": f"profiles on the platform at the end of the period by NUTS 2 region of NUTS {CURRENT}; a NUTS 2021 code is mapped "
                   "through Eurostat's 2021-2024 correspondence, and a region that did not survive whole counts under its nearest unchanged parent",
        "tolerance": {"about": 0.10, "close to": 0.05},
    }


_RULE_OF = {
    "matchmaking_participants": "participants", "clusters_talks_participants": "participants",
    "clusters_meet_regions_participants": "participants", "c2lab_participants": "participants",
    "clusters_talks_held": "activities_held", "c2labs_held": "activities_held", "clusters_meet_regions_pitches": "pitches",
    "case_studies": "publications", "green_transition_guides": "publications", "country_fact_sheets": "publications",
    "share_regularly_updated_profiles_start": "regularly_updated", "share_regularly_updated_profiles_end": "regularly_updated",
}
"""Figures that share one counting rule in `assumptions`, and the rule's name there."""


def counting_rule(key: str, rules: dict[str, Any]) -> str:
    """The counting rule of one figure, from `assumptions`, as shown beside it."""
    return str(rules[_RULE_OF.get(key, key)])


def meets(value: Any, published: Any, qualifier: str) -> bool:
    """Whether a computed value meets a published value and its qualifier."""
    if qualifier in ("more than", "over"):
        return bool(value > published)
    if qualifier == "exactly":
        return bool(value == published)
    tolerance = {"about": 0.10, "close to": 0.05}[qualifier]
    return bool(abs(value - published) <= tolerance * published)


RowSource = Callable[[], Iterable[Row]]
"""Where figures read platform rows: each call starts a fresh pass over them, in any order."""

EVIDENCE_KEPT = 50
"""Events kept per figure by `compute` (the first by position); `evidence_page` lists any of them."""


class RowsByKind(Protocol):
    """A store that streams the rows of a projection, only those of `kinds` when asked."""

    def iter_rows(self, projection: str, kinds: Collection[str] | None = None, holding: str | None = None) -> Iterator[Row]: ...


class RowsPickedByKind:
    """A `RowSource` that, asked for some kinds, reads only the rows of those kinds (and perhaps a few others)."""

    def __call__(self, kinds: Collection[str] | None = None) -> Iterator[Row]:
        raise NotImplementedError


@dataclass(frozen=True)
class StoredRows(RowsPickedByKind):
    """A `RowSource` over a projection store: each call streams the stored rows; a pass that needs some kinds only asks for those."""

    store: RowsByKind
    projection: str

    def __call__(self, kinds: Collection[str] | None = None, holding: str | None = None) -> Iterator[Row]:
        """The rows (of `kinds`); with `holding`, the store may leave out rows whose text cannot hold it, ignoring case."""
        return self.store.iter_rows(self.projection, kinds, holding)


def _rows_of(source: RowSource, kinds: Collection[str] | None) -> Iterable[Row]:
    """One pass over the rows of `kinds` (all rows if None); a store is asked for those kinds only."""
    if kinds is None:
        return source()
    rows = source(kinds) if isinstance(source, RowsPickedByKind) else source()
    return (row for row in rows if row["kind"] in kinds)


class _Kept:
    """Per figure: how many events lie behind it, and the first `limit` of them after position `after`.

    Within one figure an event counts at most once, so positions never tie.
    """

    def __init__(self, limit: int, after: int = 0, only: str | None = None) -> None:
        self.limit, self.after, self.only = limit, after, only
        self.totals: dict[str, int] = {}
        self.beyond: dict[str, int] = {}
        self.heaps: dict[str, list[tuple[int, Evidence]]] = {}

    def add(self, key: str, position: int, ref: str, event: str, value: Any = None) -> None:
        self.totals[key] = self.totals.get(key, 0) + 1
        if position <= self.after or (self.only is not None and key != self.only and not key.startswith(self.only + "|")):
            return
        self.beyond[key] = self.beyond.get(key, 0) + 1
        heap = self.heaps.get(key)
        if heap is None:
            heap = self.heaps[key] = []
        if len(heap) < self.limit:
            heapq.heappush(heap, (-position, Evidence(position, ref, event, value)))
        elif heap and position < -heap[0][0]:
            heapq.heapreplace(heap, (-position, Evidence(position, ref, event, value)))

    def first(self, key: str) -> list[Evidence]:
        return sorted((e for _, e in self.heaps.get(key, [])), key=lambda e: e.position)

    def rename(self, old: str | None, new: str, value: Any) -> None:
        """Move the events kept as `old` to `new`, each with `value`; `new` is empty if `old` is None."""
        heap = self.heaps.pop(old, []) if old is not None else []
        self.heaps[new] = [(p, replace(e, value=value)) for p, e in heap]
        self.totals[new] = self.totals.get(old, 0) if old is not None else 0
        self.beyond[new] = self.beyond.get(old, 0) if old is not None else 0


COUNTED = (
    "cluster_organisations", "matchmaking_participants", "bilateral_meetings", "cooperation_cases_identified", "clusters_talks_held",
    "clusters_talks_participants", "booster_academy_professionals", "clusters_meet_regions_participants", "clusters_meet_regions_pitches",
    "c2labs_held", "c2lab_participants", "case_studies", "new_profiles_published", "green_transition_guides", "country_fact_sheets",
)
"""The figures that are counts of events (the others are sums and shares)."""
_HELD = {"clusters_talk": "clusters_talks_held", "c2lab": "c2labs_held"}
_PARTICIPANTS = {"matchmaking": "matchmaking_participants", "clusters_talk": "clusters_talks_participants",
                 "clusters_meet_regions": "clusters_meet_regions_participants", "c2lab": "c2lab_participants"}
_PUBLICATIONS = {"case_study": ("case_studies", False), "green_transition_guide": ("green_transition_guides", False),
                 "country_fact_sheet": ("country_fact_sheets", True)}
_LAST_DAY = "9999-12-31"
_SECTOR = "most_represented_sector"


def compute(source: RowSource, settings: Settings, limit: int = EVIDENCE_KEPT) -> Figures:
    """Every figure for the period of `settings`, from platform rows, keeping the first `limit` events behind each."""
    figures, _ = _figures(source, settings, _Kept(limit))
    return figures


@dataclass(frozen=True)
class EvidencePage:
    """The events behind one figure after position `after`: the first `limit` by position, and how many there are in all."""

    key: str
    value: Any
    is_count: bool
    total: int
    events: list[Evidence]
    more: bool
    """Whether events follow the last one listed."""
    skipped: int = 0
    """How many of its events lie at or before position `after`: the first one listed is number `skipped + 1`."""


def evidence_page(source: RowSource, settings: Settings, key: str, after: int = 0, limit: int = EVIDENCE_KEPT) -> EvidencePage:
    """One figure's events after position `after`, the first `limit` of them: one streaming computation over the kinds of rows
    its rule reads, memory bounded by `limit`."""
    figures, kept = _figures(source, settings, _Kept(limit, after, only=key), rows_read(key, settings.country))
    events = figures.evidence[key]
    beyond = kept.beyond.get(key, 0)
    return EvidencePage(key, figures.values[key], key in figures.counts, figures.totals[key], events, beyond > len(events), figures.totals[key] - beyond)


def _figures(source: RowSource, settings: Settings, kept: _Kept, kinds: Collection[str] | None = None) -> tuple[Figures, _Kept]:
    """The figures from the rows of `kinds` (of every kind if None: only the figures that read no other kind are right then)."""
    return _figures_of(source, [(settings, kept)], kinds)[0]


_NEEDS: dict[str, frozenset[str]] = {
    **{key: frozenset({"org"}) for key in (
        "cluster_organisations", "member_organisations_represented", "share_established_within_15_years", _SECTOR,
        "new_profiles_published", "share_regularly_updated_profiles_start", "share_regularly_updated_profiles_end")},
    **{key: frozenset({"activity", "participation"}) for key in (*_PARTICIPANTS.values(), "booster_academy_professionals")},
    "bilateral_meetings": frozenset({"activity", "meeting"}),
    "cooperation_cases_identified": frozenset({"case"}),
    **{key: frozenset({"activity"}) for key in _HELD.values()},
    "clusters_meet_regions_pitches": frozenset({"activity", "pitch"}),
    **{key: frozenset({"publication"}) for key, _ in _PUBLICATIONS.values()},
}
"""The kinds of rows each figure reads (with a country, organisations too: they place the other rows in it)."""


def rows_read(key: str, country: str | None) -> set[str]:
    """The kinds of rows the figure `key` is computed from, for all countries or one."""
    return set(_NEEDS[key]) | ({"org"} if country is not None else set())


def values_by_period(source: RowSource, periods: list[Settings], key: str) -> list[Any]:
    """The value of figure `key` for each of `periods` (all of one country), as `compute` gives it: one pass over the rows
    of the kinds the figure reads, whatever the number of periods."""
    if len({p.country for p in periods}) > 1:
        raise ValueError("periods of different countries are counted in passes of their own")
    kinds = rows_read(key, periods[0].country if periods else None)
    apart = all(earlier.end < later.start for earlier, later in zip(periods, periods[1:]))
    counted = _figures_of(source, [(p, _Kept(0, only=key)) for p in periods], kinds, dated=apart)
    return [figures.values[key] for figures, _ in counted]


_DAYS: dict[str, Callable[[Row], list[str]]] = {
    "meeting": lambda m: [_effective(step, m["steps"][0]) for step in m["steps"]],
    "case": lambda c: [c["steps"][0]["on"]],
    "pitch": lambda p: [p["delivered"]["on"]],
    "publication": lambda p: [_effective(stamp, p["published"]) for stamp in (p["published"], *p["updates"])],
}
"""For the kinds of rows that count in a period only by a day within it (and change nothing else): every such day."""


def _periods_of(days: list[str], starts: list[str], ends: list[str]) -> list[int]:
    """The indexes of the periods (in order, apart) holding any of `days`."""
    found: set[int] = set()
    for day in days:
        i = bisect_right(starts, day) - 1
        if i >= 0 and day <= ends[i]:
            found.add(i)
    return sorted(found)


def _figures_of(source: RowSource, counted: list[tuple[Settings, _Kept]], kinds: Collection[str] | None = None, *,
                dated: bool = False) -> list[tuple[Figures, _Kept]]:
    """`_figures` of several settings of one country in one pass over the rows (of `kinds` only, if given).

    `dated`: the settings' periods are in order and apart, so a row of a kind in `_DAYS` is counted only for the periods
    holding one of its days (for the others its handler would do nothing).
    """
    countings = [_counting(settings, kept) for settings, kept in counted]
    starts, ends = [s.start.isoformat() for s, _ in counted], [s.end.isoformat() for s, _ in counted]
    # First the lookups other rows need (activities; organisations when a country filters them), then the rest: most rows,
    # so that pass reads them all rather than have the store pick them by kind.
    first = {"activity", "org"} if any(settings.country is not None for settings, _ in counted) else {"activity"}
    wanted = set(kinds) if kinds is not None else None
    handlers: dict[str, list[Callable[[Row], None]]] = {}
    for handled, _ in countings:
        for kind, handler in handled.items():
            handlers.setdefault(kind, []).append(handler)
    for row in _rows_of(source, first if wanted is None else first & wanted) if wanted is None or first & wanted else ():
        for handler in handlers[row["kind"]]:
            handler(row)
    for row in _rows_of(source, None if wanted is None else wanted - first) if wanted is None or wanted - first else ():
        kind = row["kind"]
        if kind in first:
            continue
        if dated and kind in _DAYS:
            for i in _periods_of(_DAYS[kind](row), starts, ends):
                handlers[kind][i](row)
            continue
        for handler in handlers[kind]:
            handler(row)
    return [finish() for _, finish in countings]


def _counting(settings: Settings, kept: _Kept) -> tuple[dict[str, Callable[[Row], None]], Callable[[], tuple[Figures, _Kept]]]:
    """The handler of each kind of row for the figures of `settings`, and what makes the figures once every row is handled
    (activities before participations, meetings and pitches; organisations before them too when a country is set)."""
    start, end, country = settings.start.isoformat(), settings.end.isoformat(), settings.country
    cutoff = settings.end.year - settings.established_within_years
    moments = [(key, moment.isoformat(), (moment - timedelta(days=settings.update_window_days)).isoformat())
               for key, moment in (("share_regularly_updated_profiles_start", settings.start), ("share_regularly_updated_profiles_end", settings.end))]
    activities: dict[str, tuple[str, bool]] = {}  # ref: (kind, held in the period and not cancelled)
    in_country: set[str] = set()
    on_platform = members = young = 0
    base: Counter[str] = Counter()
    sectors: Counter[str] = Counter()
    people: dict[str, tuple[int, str]] = {}

    def org(o: Row) -> None:
        nonlocal on_platform, members, young
        if country is not None:
            if _profile_at(o, _LAST_DAY)["country"] != country:
                return
            in_country.add(o["ref"])
        published = o["published"]
        if published and start <= _effective(published, o["registered"]) <= end:
            kept.add("new_profiles_published", published["pos"], o["ref"], "ClusterOrganisation.Published")
        if _on_platform(o, end):
            on_platform += 1
            kept.add("cluster_organisations", published["pos"], o["ref"], "ClusterOrganisation.Published")
            p = _profile_at(o, end)
            represented = sum(p["members"][k] for k in ("smes", "large_enterprises", "research_organisations"))
            members += represented
            kept.add("member_organisations_represented", p["pos"], o["ref"], p["event"], represented)
            if p["year_established"] >= cutoff:
                young += 1
                kept.add("share_established_within_15_years", p["pos"], o["ref"], p["event"], p["year_established"])
            sectors.update(p["ecosystems"])
            for ecosystem in dict.fromkeys(p["ecosystems"]):
                kept.add(f"{_SECTOR}|{ecosystem}", p["pos"], o["ref"], p["event"])
        for key, day, since in moments:
            if _on_platform(o, day):
                base[key] += 1
                updates = [u["pos"] for u in o["updates"] if since < _effective(u, o["registered"]) <= day]
                if updates:
                    kept.add(key, max(updates), o["ref"], "ClusterOrganisation.Updated")

    def activity(a: Row) -> None:
        held = a["held"]
        in_period = bool(held and start <= _effective(held, a["scheduled"]) <= end and not a["cancelled"])
        activities[a["ref"]] = (a["activity_kind"], in_period)
        if in_period and country is None and a["activity_kind"] in _HELD:
            kept.add(_HELD[a["activity_kind"]], held["pos"], a["ref"], "Activity.Held")

    def participation(p: Row) -> None:
        kind, in_period = activities.get(p["activity"], ("", False))
        if not in_period or (kind not in _PARTICIPANTS and kind != "booster_academy"):
            return
        if country is not None and (p["participant_kind"] != "org" or p["participant"] not in in_country):
            return
        status = _status_at(p, end)
        if status is None or status["status"] not in STANDING:
            return
        position = p["steps"][0]["pos"]
        if kind == "booster_academy":
            if p["participant"] not in people or position < people[p["participant"]][0]:
                people[p["participant"]] = (position, p["ref"])
        else:
            kept.add(_PARTICIPANTS[kind], position, p["ref"], "Participation.Registered")

    def meeting(m: Row) -> None:
        if activities.get(m["activity"], ("", False))[0] != "matchmaking":
            return
        if country is not None and m["requester"] not in in_country and m["partner"] not in in_country:
            return
        held = _first_held(m, start, end)
        if held is not None:
            kept.add("bilateral_meetings", held["pos"], m["ref"], "BilateralMeeting.Held")

    def case(c: Row) -> None:
        if start <= c["steps"][0]["on"] <= end and (country is None or country in c["countries"]):
            kept.add("cooperation_cases_identified", c["steps"][0]["pos"], c["ref"], "CooperationCase.Identified")

    def pitch(p: Row) -> None:
        if (start <= p["delivered"]["on"] <= end and activities.get(p["activity"], ("", False))[0] == "clusters_meet_regions"
                and (country is None or p["org"] in in_country)):
            kept.add("clusters_meet_regions_pitches", p["delivered"]["pos"], p["ref"], "Pitch.Delivered")

    def publication(p: Row) -> None:
        counted = _PUBLICATIONS.get(p["publication_kind"])
        if counted is None or (country is not None and p["country"] != country):
            return
        stamps = [(p["published"], "Publication.Published")]
        if counted[1]:
            stamps += [(u, "Publication.Updated") for u in p["updates"]]
        inside = sorted((s["pos"], label) for s, label in stamps if start <= _effective(s, p["published"]) <= end)
        if inside:
            kept.add(counted[0], inside[0][0], p["ref"], inside[0][1])

    handlers: dict[str, Callable[[Row], None]] = {"org": org, "activity": activity, "participation": participation, "meeting": meeting,
                                                  "case": case, "pitch": pitch, "publication": publication}
    return handlers, lambda: _made(kept, on_platform, members, young, base, sectors, people, moments)


def _made(kept: _Kept, on_platform: int, members: int, young: int, base: Counter[str], sectors: Counter[str],
          people: dict[str, tuple[int, str]], moments: list[tuple[str, str, str]]) -> tuple[Figures, _Kept]:
    """The figures once every row is counted."""
    for participant, (position, ref) in people.items():
        kept.add("booster_academy_professionals", position, ref, "Participation.Registered", participant)

    top = min(sectors, key=lambda e: (-sectors[e], e)) if sectors else None
    kept.rename(f"{_SECTOR}|{top}" if top is not None else None, _SECTOR, top)
    values: dict[str, Any] = {
        "cluster_organisations": kept.totals.get("cluster_organisations", 0),
        "member_organisations_represented": members,
        "share_established_within_15_years": _share(young, on_platform),
        _SECTOR: top,
    }
    for key in ("matchmaking_participants", "bilateral_meetings", "cooperation_cases_identified", "clusters_talks_held",
                "clusters_talks_participants", "booster_academy_professionals", "clusters_meet_regions_participants",
                "clusters_meet_regions_pitches", "c2labs_held", "c2lab_participants", "case_studies", "new_profiles_published"):
        values[key] = kept.totals.get(key, 0)
    for key, _, _ in moments:
        values[key] = _share(kept.totals.get(key, 0), base[key])
    values["green_transition_guides"] = kept.totals.get("green_transition_guides", 0)
    values["country_fact_sheets"] = kept.totals.get("country_fact_sheets", 0)
    figures = Figures(values, {key: kept.first(key) for key in values}, {key: kept.totals.get(key, 0) for key in values}, set(COUNTED))
    return figures, kept


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _effective(stamp: dict[str, Any], created: dict[str, Any]) -> str:
    """The day a fact counts from: its effective day, or its record's creation if dated before it (as old ledgers may hold)."""
    return max(stamp["on"], created["on"])


def _profile_at(org: Row, day: str) -> dict[str, Any]:
    """The profile's fields as they stood on `day` (effective dates), with the position of the last change."""
    # The registration comes first whatever the dates, so the profile always holds every field.
    registered = org["versions"][0]
    profile: dict[str, Any] = {}
    for version in sorted(org["versions"], key=lambda v: (_effective(v, registered), v["pos"])):
        if _effective(version, registered) <= day or not profile:
            profile.update(version)
    return profile


def _on_platform(org: Row, day: str) -> bool:
    published, archived, registered = org["published"], org["archived"], org["registered"]
    return (published is not None and _effective(published, registered) <= day
            and (archived is None or _effective(archived, registered) > day))


def _status_at(row: Row, day: str) -> dict[str, Any] | None:
    created = row["steps"][0]
    found, found_on = None, ""
    for step in row["steps"]:
        on = _effective(step, created)
        if on <= day and (found is None or (on, step["pos"]) > (found_on, found["pos"])):
            found, found_on = step, on
    return found


def _first_held(meeting: Row, start: str, end: str) -> dict[str, Any] | None:
    created = meeting["steps"][0]
    return next((s for s in meeting["steps"] if s["status"] == "held" and start <= _effective(s, created) <= end), None)


def cross_border_partners(source: RowSource, settings: Settings) -> dict[str, int]:
    """For one country: partner countries in held meetings and identified cases of the period, with counts."""
    start, end, country = settings.start.isoformat(), settings.end.isoformat(), settings.country
    countries_at_end = {o["ref"]: sys.intern(_profile_at(o, end)["country"]) for o in _rows_of(source, {"org"})}
    tally: Counter[str] = Counter()
    for row in _rows_of(source, {"meeting", "case"}):
        if row["kind"] == "meeting":
            # The country first: most meetings are between others, and need no look at their steps.
            countries = [countries_at_end[r] for r in (row["requester"], row["partner"]) if r in countries_at_end]
            if country in countries and _first_held(row, start, end) is not None:
                tally.update(c for c in countries if c != country)
        elif start <= row["steps"][0]["on"] <= end and country in row["countries"]:
            tally.update(set(row["countries"]) - {country})
    return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))


def regions(source: RowSource, settings: Settings) -> dict[str, Any]:
    """For one country: profiles on the platform at the end of the period, by NUTS 2 region in the current classification."""
    end = settings.end.isoformat()
    tally: Counter[str] = Counter()
    for org in _rows_of(source, {"org"}):
        if settings.country is not None and _profile_at(org, _LAST_DAY)["country"] != settings.country:
            continue
        if not _on_platform(org, end):
            continue
        profile = _profile_at(org, end)
        region = profile.get("region")
        if not region:
            tally["none"] += 1
            continue
        prefix = NUTS_PREFIX.get(profile["country"], profile["country"])
        tally[to_current(region, profile.get("nuts_version") or CURRENT)[: len(prefix) + 2]] += 1
    return {"classification": f"NUTS {CURRENT}", "level": 2, "profiles": dict(sorted(tally.items()))}


def countries(source: RowSource, settings: Settings) -> dict[str, int]:
    """Every country with an organisation on record, and how many of its profiles are on the platform at the end of the period."""
    end, found = settings.end.isoformat(), Counter[str]()
    for org in _rows_of(source, {"org"}):
        found[_profile_at(org, _LAST_DAY)["country"]] += _on_platform(org, end)
    return dict(sorted(found.items()))


def chart_data(source: RowSource, settings: Settings, top: int = 20) -> dict[str, Any]:
    """What the HTML report draws: activities held per month, the cooperation funnel, cases by country pair (the first `top`)."""
    start, end = settings.start.isoformat(), settings.end.isoformat()
    # Every month of the period, so the time axis is even: a month without activity is a zero, not a gap.
    months: dict[str, Counter[str]] = {month: Counter() for month in months_between(settings.start, settings.end)}
    matchmaking: set[str] = set()
    for activity in _rows_of(source, {"activity"}):
        held = activity["held"]
        if held and start <= (on := _effective(held, activity["scheduled"])) <= end:
            months[on[:7]][activity["activity_kind"]] += 1
        if activity["activity_kind"] == "matchmaking":
            matchmaking.add(activity["ref"])
    reached = lambda case, stage: any(s["status"] == stage and _effective(s, case["steps"][0]) <= end for s in case["steps"])  # noqa: E731
    pairs: Counter[str] = Counter()
    meetings = identified = agreements = joint = 0
    for row in _rows_of(source, {"meeting", "case"}):
        if row["kind"] == "meeting":
            meetings += row["activity"] in matchmaking and _first_held(row, start, end) is not None
            continue
        if not start <= row["steps"][0]["on"] <= end:
            continue
        identified += 1
        agreements += reached(row, "agreement_signed") or reached(row, "joint_project_launched")
        joint += reached(row, "joint_project_launched")
        countries = sorted(set(row["countries"]))
        pairs.update(f"{a}-{b}" for i, a in enumerate(countries) for b in countries[i + 1 :])
    return {
        "activity_by_month": {m: dict(sorted(kinds.items())) for m, kinds in months.items()},
        "funnel": {"meetings held": meetings, "cases identified": identified, "agreements signed": agreements, "joint projects launched": joint},
        "case_country_pairs": top_with_ties(pairs, top),
    }


def months_between(first: date, last: date) -> list[str]:
    """Every month from `first` to `last`, both included, as `YYYY-MM`."""
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def top_with_ties(counts: Counter[str], limit: int) -> dict[str, Any]:
    """The `limit` largest counts, with what the cut left out.

    A tie at the cut is shown whole when that adds at most half of `limit` again; otherwise the cut falls inside
    the tie (alphabetical order decides), and `tie` says how many of it are shown.
    """
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    cut = min(limit, len(ranked))
    tie: dict[str, int] | None = None
    if 0 < cut < len(ranked) and ranked[cut][1] == ranked[cut - 1][1]:
        value = ranked[cut - 1][1]
        above = sum(1 for _, n in ranked if n > value)
        size = sum(1 for _, n in ranked if n == value)
        if above + size <= limit + limit // 2:
            cut = above + size
        tie = {"value": value, "size": size, "shown": cut - above}
    return {"shown": dict(ranked[:cut]), "of": len(ranked), "limit": limit, "tie": tie}


def evidence_listing(figures: Figures, limit: int) -> dict[str, dict[str, Any]]:
    """For each count figure: how many events lie behind it and the first `limit` of them (position, record, event type)."""
    return {
        key: {
            "total": figures.totals[key],
            "events": [{"position": e.position, "ref": e.ref, "event": e.event} for e in figures.evidence[key][:limit]],
        }
        for key in figures.values
        if key in figures.counts
    }
