"""Every business rule, allowed and refused, on the in-memory store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain import errors
from domain.model import BilateralMeeting, ClusterOrganisation, CooperationCase, Participation
from domain.base import ref_id
from service_layer import commands as c
from service_layer.ledger import BatchFailed, Ledger
from tests.builders import activity, matchmaking_with_two_orgs, new_ref, org, register


def refused(ledger: Ledger, commands: list[c.Command], error: type[Exception]) -> BatchFailed:
    before = ledger.recorder.max_notification_id()
    with pytest.raises(BatchFailed) as caught:
        ledger.execute(commands)
    assert [type(f.error) for f in caught.value.failures] == [error]
    assert ledger.recorder.max_notification_id() == before
    return caught.value


def held_meeting(ledger: Ledger) -> tuple[str, str, str, str]:
    setup, event, a, b = matchmaking_with_two_orgs()
    meeting = new_ref("M")
    ledger.execute([*setup, c.RequestMeeting(meeting=meeting, activity=event, requester=a, partner=b, occurred_at="2024-02-10")])
    return meeting, event, a, b


def test_registered_profile_holds_its_fields(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref, members={"smes": 7, "universities": 1})])
    profile = ledger_app.repository.get(ref_id(ref))
    assert isinstance(profile, ClusterOrganisation)
    assert (profile.country, profile.region, profile.members.smes, profile.members.universities) == ("IT", "ITC4", 7, 1)


def test_region_must_belong_to_the_country(ledger_app: Ledger) -> None:
    failure = refused(ledger_app, [org(new_ref("ORG"), country="DE", region="ITC4")], errors.RegionNotInCountry)
    assert "ITC4" in str(failure)
    ledger_app.execute([org(new_ref("ORG"), country="DE", region="DE3")])


def test_greek_regions_use_the_nuts_prefix(ledger_app: Ledger) -> None:
    ledger_app.execute([org(new_ref("ORG"), country="GR", region="EL30")])
    refused(ledger_app, [org(new_ref("ORG"), country="GR", region="XX99")], errors.InvalidValue)


def test_facts_dated_in_the_future_are_refused(ledger_app: Ledger) -> None:
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    refused(ledger_app, [org(new_ref("ORG"), occurred_at=tomorrow)], errors.FutureDate)
    ledger_app.execute([org(new_ref("ORG"), occurred_at=datetime.now(timezone.utc) - timedelta(minutes=1))])


def test_an_activity_may_be_scheduled_for_a_future_date(ledger_app: Ledger) -> None:
    next_year = datetime.now(timezone.utc).date() + timedelta(days=365)
    ledger_app.execute([activity(new_ref("MM"), starts_on=next_year, ends_on=next_year)])


def test_the_same_command_twice_writes_once(ledger_app: Ledger) -> None:
    command = org(new_ref("ORG"))
    first = ledger_app.execute([command])
    second = ledger_app.execute([command])
    assert (first.events, second.events, second.repeated) == (1, 0, 1)


def test_another_registration_under_a_taken_reference_is_refused(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref)])
    refused(ledger_app, [org(ref, name="Someone else")], errors.AlreadyExists)


def test_an_archived_profile_refuses_updates(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref), c.UpdateOrg(org=ref, name="Renamed", occurred_at="2024-02-01")])
    ledger_app.execute([c.ArchiveOrg(org=ref, occurred_at="2024-03-01")])
    refused(ledger_app, [c.UpdateOrg(org=ref, name="Again", occurred_at="2024-04-01")], errors.ProfileArchived)


def test_an_update_must_change_something(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref)])
    refused(ledger_app, [c.UpdateOrg(org=ref, country="IT", occurred_at="2024-02-01")], errors.NothingChanged)


def test_moving_country_needs_a_region_of_the_new_country(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref)])
    refused(ledger_app, [c.UpdateOrg(org=ref, country="FR", occurred_at="2024-02-01")], errors.RegionNotInCountry)
    ledger_app.execute([c.UpdateOrg(org=ref, country="FR", region="FR10", occurred_at="2024-02-01")])


def test_a_label_must_be_valid_after_its_award(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref)])
    refused(ledger_app, [c.AwardLabel(org=ref, level="gold", valid_until="2024-01-01", occurred_at="2024-02-01")], errors.InvalidValue)
    ledger_app.execute([c.AwardLabel(org=ref, level="gold", valid_until="2026-01-31", occurred_at="2024-02-01")])


def test_a_held_meeting_needs_both_organisations_registered(ledger_app: Ledger) -> None:
    meeting, event, a, _ = held_meeting(ledger_app)
    ledger_app.execute([c.CancelRegistration(activity=event, org=a, occurred_at="2024-02-20")])
    refused(ledger_app, [c.HoldMeeting(meeting=meeting, occurred_at="2024-03-01")], errors.NotRegistered)
    ledger_app.execute([c.RegisterParticipant(activity=event, org=a, occurred_at="2024-02-21")])
    ledger_app.execute([c.HoldMeeting(meeting=meeting, occurred_at="2024-03-01")])
    assert ledger_app.repository.get(ref_id(meeting)).status == "held"


def test_a_meeting_needs_registered_organisations_to_be_requested(ledger_app: Ledger) -> None:
    setup, event, a, _ = matchmaking_with_two_orgs()
    outsider = new_ref("ORG")
    ledger_app.execute([*setup, org(outsider)])
    refused(ledger_app, [c.RequestMeeting(meeting=new_ref("M"), activity=event, requester=a, partner=outsider, occurred_at="2024-02-10")], errors.NotRegistered)


def test_a_cancelled_meeting_cannot_be_held(ledger_app: Ledger) -> None:
    meeting, *_ = held_meeting(ledger_app)
    ledger_app.execute([c.AcceptMeeting(meeting=meeting, occurred_at="2024-02-11")])
    ledger_app.execute([c.CancelMeeting(meeting=meeting, outcome="cancelled", occurred_at="2024-02-12")])
    refused(ledger_app, [c.HoldMeeting(meeting=meeting, occurred_at="2024-03-01")], errors.MeetingClosed)


def test_a_declined_meeting_cannot_be_accepted(ledger_app: Ledger) -> None:
    meeting, *_ = held_meeting(ledger_app)
    ledger_app.execute([c.DeclineMeeting(meeting=meeting, occurred_at="2024-02-11")])
    refused(ledger_app, [c.AcceptMeeting(meeting=meeting, occurred_at="2024-02-12")], errors.MeetingClosed)


def test_meetings_happen_only_at_matchmaking_events_and_missions(ledger_app: Ledger) -> None:
    a, b, talk = new_ref("ORG"), new_ref("ORG"), new_ref("TALK")
    ledger_app.execute([org(a), org(b), activity(talk, kind="clusters_talk", place=None, online=True), register(talk, a), register(talk, b)])
    refused(ledger_app, [c.RequestMeeting(meeting=new_ref("M"), activity=talk, requester=a, partner=b, occurred_at="2024-02-10")], errors.WrongActivityKind)


def test_a_cancelled_activity_takes_no_registrations(ledger_app: Ledger) -> None:
    a, event = new_ref("ORG"), new_ref("MM")
    ledger_app.execute([org(a), activity(event), c.CancelActivity(activity=event, occurred_at="2024-01-20")])
    refused(ledger_app, [register(event, a)], errors.ActivityClosed)


def test_a_repeated_registration_is_recorded_and_the_participant_stays_registered(ledger_app: Ledger) -> None:
    setup, event, a, _ = matchmaking_with_two_orgs()
    ledger_app.execute(setup)
    outcome = ledger_app.execute([register(event, a, at="2024-02-05")])
    participation = ledger_app.repository.get(ref_id(f"{event}/{a}"))
    assert outcome.events == 1 and isinstance(participation, Participation) and participation.is_registered


def test_attending_after_cancelling_is_refused(ledger_app: Ledger) -> None:
    setup, event, a, _ = matchmaking_with_two_orgs()
    ledger_app.execute([*setup, c.CancelRegistration(activity=event, org=a, occurred_at="2024-02-02")])
    refused(ledger_app, [c.AttendActivity(activity=event, org=a, occurred_at="2024-03-01")], errors.NotRegistered)


def case_from_meeting(ledger: Ledger) -> str:
    meeting, _, a, b = held_meeting(ledger)
    case = new_ref("CASE")
    ledger.execute([c.IdentifyCase(case=case, orgs=(a, b), source_kind="meeting", source=meeting, title="Hydrogen valley", occurred_at="2024-03-05")])
    return case


def test_a_case_advances_forward_to_a_joint_project(ledger_app: Ledger) -> None:
    case = case_from_meeting(ledger_app)
    ledger_app.execute([
        c.AdvanceCase(case=case, stage="exploring", occurred_at="2024-04-01"),
        c.AdvanceCase(case=case, stage="joint_project_launched", project="Horizon Europe H2V", occurred_at="2024-09-01"),
    ])
    assert ledger_app.repository.get(ref_id(case)).stage == "joint_project_launched"
    refused(ledger_app, [c.AdvanceCase(case=case, stage="agreement_signed", occurred_at="2024-10-01")], errors.StageNotForward)


def test_a_case_cannot_advance_after_it_was_abandoned(ledger_app: Ledger) -> None:
    case = case_from_meeting(ledger_app)
    ledger_app.execute([c.AbandonCase(case=case, reason="no funding", occurred_at="2024-04-01")])
    refused(ledger_app, [c.AdvanceCase(case=case, stage="exploring", occurred_at="2024-05-01")], errors.CaseClosed)


def test_a_case_needs_two_different_organisations(ledger_app: Ledger) -> None:
    meeting, _, a, _ = held_meeting(ledger_app)
    refused(ledger_app, [c.IdentifyCase(case=new_ref("CASE"), orgs=(a, a), source_kind="meeting", source=meeting, title="x", occurred_at="2024-03-05")], errors.InvalidValue)


def test_a_case_from_a_mission_needs_a_mission(ledger_app: Ledger) -> None:
    a, b, lab, mission = new_ref("ORG"), new_ref("ORG"), new_ref("LAB"), new_ref("MISSION")
    ledger_app.execute([org(a), org(b), activity(lab, kind="c2lab"), activity(mission, kind="mission", place="Casablanca", target_countries=("MA",))])
    refused(ledger_app, [c.IdentifyCase(case=new_ref("CASE"), orgs=(a, b), source_kind="mission", source=lab, title="x", occurred_at="2024-03-05")], errors.WrongActivityKind)
    ledger_app.execute([c.IdentifyCase(case=new_ref("CASE"), orgs=(a, b), source_kind="mission", source=mission, title="x", occurred_at="2024-03-05")])


def test_unknown_references_are_named(ledger_app: Ledger) -> None:
    failure = refused(ledger_app, [c.PublishOrg(org="ORG-NOWHERE", occurred_at="2024-01-01")], errors.UnknownReference)
    assert "ORG-NOWHERE" in str(failure)


def test_a_reference_of_another_kind_is_not_mistaken(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref)])
    refused(ledger_app, [c.HoldActivity(activity=ref, occurred_at="2024-02-01")], errors.UnknownReference)


def test_a_country_fact_sheet_needs_a_country(ledger_app: Ledger) -> None:
    refused(ledger_app, [c.PublishPublication(publication=new_ref("FS"), kind="country_fact_sheet", title="x", occurred_at="2024-02-01")], errors.InvalidValue)
    ledger_app.execute([c.PublishPublication(publication=new_ref("FS"), kind="country_fact_sheet", title="x", country="LV", occurred_at="2024-02-01")])


def test_person_events_hold_no_personal_data(ledger_app: Ledger) -> None:
    person = new_ref("P")
    ledger_app.execute([c.RegisterPerson(person=person, name="Ada Lovelace", email="ada@example.org", occurred_at="2024-01-02")])
    stored = ledger_app.recorder.select_notifications(start=1, limit=10_000)
    assert stored and not any(b"Ada" in n.state or b"ada@example.org" in n.state for n in stored)


def test_a_failing_command_leaves_the_whole_batch_unwritten(ledger_app: Ledger) -> None:
    good, bad = org(new_ref("ORG")), c.PublishOrg(org="ORG-MISSING", occurred_at="2024-01-01")
    failure = refused(ledger_app, [good, bad], errors.UnknownReference)
    assert failure.failures[0].index == 1


def test_meeting_history_keeps_every_step(ledger_app: Ledger) -> None:
    meeting, *_ = held_meeting(ledger_app)
    ledger_app.execute([c.AcceptMeeting(meeting=meeting, occurred_at="2024-02-11"), c.HoldMeeting(meeting=meeting, occurred_at="2024-03-01")])
    events = ledger_app.aggregate_events(meeting)
    assert [type(e).__name__ for e in events] == ["Requested", "Accepted", "Held"]
    assert isinstance(ledger_app.repository.get(ref_id(meeting)), BilateralMeeting)
    assert all(e.actor and e.timestamp >= e.occurred_at for e in events)
    assert isinstance(ledger_app.repository.get(ref_id(case_from_meeting(ledger_app))), CooperationCase)


def test_a_profile_is_published_once(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref), c.PublishOrg(org=ref, occurred_at="2024-01-11")])
    refused(ledger_app, [c.PublishOrg(org=ref, occurred_at="2024-06-01")], errors.AlreadyPublished)


def test_a_key_reused_for_another_action_is_refused(ledger_app: Ledger) -> None:
    ref = new_ref("ORG")
    ledger_app.execute([org(ref), c.UpdateOrg(org=ref, name="B", occurred_at="2024-02-01", key="K1")])
    assert ledger_app.execute([c.UpdateOrg(org=ref, name="B", occurred_at="2024-02-01", key="K1")]).events == 0
    failure = refused(ledger_app, [c.UpdateOrg(org=ref, name="C", occurred_at="2024-02-02", key="K1")], errors.InvalidValue)
    assert "key: 'K1'" in str(failure)
    refused(ledger_app, [c.ArchiveOrg(org=ref, occurred_at="2024-02-03", key="K1")], errors.InvalidValue)


def test_repeating_a_registration_for_a_since_cancelled_activity_writes_nothing(ledger_app: Ledger) -> None:
    a, event = new_ref("ORG"), new_ref("MM")
    history = [org(a), activity(event), register(event, a), c.CancelActivity(activity=event, occurred_at="2024-02-10")]
    ledger_app.execute(history)
    assert ledger_app.execute(history).events == 0
