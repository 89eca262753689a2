"""Impact figures on a hand-written history with known answers, as-of reports, trace and rebuilds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner

import bootstrap
from cli.main import ledger as ledger_cli
from projections import runner
from projections.figures import Settings, compute, meets, published_figures
from projections.reports import Sources, impact, platform_rows
from service_layer import commands as c
from service_layer.ledger import Ledger


class Clock:
    """A recorded-time clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def org(ref: str, country: str, region: str, ecosystems: tuple[str, ...], year: int, smes: int, at: str, **members: int) -> c.RegisterOrg:
    return c.RegisterOrg(org=ref, name=ref, country=country, region=region, ecosystems=ecosystems, year_established=year,
                         members={"smes": smes, **members}, occurred_at=at)


def schedule(ref: str, kind: str, starts: str, at: str, online: bool = False) -> c.ScheduleActivity:
    return c.ScheduleActivity(activity=ref, kind=kind, title=ref, starts_on=starts, ends_on=starts, online=online,
                              place=None if online else "Brussels", occurred_at=at)


def join(activity: str, at: str, org_ref: str | None = None, person: str | None = None) -> c.RegisterParticipant:
    return c.RegisterParticipant(activity=activity, org=org_ref, person=person, occurred_at=at)


KNOWN_HISTORY: list[c.Command] = [
    org("A", "IT", "ITC4", ("digital", "health"), 2015, 10, "2023-05-01", large_enterprises=2, research_organisations=1, universities=4),
    org("B", "DE", "DE3", ("digital",), 1990, 20, "2023-05-01"),
    org("E", "ES", "ES30", ("tourism",), 2000, 50, "2023-05-01"),
    c.PublishOrg(org="A", occurred_at="2023-05-02"),
    c.PublishOrg(org="B", occurred_at="2023-05-02"),
    c.PublishOrg(org="E", occurred_at="2023-05-02"),
    c.UpdateOrg(org="A", name="A renamed", occurred_at="2023-06-01"),
    org("C", "FR", "FR10", ("digital", "health"), 2012, 5, "2024-03-01"),
    c.PublishOrg(org="C", occurred_at="2024-03-01"),
    org("D", "PL", "PL91", ("digital",), 2020, 99, "2024-04-01"),
    # Updated twice in the last twelve months: still one regularly updated profile.
    c.UpdateOrg(org="A", members={"smes": 30, "large_enterprises": 2, "research_organisations": 1}, occurred_at="2025-03-01"),
    c.UpdateOrg(org="A", name="A again", occurred_at="2025-04-01"),
    c.ArchiveOrg(org="E", occurred_at="2025-06-01"),
    c.RegisterPerson(person="P-0001", name="One", email="one@example.org", occurred_at="2023-01-01"),
    c.RegisterPerson(person="P-0002", name="Two", email="two@example.org", occurred_at="2023-01-01"),
    c.RegisterPerson(person="P-0003", name="Three", email="three@example.org", occurred_at="2023-01-01"),
    # A matchmaking event: A registered twice, C registered then cancelled; one meeting held, one only requested.
    schedule("MM1", "matchmaking", "2024-03-02", "2024-01-10"),
    join("MM1", "2024-02-01", org_ref="A"), join("MM1", "2024-02-02", org_ref="A"), join("MM1", "2024-02-01", org_ref="B"),
    join("MM1", "2024-03-01", org_ref="C"), c.CancelRegistration(activity="MM1", org="C", occurred_at="2024-03-01T12:00:00"),
    c.RequestMeeting(meeting="M1", activity="MM1", requester="A", partner="B", occurred_at="2024-02-20"),
    c.RequestMeeting(meeting="M2", activity="MM1", requester="B", partner="A", occurred_at="2024-02-21"),
    c.HoldMeeting(meeting="M1", occurred_at="2024-03-02T10:00:00"),
    c.HoldActivity(activity="MM1", occurred_at="2024-03-02T18:00:00"),
    # An activity cancelled after registrations.
    schedule("MM2", "matchmaking", "2024-10-01", "2024-06-01"),
    join("MM2", "2024-07-01", org_ref="A"), join("MM2", "2024-07-01", org_ref="B"),
    c.CancelActivity(activity="MM2", reason="venue lost", occurred_at="2024-09-01"),
    # EU Clusters Talks: one before the period, one in it with a cancelled registration.
    schedule("T0", "clusters_talk", "2023-12-01", "2023-11-01", online=True), join("T0", "2023-11-20", person="P-0001"),
    c.HoldActivity(activity="T0", occurred_at="2023-12-01"),
    schedule("T1", "clusters_talk", "2024-05-01", "2024-04-01", online=True),
    join("T1", "2024-04-10", person="P-0001"), join("T1", "2024-04-10", person="P-0002"), join("T1", "2024-04-10", person="P-0003"),
    c.CancelRegistration(activity="T1", person="P-0003", occurred_at="2024-04-20"), c.AttendActivity(activity="T1", person="P-0001", occurred_at="2024-05-01"),
    c.HoldActivity(activity="T1", occurred_at="2024-05-01"),
    # Two Booster Academy cohorts sharing one trainee.
    schedule("AC1", "booster_academy", "2024-06-01", "2024-04-01"), join("AC1", "2024-05-01", person="P-0001"), join("AC1", "2024-05-01", person="P-0002"),
    c.HoldActivity(activity="AC1", occurred_at="2024-09-01"),
    schedule("AC2", "booster_academy", "2025-06-01", "2025-04-01"), join("AC2", "2025-05-01", person="P-0001"), join("AC2", "2025-05-01", person="P-0003"),
    c.HoldActivity(activity="AC2", occurred_at="2025-09-01"),
    # Clusters meet Regions with two pitches; a C2Lab.
    schedule("R1", "clusters_meet_regions", "2025-05-02", "2025-03-01"), join("R1", "2025-04-01", person="P-0001"),
    join("R1", "2025-04-01", person="P-0002"), join("R1", "2025-04-01", org_ref="A"),
    c.DeliverPitch(pitch="R1-P1", activity="R1", org="A", title="x", occurred_at="2025-05-02"),
    c.DeliverPitch(pitch="R1-P2", activity="R1", org="A", title="y", occurred_at="2025-05-02"),
    c.HoldActivity(activity="R1", occurred_at="2025-05-02"),
    schedule("L1", "c2lab", "2025-02-01", "2024-12-01"), join("L1", "2025-01-10", org_ref="A"), join("L1", "2025-01-10", org_ref="B"),
    c.HoldActivity(activity="L1", occurred_at="2025-02-01"),
    # Cases: one identified in 2023 and advanced in 2024; two identified in the period, one later abandoned.
    schedule("MS0", "mission", "2023-10-01", "2023-08-01"),
    c.IdentifyCase(case="K1", orgs=("A", "B"), source_kind="mission", source="MS0", title="k1", occurred_at="2023-11-01"),
    c.AdvanceCase(case="K1", stage="exploring", occurred_at="2024-02-01"),
    c.IdentifyCase(case="K2", orgs=("A", "B"), source_kind="meeting", source="M1", title="k2", occurred_at="2024-03-10"),
    c.IdentifyCase(case="K3", orgs=("A", "B", "C"), source_kind="lab", source="L1", title="k3", occurred_at="2025-02-05"),
    c.AbandonCase(case="K3", occurred_at="2025-07-01"),
    # Publications.
    c.PublishPublication(publication="CS0", kind="case_study", title="old", occurred_at="2023-06-01"),
    c.PublishPublication(publication="CS1", kind="case_study", title="new", occurred_at="2024-06-01"),
    c.PublishPublication(publication="G1", kind="green_transition_guide", title="g", occurred_at="2025-01-01"),
    c.PublishPublication(publication="FS-IT", kind="country_fact_sheet", title="it", country="IT", occurred_at="2023-01-01"),
    c.UpdatePublication(publication="FS-IT", note="figures refreshed", occurred_at="2024-02-01"),
    c.PublishPublication(publication="FS-DE", kind="country_fact_sheet", title="de", country="DE", occurred_at="2024-07-01"),
    c.UpdatePublication(publication="FS-DE", note="figures refreshed", occurred_at="2024-08-01"),
    c.PublishPublication(publication="FS-FR", kind="country_fact_sheet", title="fr", country="FR", occurred_at="2022-01-01"),
]

KNOWN_FIGURES = {
    "cluster_organisations": 3,  # A, B, C; E archived, D never published
    "member_organisations_represented": 33 + 20 + 5,  # A's update of 2025 counts, universities do not
    "share_established_within_15_years": 0.6667,  # A (2015) and C (2012) of A, B, C
    "most_represented_sector": "digital",
    "matchmaking_participants": 2,  # A once, B; C cancelled; MM2 was cancelled
    "bilateral_meetings": 1,  # M2 was only requested
    "cooperation_cases_identified": 2,  # K2, K3; K1 is from 2023
    "clusters_talks_held": 1,
    "clusters_talks_participants": 2,
    "booster_academy_professionals": 3,  # P1 in both cohorts counts once
    "clusters_meet_regions_participants": 3,
    "clusters_meet_regions_pitches": 2,
    "c2labs_held": 1,
    "c2lab_participants": 2,
    "case_studies": 1,
    "new_profiles_published": 1,
    "share_regularly_updated_profiles_start": 0.3333,  # A of A, B, E on 2024-01-01
    "share_regularly_updated_profiles_end": 0.3333,  # A of A, B, C
    "green_transition_guides": 1,
    "country_fact_sheets": 2,  # FS-IT updated, FS-DE published; FS-FR untouched
}
PERIOD = Settings(date(2024, 1, 1), date(2025, 12, 31))


@pytest.fixture
def known(db_url: str) -> Iterator[tuple[Ledger, Sources]]:
    ledger = bootstrap.build_ledger(db_url)
    ledger.execute(KNOWN_HISTORY)
    store = bootstrap.build_projection_store(db_url)
    yield ledger, Sources(ledger.recorder, ledger.mapper, store)
    store.close()
    ledger.close()


def test_every_figure_on_a_hand_written_history(known: tuple[Ledger, Sources]) -> None:
    _, sources = known
    report, _ = impact(platform_rows(sources), PERIOD, None)
    assert report["figures"] == KNOWN_FIGURES


def test_the_json_report_names_every_published_key_and_its_rules(known: tuple[Ledger, Sources], db_url: str) -> None:
    result = CliRunner().invoke(ledger_cli, ["report", "impact", "--from", "2024-01-01", "--to", "2025-12-31", "--format", "json", "--db", db_url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report["figures"]) == [f["key"] for f in published_figures()["figures"]]
    assert report["period"] == {"from": "2024-01-01", "to": "2025-12-31"} and report["as_of"] is None
    assert report["assumptions"]["regularly_updated_window_days"] == 365
    assert report["figures"] == KNOWN_FIGURES


def test_the_update_window_is_a_parameter(known: tuple[Ledger, Sources]) -> None:
    _, sources = known
    report, _ = impact(platform_rows(sources), Settings(date(2024, 1, 1), date(2025, 12, 31), update_window_days=200), None)
    assert report["figures"]["share_regularly_updated_profiles_start"] == 0.0  # A's update of 2023-06-01 is 214 days old
    assert report["assumptions"]["regularly_updated_window_days"] == 200


def test_a_country_fact_sheet_restricts_figures_and_names_partners(known: tuple[Ledger, Sources], db_url: str) -> None:
    result = CliRunner().invoke(ledger_cli, ["report", "country", "it", "--format", "json", "--db", db_url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["country"] == "IT"
    assert report["figures"]["cluster_organisations"] == 1
    assert report["figures"]["member_organisations_represented"] == 33
    assert report["figures"]["cooperation_cases_identified"] == 2
    assert report["figures"]["country_fact_sheets"] == 1
    assert report["cross_border_partners"] == {"DE": 3, "FR": 1}


COUNTS = [k for k, v in KNOWN_FIGURES.items() if isinstance(v, int) and k != "member_organisations_represented"]


@pytest.mark.parametrize("key", COUNTS)
def test_trace_lists_as_many_events_as_a_count_figure(known: tuple[Ledger, Sources], db_url: str, key: str) -> None:
    result = CliRunner().invoke(ledger_cli, ["trace", key, "--format", "json", "--db", db_url])
    assert result.exit_code == 0, result.output
    traced = json.loads(result.stdout)
    assert traced["is_count"] and traced["value"] == KNOWN_FIGURES[key] == len(traced["events"])
    ledger, _ = known
    positions = {n.id: n for n in ledger.recorder.select_notifications(start=1, limit=10_000)}
    for entry in traced["events"]:
        event = ledger.mapper.to_domain_event(positions[entry["position"]])
        assert type(event).__qualname__ == entry["event"]


def test_trace_of_a_sum_adds_up_to_the_figure(known: tuple[Ledger, Sources], db_url: str) -> None:
    result = CliRunner().invoke(ledger_cli, ["trace", "member_organisations_represented", "--format", "json", "--db", db_url])
    traced = json.loads(result.stdout)
    assert not traced["is_count"]
    assert sum(e["value"] for e in traced["events"]) == traced["value"] == KNOWN_FIGURES["member_organisations_represented"]
    assert {(e["ref"], e["event"]) for e in traced["events"]} == {
        ("A", "ClusterOrganisation.Updated"), ("B", "ClusterOrganisation.Registered"), ("C", "ClusterOrganisation.Registered")}


def test_trace_names_the_meeting_that_was_held(known: tuple[Ledger, Sources], db_url: str) -> None:
    result = CliRunner().invoke(ledger_cli, ["trace", "bilateral_meetings", "--db", db_url])
    assert "M1" in result.output and "M2" not in result.output
    assert result.output.strip().endswith("bilateral_meetings = 1 (1 event listed)")


def test_an_unknown_figure_key_is_named(db_url: str) -> None:
    result = CliRunner().invoke(ledger_cli, ["trace", "happiness", "--db", db_url])
    assert result.exit_code == 1 and "key: 'happiness': not a figure" in result.output


def test_a_back_dated_correction_changes_the_current_report_but_not_the_issued_one(db_url: str) -> None:
    url = db_url
    clock = Clock(datetime(2026, 1, 10, 9, tzinfo=timezone.utc))
    ledger = bootstrap.build_ledger(url, clock=clock)
    ledger.execute(KNOWN_HISTORY)
    issued = clock.now + timedelta(hours=1)
    clock.now = datetime(2026, 2, 1, 9, tzinfo=timezone.utc)
    # Learnt in February: B had cancelled its MM1 registration before the event.
    ledger.execute([c.CancelRegistration(activity="MM1", org="B", occurred_at="2024-02-25")])
    ledger.close()

    def report(*extra: str) -> dict[str, Any]:
        result = CliRunner().invoke(ledger_cli, ["report", "impact", "--format", "json", "--db", url, *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    as_issued = report("--as-of", issued.isoformat())
    current = report()
    assert as_issued["figures"] == KNOWN_FIGURES
    assert as_issued["as_of"] == issued.isoformat()
    assert current["figures"]["matchmaking_participants"] == KNOWN_FIGURES["matchmaking_participants"] - 1
    before_anything = report("--as-of", "2026-01-01T00:00:00Z")
    assert before_anything["figures"]["cluster_organisations"] == 0


def test_catching_up_twice_applies_nothing_twice(known: tuple[Ledger, Sources]) -> None:
    ledger, sources = known
    first = runner.catch_up(sources.recorder, sources.mapper, sources.store)
    rows = sources.store.raw_rows(runner.PROJECTION)
    assert first == len(KNOWN_HISTORY) + 1  # and the test writer's authorization
    assert runner.catch_up(sources.recorder, sources.mapper, sources.store) == 0
    assert sources.store.raw_rows(runner.PROJECTION) == rows
    ledger.execute([c.UpdatePublication(publication="G1", note="figures refreshed", occurred_at="2025-02-01")])
    assert runner.catch_up(sources.recorder, sources.mapper, sources.store) == 1


def test_project_command_reports_what_it_applied(known: tuple[Ledger, Sources], db_url: str) -> None:
    first = CliRunner().invoke(ledger_cli, ["project", "--db", db_url])
    assert first.exit_code == 0 and f"applied {len(KNOWN_HISTORY) + 1} events" in first.output
    again = CliRunner().invoke(ledger_cli, ["project", "--db", db_url])
    assert "applied 0 events" in again.output
    rebuilt = CliRunner().invoke(ledger_cli, ["project", "--rebuild", "--db", db_url])
    assert f"rebuilt: applied {len(KNOWN_HISTORY) + 1} events" in rebuilt.output


def test_figures_come_from_folded_rows_not_from_stored_ones(known: tuple[Ledger, Sources]) -> None:
    ledger, _ = known
    events = ((n.originator_id.hex, ledger.mapper.to_domain_event(n), n.id) for n in ledger.recorder.select_notifications(start=1, limit=10_000))
    rows = runner.fold_in_memory(events)
    assert compute(lambda: rows.values(), PERIOD).values == KNOWN_FIGURES


@pytest.mark.parametrize(("value", "published", "qualifier", "ok"), [
    (1301, 1300, "more than", True), (1300, 1300, "more than", False), (95, 95, "exactly", True), (94, 95, "exactly", False),
    (0.21, 0.20, "about", True), (0.25, 0.20, "about", False), (290, 300, "close to", True), (280, 300, "close to", False),
])
def test_qualifiers(value: float, published: float, qualifier: str, ok: bool) -> None:
    assert meets(value, published, qualifier) is ok


def test_audit_log_filters_by_actor_type_and_time(known: tuple[Ledger, Sources], db_url: str) -> None:
    ledger, _ = known
    ledger.execute([c.HoldMeeting(meeting="M2", occurred_at="2024-03-02T11:00:00", actor="auditor.check")])
    result = CliRunner().invoke(ledger_cli, ["audit", "log", "--actor", "auditor.check", "--format", "json", "--db", db_url])
    entries = json.loads(result.stdout)
    assert [(e["aggregate"], e["type"], e["actor"]) for e in entries] == [("M2", "BilateralMeeting.Held", "auditor.check")]
    held = CliRunner().invoke(ledger_cli, ["audit", "log", "--type", "Held", "--format", "json", "--db", db_url])
    assert {e["aggregate"] for e in json.loads(held.stdout)} >= {"M1", "M2", "MM1", "T1"}
    future = CliRunner().invoke(ledger_cli, ["audit", "log", "--since", "2999-01-01", "--db", db_url])
    assert future.output.strip().endswith("0 events")
