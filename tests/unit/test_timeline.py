"""A record's timeline is a rule: no fact is dated before its record's creation or the facts it depends on (memory store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import bootstrap
from domain import errors
from service_layer import commands as c
from service_layer.ledger import BatchFailed, Ledger
from tests.builders import activity, matchmaking_with_two_orgs, new_ref, org, register


@pytest.fixture
def app() -> Iterator[Ledger]:
    ledger = bootstrap.build_ledger("memory://")
    yield ledger
    ledger.close()


def out_of_timeline(app: Ledger, command: c.Command) -> str:
    """The one-line message of `command`, refused as out of its timeline with nothing written."""
    before = app.recorder.max_notification_id()
    with pytest.raises(BatchFailed) as caught:
        app.execute([command])
    [failure] = caught.value.failures
    assert isinstance(failure.error, errors.OutOfTimeline)
    assert app.recorder.max_notification_id() == before
    return str(failure.error)


def test_a_profile_is_not_published_updated_labelled_or_archived_before_its_registration(app: Ledger) -> None:
    ref = new_ref("ORG")
    app.execute([org(ref, occurred_at="2025-06-01")])
    message = out_of_timeline(app, c.PublishOrg(org=ref, occurred_at="2024-01-01"))
    assert message == f"occurred_at: 2024-01-01T00:00:00+00:00 is before the registration of {ref} on 2025-06-01T00:00:00+00:00"
    out_of_timeline(app, c.UpdateOrg(org=ref, members={"smes": 3}, occurred_at="2023-01-01"))
    out_of_timeline(app, c.AwardLabel(org=ref, level="gold", valid_until="2026-01-01", occurred_at="2025-05-31"))
    out_of_timeline(app, c.ArchiveOrg(org=ref, reason="dissolved", occurred_at="2025-05-31T23:59:59Z"))
    # The same moment as the registration, and any moment after it, is in the timeline.
    app.execute([c.PublishOrg(org=ref, occurred_at="2025-06-01"), c.UpdateOrg(org=ref, members={"smes": 3}, occurred_at="2025-06-02")])


def test_one_batch_is_held_to_the_timeline_it_creates(app: Ledger) -> None:
    ref = new_ref("ORG")
    with pytest.raises(BatchFailed) as caught:
        app.execute([org(ref, occurred_at="2025-06-01"), c.PublishOrg(org=ref, occurred_at="2024-01-01")])
    assert [type(f.error) for f in caught.value.failures] == [errors.OutOfTimeline]
    assert not app.recorder.max_notification_id()


def test_an_activity_is_held_no_earlier_than_its_first_day(app: Ledger) -> None:
    ref = new_ref("MM")
    app.execute([activity(ref, starts_on="2025-06-10", ends_on="2025-06-11", occurred_at="2025-01-10")])
    message = out_of_timeline(app, c.HoldActivity(activity=ref, occurred_at="2025-02-02"))
    assert message == f"occurred_at: 2025-02-02T00:00:00+00:00 is before the first day (starts_on) of {ref} on 2025-06-10"
    out_of_timeline(app, c.CancelActivity(activity=ref, reason="moved", occurred_at="2025-01-09"))
    app.execute([c.HoldActivity(activity=ref, occurred_at="2025-06-10T18:00:00Z")])


def test_registrations_and_attendance_follow_the_scheduling_and_the_participant(app: Ledger) -> None:
    event, a, person = new_ref("MM"), new_ref("ORG"), "P-" + new_ref("x")[2:].replace("-", "")
    app.execute([org(a, occurred_at="2024-02-01"), activity(event, occurred_at="2024-01-15"),
                 c.RegisterPerson(person=person, name="Ada", email="ada@example.org", occurred_at="2024-01-20")])
    message = out_of_timeline(app, register(event, a, at="2024-01-20"))
    assert f"before the registration of {a} on 2024-02-01" in message
    message = out_of_timeline(app, c.RegisterParticipant(activity=event, person=person, occurred_at="2024-01-10"))
    assert f"before the scheduling of {event} on 2024-01-15" in message
    app.execute([register(event, a, at="2024-02-05")])
    message = out_of_timeline(app, c.AttendActivity(activity=event, org=a, occurred_at="2024-02-04"))
    assert f"before the registration of {a} for {event} on 2024-02-05" in message
    out_of_timeline(app, c.CancelRegistration(activity=event, org=a, occurred_at="2024-02-04"))
    out_of_timeline(app, c.ForgetPerson(person=person, reason="asked", occurred_at="2024-01-19"))


def test_a_meeting_moves_on_only_after_its_request_and_acceptance(app: Ledger) -> None:
    setup, event, a, b = matchmaking_with_two_orgs()  # both registered on 2024-02-01
    app.execute(setup)
    meeting = new_ref("M")
    message = out_of_timeline(app, c.RequestMeeting(meeting=meeting, activity=event, requester=a, partner=b, occurred_at="2024-01-31"))
    assert f"before the registration of {a} for {event} on 2024-02-01" in message
    app.execute([c.RequestMeeting(meeting=meeting, activity=event, requester=a, partner=b, occurred_at="2025-05-02")])
    for early in (c.AcceptMeeting(meeting=meeting, occurred_at="2025-05-01"), c.DeclineMeeting(meeting=meeting, occurred_at="2025-05-01"),
                  c.CancelMeeting(meeting=meeting, outcome="no_show", occurred_at="2025-05-01")):
        assert f"before the request of {meeting} on 2025-05-02" in out_of_timeline(app, early)
    assert f"before the request of {meeting}" in out_of_timeline(app, c.HoldMeeting(meeting=meeting, occurred_at="2025-04-01"))
    app.execute([c.AcceptMeeting(meeting=meeting, occurred_at="2025-05-05")])
    assert f"before the acceptance of {meeting} on 2025-05-05" in out_of_timeline(app, c.HoldMeeting(meeting=meeting, occurred_at="2025-05-04"))
    app.execute([c.HoldMeeting(meeting=meeting, occurred_at="2025-05-05")])


def test_a_case_follows_its_sources_and_its_stages(app: Ledger) -> None:
    setup, event, a, b = matchmaking_with_two_orgs()
    meeting, case, late = new_ref("M"), new_ref("CASE"), new_ref("ORG")
    app.execute([*setup, org(late, occurred_at="2024-06-01"),
                 c.RequestMeeting(meeting=meeting, activity=event, requester=a, partner=b, occurred_at="2024-02-10")])
    identify = {"case": case, "source_kind": "meeting", "source": meeting, "title": "Joint pilot"}
    message = out_of_timeline(app, c.IdentifyCase(orgs=(a, b), occurred_at="2024-02-09", **identify))
    assert f"before the request of {meeting} on 2024-02-10" in message
    assert f"before the registration of {late} on 2024-06-01" in out_of_timeline(app, c.IdentifyCase(orgs=(a, late), occurred_at="2024-03-01", **identify))
    app.execute([c.IdentifyCase(orgs=(a, b), occurred_at="2024-03-01", **identify)])
    assert f"before the identification of {case}" in out_of_timeline(app, c.AdvanceCase(case=case, stage="exploring", occurred_at="2024-02-28"))
    app.execute([c.AdvanceCase(case=case, stage="exploring", occurred_at="2024-05-01")])
    message = out_of_timeline(app, c.AdvanceCase(case=case, stage="agreement_signed", occurred_at="2024-04-30"))
    assert f"before the exploring stage of {case} on 2024-05-01" in message
    out_of_timeline(app, c.AbandonCase(case=case, reason="no funding", occurred_at="2024-04-30"))
    app.execute([c.AdvanceCase(case=case, stage="agreement_signed", occurred_at="2024-05-01")])


def test_pitches_and_publication_updates_follow_what_they_name(app: Ledger) -> None:
    event, a, pub = new_ref("CMR"), new_ref("ORG"), new_ref("PUB")
    app.execute([activity(event, kind="clusters_meet_regions"), org(a, occurred_at="2024-02-01"),
                 c.RegisterParticipant(activity=event, org=a, occurred_at="2024-02-05"),
                 c.PublishPublication(publication=pub, kind="case_study", title="A case", occurred_at="2024-03-01")])
    message = out_of_timeline(app, c.DeliverPitch(pitch=new_ref("PITCH"), activity=event, org=a, title="Ours", occurred_at="2024-01-31"))
    assert f"before the registration of {a} on 2024-02-01" in message
    message = out_of_timeline(app, c.UpdatePublication(publication=pub, title="Renamed", note="typo", occurred_at="2024-02-29"))
    assert f"before the first publishing of {pub} on 2024-03-01" in message


def test_back_dated_corrections_within_the_timeline_stay_allowed(app: Ledger) -> None:
    setup, event, a, b = matchmaking_with_two_orgs()
    meeting = new_ref("M")
    app.execute([*setup, c.RequestMeeting(meeting=meeting, activity=event, requester=a, partner=b, occurred_at="2024-02-10"),
                 c.HoldMeeting(meeting=meeting, occurred_at="2024-03-01"), c.HoldActivity(activity=event, occurred_at="2024-03-02")])
    # Recorded after all of that, dated back to the days after each record's creation.
    app.execute([c.UpdateOrg(org=a, members={"smes": 41}, occurred_at="2024-01-11"), c.PublishOrg(org=b, occurred_at="2024-01-10"),
                 c.AttendActivity(activity=event, org=a, occurred_at="2024-02-01")])
