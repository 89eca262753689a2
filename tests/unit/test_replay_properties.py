"""Random sequences of valid commands, saved and reloaded, give the same aggregates."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bootstrap
from domain.base import ref_id
from service_layer import commands as c
from service_layer.ledger import BatchFailed

ORGS = ("ORG-P1", "ORG-P2", "ORG-P3")
EVENT = "MM-P"


def _command(draw: st.DrawFn, day: int) -> c.Command:
    at = f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}"
    org = draw(st.sampled_from(ORGS))
    other = draw(st.sampled_from([o for o in ORGS if o != org]))
    meeting = f"M-{draw(st.integers(0, 3))}"
    choice = draw(st.integers(0, 8))
    if choice == 0:
        return c.UpdateOrg(org=org, members={"smes": draw(st.integers(0, 500))}, occurred_at=at)
    if choice == 1:
        return c.RegisterParticipant(activity=EVENT, org=org, occurred_at=at)
    if choice == 2:
        return c.CancelRegistration(activity=EVENT, org=org, occurred_at=at)
    if choice == 3:
        return c.RequestMeeting(meeting=meeting, activity=EVENT, requester=org, partner=other, occurred_at=at)
    if choice == 4:
        return c.AcceptMeeting(meeting=meeting, occurred_at=at)
    if choice == 5:
        return c.HoldMeeting(meeting=meeting, occurred_at=at)
    if choice == 6:
        return c.CancelMeeting(meeting=meeting, outcome=draw(st.sampled_from(["cancelled", "no_show"])), occurred_at=at)
    if choice == 7:
        return c.AwardLabel(org=org, level=draw(st.sampled_from(["bronze", "silver", "gold"])), valid_until="2027-01-01", occurred_at=at)
    return c.AttendActivity(activity=EVENT, org=org, occurred_at=at)


@st.composite
def histories(draw: st.DrawFn) -> list[c.Command]:
    return [_command(draw, day) for day in range(draw(st.integers(1, 40)))]


SETUP: list[c.Command] = [
    *(c.RegisterOrg(org=o, name=o, country="PL", region="PL91", ecosystems=("digital",), year_established=2010, occurred_at="2023-12-01") for o in ORGS),
    c.ScheduleActivity(activity=EVENT, kind="matchmaking", title="P", starts_on="2024-06-01", ends_on="2024-06-02", place="Warsaw", occurred_at="2023-12-02"),
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_saved_and_reloaded_aggregates_are_equal(commands: list[c.Command]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'p.db'}"
        app = bootstrap.build_ledger(url)
        app.execute(SETUP)
        accepted = 0
        for command in commands:
            try:
                accepted += app.execute([command]).events
            except BatchFailed:
                pass  # a refused command writes nothing; the rest of the history goes on
        refs = [*ORGS, EVENT, *(f"M-{i}" for i in range(4)), *(f"{EVENT}/{o}" for o in ORGS)]
        live = {}
        for ref in refs:
            events = app.events.get(ref_id(ref))
            live[ref] = app.repository.get(ref_id(ref)) if list(events) else None
        total = app.recorder.max_notification_id()
        app.close()

        reopened = bootstrap.build_ledger(url)
        try:
            assert reopened.recorder.max_notification_id() == total == 1 + len(SETUP) + accepted  # 1: the test writer's authorization
            for ref, aggregate in live.items():
                if aggregate is None:
                    assert not list(reopened.events.get(ref_id(ref)))
                else:
                    assert reopened.repository.get(ref_id(ref)) == aggregate
        finally:
            reopened.close()
