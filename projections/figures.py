"""The 20 published impact figures, computed from platform rows for any period, with their evidence."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import Any

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


@dataclass
class Figures:
    """Figure values by key, the evidence behind each, and the rules used."""

    values: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)
    counts: set[str] = field(default_factory=set)


def published_figures() -> dict[str, Any]:
    """The published 2024-2025 figures the ledger must be able to rebuild."""
    return json.loads(resources.files("projections").joinpath("published_figures.json").read_text())


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


def meets(value: Any, published: Any, qualifier: str) -> bool:
    """Whether a computed value meets a published value and its qualifier."""
    if qualifier in ("more than", "over"):
        return bool(value > published)
    if qualifier == "exactly":
        return bool(value == published)
    tolerance = {"about": 0.10, "close to": 0.05}[qualifier]
    return bool(abs(value - published) <= tolerance * published)


def compute(rows: dict[str, Row], settings: Settings) -> Figures:
    """Every figure for the period of `settings`, from platform rows."""
    view = _View(rows, settings)
    result = Figures()
    start, end = settings.start.isoformat(), settings.end.isoformat()

    def count(key: str, items: list[Evidence]) -> None:
        result.values[key] = len(items)
        result.evidence[key] = sorted(items, key=lambda e: e.position)
        result.counts.add(key)

    on_platform = [o for o in view.orgs if view.on_platform(o, end)]
    count("cluster_organisations", [Evidence(o["published"]["pos"], o["ref"], "ClusterOrganisation.Published") for o in on_platform])
    members = [(o, view.profile_at(o, end)) for o in on_platform]
    represented = [
        Evidence(p["pos"], o["ref"], p["event"], sum(p["members"][k] for k in ("smes", "large_enterprises", "research_organisations")))
        for o, p in members
    ]
    result.values["member_organisations_represented"] = sum(e.value for e in represented)
    result.evidence["member_organisations_represented"] = represented
    cutoff = settings.end.year - settings.established_within_years
    young = [Evidence(p["pos"], o["ref"], p["event"], p["year_established"]) for o, p in members if p["year_established"] >= cutoff]
    result.values["share_established_within_15_years"] = _share(len(young), len(on_platform))
    result.evidence["share_established_within_15_years"] = young
    tally = Counter(e for _, p in members for e in p["ecosystems"])
    top = min(tally, key=lambda e: (-tally[e], e)) if tally else None
    result.values["most_represented_sector"] = top
    result.evidence["most_represented_sector"] = [Evidence(p["pos"], o["ref"], p["event"], top) for o, p in members if top in p["ecosystems"]]

    count("matchmaking_participants", view.participants("matchmaking", start, end))
    count("bilateral_meetings", view.meetings_held(start, end))
    count("cooperation_cases_identified", view.cases_identified(start, end))
    count("clusters_talks_held", view.activities_held("clusters_talk", start, end))
    count("clusters_talks_participants", view.participants("clusters_talk", start, end))
    count("booster_academy_professionals", view.distinct_people("booster_academy", start, end))
    count("clusters_meet_regions_participants", view.participants("clusters_meet_regions", start, end))
    count("clusters_meet_regions_pitches", view.pitches("clusters_meet_regions", start, end))
    count("c2labs_held", view.activities_held("c2lab", start, end))
    count("c2lab_participants", view.participants("c2lab", start, end))
    count("case_studies", view.publications("case_study", start, end, with_updates=False))
    count("new_profiles_published", [Evidence(o["published"]["pos"], o["ref"], "ClusterOrganisation.Published") for o in view.orgs if o["published"] and start <= o["published"]["on"] <= end])
    for key, moment in (("share_regularly_updated_profiles_start", settings.start), ("share_regularly_updated_profiles_end", settings.end)):
        base, fresh = view.regularly_updated(moment, settings.update_window_days)
        result.values[key] = _share(len(fresh), base)
        result.evidence[key] = fresh
    count("green_transition_guides", view.publications("green_transition_guide", start, end, with_updates=False))
    count("country_fact_sheets", view.publications("country_fact_sheet", start, end, with_updates=True))
    return result


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


class _View:
    """Indexes of the platform rows, restricted to one country when asked."""

    def __init__(self, rows: dict[str, Row], settings: Settings) -> None:
        by_kind: dict[str, list[Row]] = {}
        for row in rows.values():
            by_kind.setdefault(row["kind"], []).append(row)
        self.country = settings.country
        self.all_orgs = {o["ref"]: o for o in by_kind.get("org", [])}
        self.activities = {a["ref"]: a for a in by_kind.get("activity", [])}
        self.participations = by_kind.get("participation", [])
        self.meetings = by_kind.get("meeting", [])
        self.pitch_rows = by_kind.get("pitch", [])
        self.cases = by_kind.get("case", [])
        self.publication_rows = by_kind.get("publication", [])
        self.orgs = [o for o in self.all_orgs.values() if self._in_country(o["ref"])]

    def _in_country(self, org_ref: str) -> bool:
        if self.country is None:
            return True
        org = self.all_orgs.get(org_ref)
        return org is not None and self.profile_at(org, "9999-12-31")["country"] == self.country

    @staticmethod
    def profile_at(org: Row, day: str) -> dict[str, Any]:
        """The profile's fields as they stood on `day` (effective dates), with the position of the last change."""
        profile: dict[str, Any] = {}
        for version in sorted(org["versions"], key=lambda v: (v["on"], v["pos"])):
            if version["on"] <= day or not profile:
                profile.update(version)
        return profile

    @staticmethod
    def on_platform(org: Row, day: str) -> bool:
        published, archived = org["published"], org["archived"]
        return published is not None and published["on"] <= day and (archived is None or archived["on"] > day)

    @staticmethod
    def status_at(row: Row, day: str) -> dict[str, Any] | None:
        steps = [s for s in row["steps"] if s["on"] <= day]
        return max(steps, key=lambda s: (s["on"], s["pos"])) if steps else None

    def _held(self, kind: str, start: str, end: str) -> dict[str, Row]:
        return {
            ref: a for ref, a in self.activities.items()
            if a["activity_kind"] == kind and a["held"] and start <= a["held"]["on"] <= end and not a["cancelled"]
        }

    def activities_held(self, kind: str, start: str, end: str) -> list[Evidence]:
        if self.country is not None:
            return []
        return [Evidence(a["held"]["pos"], ref, "Activity.Held") for ref, a in self._held(kind, start, end).items()]

    def _standing(self, kind: str, start: str, end: str) -> list[Row]:
        held = self._held(kind, start, end)
        standing = []
        for p in self.participations:
            if p["activity"] not in held:
                continue
            if self.country is not None and (p["participant_kind"] != "org" or not self._in_country(p["participant"])):
                continue
            status = self.status_at(p, end)
            if status is not None and status["status"] in STANDING:
                standing.append(p)
        return standing

    def participants(self, kind: str, start: str, end: str) -> list[Evidence]:
        return [Evidence(p["steps"][0]["pos"], p["ref"], "Participation.Registered") for p in self._standing(kind, start, end)]

    def distinct_people(self, kind: str, start: str, end: str) -> list[Evidence]:
        first: dict[str, Evidence] = {}
        for p in self._standing(kind, start, end):
            evidence = Evidence(p["steps"][0]["pos"], p["ref"], "Participation.Registered", p["participant"])
            if p["participant"] not in first or evidence.position < first[p["participant"]].position:
                first[p["participant"]] = evidence
        return list(first.values())

    def meetings_held(self, start: str, end: str) -> list[Evidence]:
        found = []
        for m in self.meetings:
            activity = self.activities.get(m["activity"])
            if activity is None or activity["activity_kind"] != "matchmaking":
                continue
            if self.country is not None and not (self._in_country(m["requester"]) or self._in_country(m["partner"])):
                continue
            held = [s for s in m["steps"] if s["status"] == "held" and start <= s["on"] <= end]
            if held:
                found.append(Evidence(held[0]["pos"], m["ref"], "BilateralMeeting.Held"))
        return found

    def cases_identified(self, start: str, end: str) -> list[Evidence]:
        return [
            Evidence(c["steps"][0]["pos"], c["ref"], "CooperationCase.Identified")
            for c in self.cases
            if start <= c["steps"][0]["on"] <= end and (self.country is None or self.country in c["countries"])
        ]

    def pitches(self, kind: str, start: str, end: str) -> list[Evidence]:
        return [
            Evidence(p["delivered"]["pos"], p["ref"], "Pitch.Delivered")
            for p in self.pitch_rows
            if start <= p["delivered"]["on"] <= end
            and self.activities.get(p["activity"], {}).get("activity_kind") == kind
            and self._in_country(p["org"])
        ]

    def publications(self, kind: str, start: str, end: str, *, with_updates: bool) -> list[Evidence]:
        found = []
        for p in self.publication_rows:
            if p["publication_kind"] != kind or (self.country is not None and p["country"] != self.country):
                continue
            stamps = [(p["published"], "Publication.Published")]
            if with_updates:
                stamps += [(u, "Publication.Updated") for u in p["updates"]]
            inside = sorted((s["pos"], label) for s, label in stamps if start <= s["on"] <= end)
            if inside:
                found.append(Evidence(inside[0][0], p["ref"], inside[0][1]))
        return found

    def regularly_updated(self, moment: date, window_days: int) -> tuple[int, list[Evidence]]:
        day, since = moment.isoformat(), (moment - timedelta(days=window_days)).isoformat()
        base = [o for o in self.orgs if self.on_platform(o, day)]
        fresh = []
        for o in base:
            updates = [u for u in o["updates"] if since < u["on"] <= day]
            if updates:
                fresh.append(Evidence(max(u["pos"] for u in updates), o["ref"], "ClusterOrganisation.Updated"))
        return len(base), fresh


def cross_border_partners(rows: dict[str, Row], settings: Settings) -> dict[str, int]:
    """For one country: partner countries in held meetings and identified cases of the period, with counts."""
    view = _View(rows, Settings(settings.start, settings.end))
    start, end, country = settings.start.isoformat(), settings.end.isoformat(), settings.country
    tally: Counter[str] = Counter()
    for m in view.meetings:
        held = [s for s in m["steps"] if s["status"] == "held" and start <= s["on"] <= end]
        if not held:
            continue
        countries = [view.profile_at(view.all_orgs[r], end)["country"] for r in (m["requester"], m["partner"]) if r in view.all_orgs]
        if country in countries:
            tally.update(c for c in countries if c != country)
    for c in view.cases:
        if start <= c["steps"][0]["on"] <= end and country in c["countries"]:
            tally.update(set(c["countries"]) - {country})
    return dict(sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))


def regions(rows: dict[str, Row], settings: Settings) -> dict[str, Any]:
    """For one country: profiles on the platform at the end of the period, by NUTS 2 region in the current classification."""
    view = _View(rows, settings)
    end = settings.end.isoformat()
    tally: Counter[str] = Counter()
    for org in view.orgs:
        if not view.on_platform(org, end):
            continue
        profile = view.profile_at(org, end)
        region = profile.get("region")
        if not region:
            tally["none"] += 1
            continue
        prefix = NUTS_PREFIX.get(profile["country"], profile["country"])
        tally[to_current(region, profile.get("nuts_version") or CURRENT)[: len(prefix) + 2]] += 1
    return {"classification": f"NUTS {CURRENT}", "level": 2, "profiles": dict(sorted(tally.items()))}


def chart_data(rows: dict[str, Row], settings: Settings, top: int = 20) -> dict[str, Any]:
    """What the HTML report draws: activities held per month, the cooperation funnel, cases by country pair (the first `top`)."""
    view = _View(rows, Settings(settings.start, settings.end))
    start, end = settings.start.isoformat(), settings.end.isoformat()
    # Every month of the period, so the time axis is even: a month without activity is a zero, not a gap.
    months: dict[str, Counter[str]] = {month: Counter() for month in months_between(settings.start, settings.end)}
    for activity in view.activities.values():
        held = activity["held"]
        if held and start <= held["on"] <= end:
            months[held["on"][:7]][activity["activity_kind"]] += 1
    identified = [c for c in view.cases if start <= c["steps"][0]["on"] <= end]
    reached = lambda case, stage: any(s["status"] == stage and s["on"] <= end for s in case["steps"])  # noqa: E731
    pairs: Counter[str] = Counter()
    for case in identified:
        countries = sorted(set(case["countries"]))
        pairs.update(f"{a}-{b}" for i, a in enumerate(countries) for b in countries[i + 1 :])
    return {
        "activity_by_month": {m: dict(sorted(kinds.items())) for m, kinds in months.items()},
        "funnel": {
            "meetings held": len(view.meetings_held(start, end)),
            "cases identified": len(identified),
            "agreements signed": sum(1 for case in identified if reached(case, "agreement_signed") or reached(case, "joint_project_launched")),
            "joint projects launched": sum(1 for case in identified if reached(case, "joint_project_launched")),
        },
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
            "total": len(figures.evidence[key]),
            "events": [{"position": e.position, "ref": e.ref, "event": e.event} for e in figures.evidence[key][:limit]],
        }
        for key in figures.values
        if key in figures.counts
    }
