"""The same facts recorded in any order their timelines allow give the same figures as when recorded in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bootstrap
from domain.values import participation_ref
from projections.figures import Settings, compute
from projections.platform import Row, fold
from service_layer import commands as c

ORIGIN = datetime(2023, 1, 1, 9, tzinfo=timezone.utc)
PERIODS = [Settings(date(2023, 1, 1), date(2023, 12, 31)), Settings(date(2024, 1, 1), date(2024, 12, 31)),
           Settings(date(2025, 1, 1), date(2025, 12, 31)), Settings(date(2023, 1, 1), date(2026, 6, 30))]


@dataclass(frozen=True)
class Fact:
    """A command, the record it writes and the records whose creation it reads."""

    command: c.Command
    writes: str
    reads: tuple[str, ...] = ()


def _day(draw: st.DrawFn, after: datetime, most: int = 200) -> datetime:
    return after + timedelta(days=draw(st.integers(0, most)), hours=draw(st.integers(0, 8)))


@st.composite
def histories(draw: st.DrawFn) -> list[Fact]:
    """A small platform history whose every fact lies within its timeline, in no particular order."""
    facts: list[Fact] = []
    orgs: dict[str, datetime] = {}
    for i in range(draw(st.integers(2, 4))):
        ref, registered = f"ORG-{i}", _day(draw, ORIGIN, 700)
        orgs[ref] = registered
        facts.append(Fact(c.RegisterOrg(org=ref, name=ref, country="IT", ecosystems=(draw(st.sampled_from(["digital", "health"])),),
                                        year_established=draw(st.integers(1990, 2022)), members={"smes": 10 * i}, occurred_at=registered), ref))
        if draw(st.booleans()):
            facts.append(Fact(c.PublishOrg(org=ref, occurred_at=_day(draw, registered)), ref))
        for smes in draw(st.lists(st.integers(0, 99), max_size=2, unique=True)):
            facts.append(Fact(c.UpdateOrg(org=ref, members={"smes": 100 + smes}, occurred_at=_day(draw, registered, 400)), ref))
    for k, kind in enumerate(draw(st.lists(st.sampled_from(["matchmaking", "c2lab"]), min_size=1, max_size=2))):
        event, scheduled = f"EV-{k}", _day(draw, ORIGIN, 600)
        starts = _day(draw, scheduled, 100).date()
        facts.append(Fact(c.ScheduleActivity(activity=event, kind=kind, title=event, starts_on=starts, ends_on=starts, place="Milan",
                                             occurred_at=scheduled), event))
        joined: dict[str, datetime] = {}
        for ref in draw(st.lists(st.sampled_from(sorted(orgs)), min_size=2, unique=True)):
            joined[ref] = _day(draw, max(scheduled, orgs[ref]), 60)
            part = participation_ref(event, ref)
            facts.append(Fact(c.RegisterParticipant(activity=event, org=ref, occurred_at=joined[ref]), part, (event, ref)))
            if draw(st.booleans()):
                facts.append(Fact(c.AttendActivity(activity=event, org=ref, occurred_at=_day(draw, joined[ref], 30)), part))
        held = max(scheduled, datetime.combine(starts, ORIGIN.timetz())) + timedelta(days=draw(st.integers(0, 3)))
        if draw(st.booleans()):
            facts.append(Fact(c.HoldActivity(activity=event, occurred_at=held), event))
        if kind == "matchmaking":
            a, b = sorted(joined)[:2]
            meeting, requested = f"{event}-M", _day(draw, max(joined[a], joined[b]), 30)
            parts = (participation_ref(event, a), participation_ref(event, b))
            facts.append(Fact(c.RequestMeeting(meeting=meeting, activity=event, requester=a, partner=b, occurred_at=requested), meeting, (event, *parts)))
            done = _day(draw, requested, 30)
            facts.append(Fact(c.HoldMeeting(meeting=meeting, occurred_at=done), meeting, parts))
            identified = _day(draw, max(done, orgs[a], orgs[b]), 60)
            case = f"CASE-{k}"
            facts.append(Fact(c.IdentifyCase(case=case, orgs=(a, b), source_kind="meeting", source=meeting, title=case, occurred_at=identified),
                              case, (a, b, meeting)))
            facts.append(Fact(c.AdvanceCase(case=case, stage="exploring", occurred_at=_day(draw, identified)), case))
    published = _day(draw, ORIGIN, 800)
    facts.append(Fact(c.PublishPublication(publication="FS-IT", kind="country_fact_sheet", title="IT", country="IT", occurred_at=published), "FS-IT"))
    facts.append(Fact(c.UpdatePublication(publication="FS-IT", note="new figures", occurred_at=_day(draw, published, 400)), "FS-IT"))
    return facts


def in_time_order(facts: list[Fact]) -> list[Fact]:
    return sorted(facts, key=lambda f: f.command.occurred_at)


def allowed_order(facts: list[Fact], picks: list[int]) -> list[Fact]:
    """The facts in an order the timeline rules allow, chosen by `picks`: a record's facts keep their time order, and a fact
    comes after the creation of every record it reads."""
    waiting, done, order = in_time_order(facts), set[str](), []
    for pick in picks + [0] * len(waiting):
        if not waiting:
            break
        ready = [f for f in waiting if all(r in done for r in f.reads)
                 and not any(o.writes == f.writes for o in waiting[: waiting.index(f)])]
        chosen = ready[pick % len(ready)]
        waiting.remove(chosen)
        done.add(chosen.writes)
        order.append(chosen)
    return order


def figures_of(facts: list[Fact]) -> list[dict[str, Any]]:
    app = bootstrap.build_ledger("memory://")
    try:
        for fact in facts:
            app.execute([fact.command])  # one recording each: any refusal fails the test
        rows: dict[Any, Row | None] = {}
        for position, notification in enumerate(app.recorder.select_notifications(start=1, limit=10_000), start=1):
            event = app.mapper.to_domain_event(notification)
            rows[event.originator_id] = fold(rows.get(event.originator_id), event, position)
    finally:
        app.close()
    source = lambda: (row for row in rows.values() if row is not None)  # noqa: E731
    return [compute(source, period).values for period in PERIODS]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.lists(st.integers(0, 1000), max_size=60))
def test_facts_recorded_in_any_allowed_order_give_the_figures_of_time_order(facts: list[Fact], picks: list[int]) -> None:
    shuffled = allowed_order(facts, picks)
    assert sorted(map(id, shuffled)) == sorted(map(id, facts))
    figures = figures_of(in_time_order(facts))
    assert figures_of(shuffled) == figures
    # The widest period holds every profile published and every case identified: the figures compared are not empty.
    assert figures[-1]["cluster_organisations"] == sum(isinstance(f.command, c.PublishOrg) for f in facts)
    assert figures[-1]["cooperation_cases_identified"] == sum(isinstance(f.command, c.IdentifyCase) for f in facts)
