"""Figures read their rows in passes, holding none of them beyond the one at hand, and list any figure's events a page at a time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from projections.figures import COUNTED, EvidencePage, RowSource, Settings, chart_data, compute, cross_border_partners, evidence_page, regions
from projections.platform import Row
from projections.reports import impact

PERIOD = Settings(date(2024, 1, 1), date(2025, 12, 31))
KEYS = [
    "cluster_organisations", "member_organisations_represented", "share_established_within_15_years", "most_represented_sector",
    "matchmaking_participants", "bilateral_meetings", "cooperation_cases_identified", "clusters_talks_held", "clusters_talks_participants",
    "booster_academy_professionals", "clusters_meet_regions_participants", "clusters_meet_regions_pitches", "c2labs_held",
    "c2lab_participants", "case_studies", "new_profiles_published", "share_regularly_updated_profiles_start",
    "share_regularly_updated_profiles_end", "green_transition_guides", "country_fact_sheets",
]
COUNTRIES = ("LV", "DE", "FR", "EE")
ACTIVITY_KINDS = ("matchmaking", "clusters_talk", "clusters_meet_regions", "c2lab", "booster_academy")


def generated_rows(size: int, seed: int = 7) -> Iterator[Row]:
    """`size` platform rows of every kind, the same at each call, made one at a time (nothing of them is kept here)."""
    pick = random.Random(seed)
    position = 0

    def stamp() -> dict[str, Any]:
        nonlocal position
        position += pick.randint(1, 3)
        return {"on": (date(2023, 3, 1) + timedelta(days=pick.randint(0, 1200))).isoformat(), "pos": position}

    orgs, activities = max(size // 20, 4), max(size // 100, len(ACTIVITY_KINDS))
    for i in range(orgs):
        registered = stamp()
        versions = [{**registered, "event": "ClusterOrganisation.Registered", "name": f"Cluster {i}", "country": COUNTRIES[i % 4],
                     "region": pick.choice([None, "LV00", "DE30", "FR10"]), "nuts_version": "2021", "sectors": ["ict"],
                     "ecosystems": pick.sample(["digital", "health", "energy", "mobility"], 2), "year_established": pick.randint(1990, 2020),
                     "members": {"smes": pick.randint(0, 90), "large_enterprises": pick.randint(0, 9), "research_organisations": pick.randint(0, 5)}}]
        updates = [stamp() for _ in range(pick.randint(0, 3))]
        versions += [{**versions[0], **u, "event": "ClusterOrganisation.Updated", "country": pick.choice(COUNTRIES)} for u in updates[:1]]
        yield {"kind": "org", "ref": f"ORG-{i}", "registered": registered, "published": stamp() if pick.random() < 0.9 else None,
               "archived": stamp() if pick.random() < 0.1 else None, "versions": versions, "updates": updates, "labels": []}
    for i in range(activities):
        yield {"kind": "activity", "ref": f"ACT-{i}", "activity_kind": ACTIVITY_KINDS[i % len(ACTIVITY_KINDS)], "title": f"Event {i}",
               "starts_on": "2024-01-01", "ends_on": "2024-01-02", "target_countries": [], "scheduled": stamp(),
               "held": stamp() if pick.random() < 0.8 else None, "cancelled": stamp() if pick.random() < 0.1 else None}
    for i in range(size - orgs - activities):
        activity, org, other = f"ACT-{pick.randrange(activities)}", f"ORG-{pick.randrange(orgs)}", f"ORG-{pick.randrange(orgs)}"
        roll = pick.random()
        if roll < 0.45:
            person = pick.random() < 0.5
            steps = [{**stamp(), "status": "registered"}] + [{**stamp(), "status": pick.choice(["attended", "cancelled"])} for _ in range(pick.randint(0, 1))]
            yield {"kind": "participation", "ref": f"PAR-{i}", "activity": activity, "participant": f"P-{pick.randrange(size // 10)}" if person else org,
                   "participant_kind": "person" if person else "org", "steps": steps}
        elif roll < 0.8:
            steps = [{**stamp(), "status": "requested"}] + [{**stamp(), "status": s} for s in pick.choice([[], ["accepted", "held"], ["declined"]])]
            yield {"kind": "meeting", "ref": f"MEET-{i}", "activity": activity, "requester": org, "partner": other, "steps": steps}
        elif roll < 0.9:
            steps = [{**stamp(), "status": "identified"}] + [{**stamp(), "status": s} for s in pick.choice([[], ["agreement_signed"], ["agreement_signed", "joint_project_launched"], ["abandoned"]])]
            yield {"kind": "case", "ref": f"CASE-{i}", "orgs": [org, other], "countries": pick.sample(COUNTRIES, pick.randint(1, 3)),
                   "source_kind": "meeting", "source": None, "steps": steps}
        elif roll < 0.97:
            yield {"kind": "pitch", "ref": f"PITCH-{i}", "activity": activity, "org": org, "delivered": stamp()}
        else:
            yield {"kind": "publication", "ref": f"PUB-{i}", "publication_kind": pick.choice(["case_study", "green_transition_guide", "country_fact_sheet"]),
                   "country": pick.choice(COUNTRIES), "published": stamp(), "updates": [stamp() for _ in range(pick.randint(0, 2))]}


class CountedRows:
    """A `RowSource` of generated rows that knows the most rows alive at one time (rows are freed as soon as nobody holds them)."""

    def __init__(self, size: int) -> None:
        self.size, self.alive, self.most_alive, self.passes = size, 0, 0, 0

    def __call__(self) -> Iterator[Row]:
        self.passes += 1
        for row in generated_rows(self.size):
            yield _Counted(self, row)


class _Counted(dict[str, Any]):
    def __init__(self, rows: CountedRows, row: Row) -> None:
        super().__init__(row)
        self.rows = rows
        rows.alive += 1
        rows.most_alive = max(rows.most_alive, rows.alive)

    def __del__(self) -> None:
        self.rows.alive -= 1


@pytest.mark.parametrize("country", [None, "LV"])
def test_a_report_holds_a_few_rows_at_a_time_never_all_of_them(country: str | None) -> None:
    rows = CountedRows(20_000)
    settings = Settings(PERIOD.start, PERIOD.end, country=country)
    report, figures = impact(rows, settings, None, charts=True)
    evidence_page(rows, settings, "bilateral_meetings", after=0, limit=10)
    assert rows.most_alive <= 10, f"{rows.most_alive} of {rows.size} rows were held at once"
    assert report["figures"]["bilateral_meetings"] > 50 and all(len(e) <= 50 for e in figures.evidence.values())


def test_figures_do_not_depend_on_the_order_of_the_rows() -> None:
    forward = list(generated_rows(5_000))
    backward = forward[::-1]
    shuffled = forward[:]
    random.Random(3).shuffle(shuffled)
    for settings in (PERIOD, Settings(PERIOD.start, PERIOD.end, country="DE")):
        expected = compute(lambda: forward, settings)
        for rows in (backward, shuffled):
            again = compute(lambda: rows, settings)  # noqa: B023
            assert (again.values, again.evidence, again.totals) == (expected.values, expected.evidence, expected.totals)
        assert cross_border_partners(lambda: shuffled, settings) == cross_border_partners(lambda: forward, settings)
        assert regions(lambda: shuffled, settings) == regions(lambda: forward, settings)
        assert chart_data(lambda: shuffled, settings) == chart_data(lambda: forward, settings)


def pages(source: RowSource, settings: Settings, key: str, limit: int) -> Iterator[EvidencePage]:
    after = 0
    while True:
        page = evidence_page(source, settings, key, after=after, limit=limit)
        yield page
        if not page.more:
            return
        after = page.events[-1].position


@pytest.mark.parametrize("country", [None, "FR"])
def test_the_pages_of_a_figure_make_up_its_whole_evidence_and_a_count_lists_as_many_events_as_it_counts(country: str | None) -> None:
    rows = list(generated_rows(4_000))
    settings = Settings(PERIOD.start, PERIOD.end, country=country)
    whole = compute(lambda: rows, settings, limit=len(rows))
    kept = compute(lambda: rows, settings)
    for key in KEYS:
        listed = list(pages(lambda: rows, settings, key, limit=37))
        events = [e for page in listed for e in page.events]
        assert events == whole.evidence[key] == sorted(whole.evidence[key], key=lambda e: e.position), key
        assert all(page.total == whole.totals[key] == len(events) and page.value == whole.values[key] for page in listed), key
        assert kept.evidence[key] == events[:50] and kept.totals[key] == len(events), key
        if key in COUNTED:
            assert whole.values[key] == len(events), key
    assert sum(e.value for e in whole.evidence["member_organisations_represented"]) == whole.values["member_organisations_represented"]
    assert whole.values["bilateral_meetings"] > 37 or country is not None
