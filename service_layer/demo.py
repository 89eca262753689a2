"""A synthetic 2024-2025 platform history, deterministic per seed, calibrated on the published figures."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from domain.errors import LedgerError
from domain.nuts import nuts_countries, nuts_regions_of
from domain.values import ECOSYSTEMS
from service_layer import commands as c
from service_layer.ledger import Ledger, read_signer
from transparency.note import Signer

START = date(2024, 1, 1)
END = date(2025, 12, 31)
ACTOR = "demo-import"
DEMO_WRITER = "demo"
"""The name of the key the demo makes for itself and signs with."""

# Sizes at scale 1, set just past each published figure ("more than 6,700" -> 7,050).
SIZES = {
    "orgs_before_2024": 1250,
    "orgs_new": 285,
    "orgs_unpublished": 12,
    "orgs_archived": 30,
    "share_updated_2023": 0.22,
    "share_updated_2024": 0.30,
    "share_updated_2025": 0.45,
    "share_young": 0.66,
    "labels": 120,
    "matchmaking_events": 20,
    "matchmaking_participants": 1400,
    "meetings_requested": 8200,
    "meetings_held": 7050,
    "talks_held": 95,
    "talks_cancelled": 2,
    "talk_participants": 6850,
    "academy_cohorts": 2,
    "academy_trainees": 112,
    "cmr_events": 15,
    "cmr_participants": 4320,
    "cmr_pitches": 296,
    "labs": 8,
    "lab_participants": 368,
    "missions": 4,
    "mission_participants": 60,
    "cases_from_meetings": 1300,
    "cases_from_missions": 40,
    "cases_from_labs": 80,
    "persons": 4000,
    "case_studies": 25,
    "green_guides": 3,
    "fact_sheets": 56,
    "panorama_reports": 2,
}
EXACT = {"talks_held", "labs", "case_studies", "green_guides", "fact_sheets", "missions", "academy_cohorts", "panorama_reports"}
PARTNER_COUNTRIES = ("AR", "AU", "BR", "CA", "CL", "EG", "IN", "JP", "KR", "MA", "MX", "SG", "TN", "US", "VN", "ZA", "IL", "GE", "MD", "AM")
MISSION_TARGETS = (("India", "IN"), ("India", "IN"), ("Morocco", "MA"), ("Egypt", "EG"))


@dataclass
class DemoHistory:
    """The parameters of one demo history and the simulated clock its events are recorded by."""

    seed: int = 2024
    scale: float = 1.0
    now: datetime = field(default_factory=lambda: datetime.combine(START, time(6), tzinfo=timezone.utc))

    @property
    def days(self) -> int:
        return (END - START).days + 2  # the opening back-fill, then one batch a day

    def size(self, name: str, minimum: int = 1) -> int:
        value = SIZES[name]
        if name in EXACT and self.scale >= 1:
            return int(value)
        return max(minimum, round(value * self.scale))

    def clock(self) -> datetime:
        """The recorded time of the next event (one millisecond apart)."""
        self.now += timedelta(milliseconds=1)
        return self.now


class _Plan:
    """Commands keyed by the day they are recorded on."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.by_day: dict[date, list[tuple[datetime, int, c.Command]]] = defaultdict(list)
        self.counter = 0

    def add(self, command: c.Command, recorded_on: date | None = None) -> None:
        occurred = command.occurred_at
        day = recorded_on or max(occurred.date(), START)
        self.counter += 1
        self.by_day[day].append((occurred, self.counter, command))


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.utc)


def _day_between(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


def plan_history(history: DemoHistory) -> _Plan:
    """Every command of the demo history, grouped by recording day."""
    rng = random.Random(history.seed)
    plan = _Plan(rng)
    size = history.size
    orgs = _plan_orgs(plan, history)
    persons = [f"P-{i:05d}" for i in range(size("persons", 10))]
    for i, person in enumerate(persons):
        plan.add(c.RegisterPerson(person=person, name=f"Demo Person {i}", email=f"person{i}@example.org",
                                  occurred_at=_at(START, 7), actor=ACTOR))
    published = [o for o in orgs if o["published"]]
    _plan_matchmaking(plan, history, published)
    _plan_person_activities(plan, history, persons, published)
    _plan_labs_and_missions(plan, history, published)
    _plan_publications(plan, history)
    return plan


def _plan_orgs(plan: _Plan, history: DemoHistory) -> list[dict[str, Any]]:
    rng, size = plan.rng, history.size
    weights = [6 if e == "digital" else 3 if e in ("health", "energy-renewables", "agri-food", "mobility-transport-automotive") else 2 for e in ECOSYSTEMS]
    orgs = []
    n_old, n_new, n_unpub = size("orgs_before_2024"), size("orgs_new"), size("orgs_unpublished", 0)
    countries = nuts_countries()
    for i in range(n_old + n_new + n_unpub):
        ref = f"ORG-{i:05d}"
        country = rng.choice(countries)
        regions = nuts_regions_of(country, level=2)
        ecosystems = tuple(sorted(set(rng.choices(ECOSYSTEMS, weights=weights, k=rng.randint(1, 3)))))
        young = rng.random() < SIZES["share_young"]
        year = rng.randint(2011, 2023) if young else rng.randint(1985, 2009)
        old = i < n_old
        registered = _day_between(rng, date(max(year, 2015), 1, 1), date(2023, 6, 30)) if old else _day_between(rng, START, date(2025, 11, 30))
        members = {"smes": rng.randint(20, 160), "large_enterprises": rng.randint(2, 20),
                   "research_organisations": rng.randint(2, 12), "universities": rng.randint(0, 6), "other": rng.randint(0, 10)}
        plan.add(c.RegisterOrg(org=ref, name=f"Demo Cluster {i}", country=country, region=rng.choice(regions) if regions else None,
                               sectors=tuple(e.replace("-", " ") for e in ecosystems), ecosystems=ecosystems,
                               year_established=year, members=members, occurred_at=_at(registered, 9), actor=ACTOR))
        published = i < n_old + n_new
        since = registered + timedelta(days=rng.randint(1, 20))
        if published:
            plan.add(c.PublishOrg(org=ref, occurred_at=_at(since, 10), actor=ACTOR))
        updates = []
        if published:
            for year_, share in ((2023, "share_updated_2023"), (2024, "share_updated_2024"), (2025, "share_updated_2025")):
                if (old or year_ >= 2024) and rng.random() < SIZES[share]:
                    first = max(date(year_, 1, 1), registered + timedelta(days=25))
                    last = date(year_, 12, 20) if year_ < 2025 else date(2025, 11, 30)
                    if first <= last:
                        updates.append(_day_between(rng, first, last))
        for day in sorted(updates):
            members = {**members, "smes": members["smes"] + rng.randint(1, 4)}
            plan.add(c.UpdateOrg(org=ref, members=members, occurred_at=_at(day, 11), actor=ACTOR))
        orgs.append({"ref": ref, "country": country, "published": published, "since": since, "last_update": max(updates, default=registered)})
    candidates = [o for o in orgs if o["published"] and o["last_update"] < date(2025, 6, 1)]
    for org in rng.sample(candidates, min(len(candidates), size("orgs_archived", 0))):
        plan.add(c.ArchiveOrg(org=org["ref"], reason="cluster organisation dissolved", occurred_at=_at(date(2025, 12, 10), 9), actor=ACTOR))
        org["published"] = False
    for org in rng.sample([o for o in orgs if o["published"]], min(size("labels", 0), len(orgs))):
        awarded = _day_between(rng, max(START, org["since"] + timedelta(days=1)), date(2025, 10, 31))
        plan.add(c.AwardLabel(org=org["ref"], level=rng.choice(("bronze", "silver", "gold")),
                              valid_until=awarded + timedelta(days=730), occurred_at=_at(awarded, 12), actor=ACTOR))
    return orgs


def _schedule(plan: _Plan, ref: str, kind: str, title: str, starts: date, ends: date, place: str | None, targets: tuple[str, ...] = ()) -> None:
    plan.add(c.ScheduleActivity(activity=ref, kind=kind, title=title, starts_on=starts, ends_on=ends, place=place,
                                online=place is None, target_countries=targets,
                                occurred_at=_at(max(START, starts - timedelta(days=60)), 8), actor=ACTOR))


def _activity_days(rng: random.Random, count: int) -> list[date]:
    span = (date(2025, 12, 10) - date(2024, 2, 15)).days
    return sorted(date(2024, 2, 15) + timedelta(days=(span * i) // max(1, count) + rng.randint(0, 6)) for i in range(count))


def _register(plan: _Plan, activity: str, starts: date, participant: dict[str, str], attend: bool = True) -> None:
    rng = plan.rng
    registered = max(START, starts - timedelta(days=rng.randint(5, 40)))
    plan.add(c.RegisterParticipant(activity=activity, occurred_at=_at(registered, 13), actor=ACTOR, **participant))
    if attend:
        plan.add(c.AttendActivity(activity=activity, occurred_at=_at(starts, 9), actor=ACTOR, **participant))
    else:
        plan.add(c.CancelRegistration(activity=activity, occurred_at=_at(starts - timedelta(days=2), 9), actor=ACTOR, **participant))


def _known_by(orgs: list[dict[str, Any]], day: date) -> list[dict[str, Any]]:
    """Organisations whose profiles were published well before `day`."""
    return [o for o in orgs if o["since"] < day - timedelta(days=45)]


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _plan_matchmaking(plan: _Plan, history: DemoHistory, orgs: list[dict[str, Any]]) -> None:
    rng, size = plan.rng, history.size
    n = size("matchmaking_events")
    days = _activity_days(rng, n)
    requested_split = _split(size("meetings_requested", 4), n)
    held_split = _split(size("meetings_held", 2), n)
    cases_split = _split(size("cases_from_meetings", 1), n)
    case_no = 0
    for i, (starts, per_event) in enumerate(zip(days, _split(size("matchmaking_participants", 4), n))):
        ref, ends = f"MM-{i:03d}", starts + timedelta(days=1)
        _schedule(plan, ref, "matchmaking", f"Matchmaking event {i}", starts, ends, "Brussels")
        pool = _known_by(orgs, starts)
        attendees = rng.sample(pool, min(len(pool), per_event + 3))
        for j, org in enumerate(attendees):
            _register(plan, ref, starts, {"org": org["ref"]}, attend=j >= 3)
        present = [o["ref"] for o in attendees[3:]]
        pairs: set[tuple[str, str]] = set()
        while len(pairs) < min(requested_split[i], len(present) * (len(present) - 1) // 2):
            a, b = rng.sample(present, 2)
            if (b, a) not in pairs:
                pairs.add((a, b))
        held_pairs = []
        for k, (a, b) in enumerate(sorted(pairs)):
            meeting = f"{ref}-M{k:04d}"
            plan.add(c.RequestMeeting(meeting=meeting, activity=ref, requester=a, partner=b,
                                      occurred_at=_at(starts - timedelta(days=rng.randint(1, 4)), 14, k % 60), actor=ACTOR))
            if k < held_split[i]:
                plan.add(c.AcceptMeeting(meeting=meeting, occurred_at=_at(starts - timedelta(days=1), 15, k % 60), actor=ACTOR))
                held = c.HoldMeeting(meeting=meeting, occurred_at=_at(starts + timedelta(days=k % 2), 10 + k % 6, k % 60), actor=ACTOR)
                # The matchmaking tool's export of held meetings arrives a week later.
                plan.add(held, recorded_on=ends + timedelta(days=7))
                held_pairs.append((meeting, a, b))
            elif k % 3 == 0:
                plan.add(c.DeclineMeeting(meeting=meeting, occurred_at=_at(starts - timedelta(days=1), 16), actor=ACTOR))
            else:
                plan.add(c.AcceptMeeting(meeting=meeting, occurred_at=_at(starts - timedelta(days=1), 15), actor=ACTOR))
                plan.add(c.CancelMeeting(meeting=meeting, outcome="no_show" if k % 2 else "cancelled",
                                         occurred_at=_at(starts, 17), actor=ACTOR))
        plan.add(c.HoldActivity(activity=ref, occurred_at=_at(ends, 18), actor=ACTOR))
        for meeting, a, b in rng.sample(held_pairs, min(len(held_pairs), cases_split[i])):
            _plan_case(plan, f"CASE-{ref}-{case_no:05d}", (a, b), "meeting", meeting, ends + timedelta(days=8))
            case_no += 1


def _plan_case(plan: _Plan, ref: str, orgs: tuple[str, ...], kind: str, source: str, earliest: date) -> None:
    rng = plan.rng
    identified = min(_day_between(rng, earliest, earliest + timedelta(days=40)), date(2025, 12, 30))
    plan.add(c.IdentifyCase(case=ref, orgs=orgs, source_kind=kind, source=source, title=f"Cooperation {ref}",
                            occurred_at=_at(identified, 12), actor=ACTOR))
    roll = rng.random()
    day = identified
    for stage, threshold in (("exploring", 0.55), ("agreement_signed", 0.2), ("joint_project_launched", 0.07)):
        if roll >= threshold:
            break
        day = day + timedelta(days=rng.randint(20, 120))
        if day > date(2025, 12, 30):
            return
        project = "Horizon Europe joint project" if stage == "joint_project_launched" else None
        plan.add(c.AdvanceCase(case=ref, stage=stage, project=project, occurred_at=_at(day, 12), actor=ACTOR))
    if 0.55 <= roll < 0.65:
        day = day + timedelta(days=rng.randint(30, 90))
        if day <= date(2025, 12, 30):
            plan.add(c.AbandonCase(case=ref, reason="no funding found", occurred_at=_at(day, 12), actor=ACTOR))


def _plan_person_activities(plan: _Plan, history: DemoHistory, persons: list[str], orgs: list[dict[str, Any]]) -> None:
    rng, size = plan.rng, history.size
    n_talks, n_cancelled = size("talks_held"), size("talks_cancelled", 0)
    talk_days = _activity_days(rng, n_talks + n_cancelled)
    cancelled = set(rng.sample(range(len(talk_days)), n_cancelled))
    per_talk = _split(size("talk_participants", 2), n_talks)
    held_index = 0
    for i, day in enumerate(talk_days):
        ref = f"TALK-{i:03d}"
        _schedule(plan, ref, "clusters_talk", f"EU Clusters Talk {i}", day, day, None)
        count = 20 if i in cancelled else per_talk[held_index]
        for person in rng.sample(persons, min(len(persons), count)):
            _register(plan, ref, day, {"person": person}, attend=i not in cancelled)
        if i in cancelled:
            # Registrations were taken before the talk was called off.
            plan.add(c.CancelActivity(activity=ref, reason="speaker unavailable", occurred_at=_at(day - timedelta(days=1), 12), actor=ACTOR))
        else:
            held_index += 1
            plan.add(c.HoldActivity(activity=ref, occurred_at=_at(day, 18), actor=ACTOR))
    for cohort, trainees in enumerate(_split(size("academy_trainees", 2), size("academy_cohorts"))):
        ref, starts = f"ACADEMY-{cohort}", date(2024 + cohort % 2, 3, 4)
        _schedule(plan, ref, "booster_academy", f"Cluster Booster Academy cohort {cohort}", starts, starts + timedelta(days=90), "Brussels")
        for person in rng.sample(persons, min(len(persons), trainees)):
            _register(plan, ref, starts, {"person": person})
        plan.add(c.HoldActivity(activity=ref, occurred_at=_at(starts + timedelta(days=90), 18), actor=ACTOR))
    n_cmr = size("cmr_events")
    pitches = _split(size("cmr_pitches", 1), n_cmr)
    cities = ["Milan", "Lyon", "Porto", "Gdansk", "Tampere", "Graz", "Ghent", "Seville", "Brno", "Cluj", "Aarhus", "Bilbao", "Eindhoven", "Turin", "Linz"]
    for i, (day, count) in enumerate(zip(_activity_days(rng, n_cmr), _split(size("cmr_participants", 2), n_cmr))):
        ref = f"CMR-{i:03d}"
        _schedule(plan, ref, "clusters_meet_regions", f"Clusters meet Regions {cities[i % len(cities)]}", day, day + timedelta(days=1), cities[i % len(cities)])
        people = rng.sample(persons, min(len(persons), count))
        pool = _known_by(orgs, day)
        pitching = rng.sample(pool, min(len(pool), pitches[i]))
        # A pitch is delivered by a participant: the pitching organisations are registered, in the places of as many people.
        for person in people[: max(0, len(people) - len(pitching))]:
            _register(plan, ref, day, {"person": person})
        for org in pitching:
            _register(plan, ref, day, {"org": org["ref"]})
        for k, org in enumerate(pitching):
            plan.add(c.DeliverPitch(pitch=f"{ref}-PITCH-{k:03d}", activity=ref, org=org["ref"], title=f"Pitch {k} at {ref}",
                                    occurred_at=_at(day, 11, k % 60), actor=ACTOR))
        plan.add(c.HoldActivity(activity=ref, occurred_at=_at(day + timedelta(days=1), 18), actor=ACTOR))


def _plan_labs_and_missions(plan: _Plan, history: DemoHistory, orgs: list[dict[str, Any]]) -> None:
    rng, size = plan.rng, history.size
    groups = (
        ("c2lab", "LAB", "lab", size("labs"), size("lab_participants", 2), size("cases_from_labs", 1)),
        ("mission", "MISSION", "mission", size("missions"), size("mission_participants", 2), size("cases_from_missions", 1)),
    )
    for kind, prefix, source_kind, count, participants, cases in groups:
        case_split = _split(cases, count)
        for i, (day, per) in enumerate(zip(_activity_days(rng, count), _split(participants, count))):
            ref = f"{prefix}-{i:02d}"
            target = MISSION_TARGETS[i % len(MISSION_TARGETS)] if kind == "mission" else None
            title = f"International mission to {target[0]}" if target else f"C2Lab co-creation lab {i}"
            _schedule(plan, ref, kind, title, day, day + timedelta(days=2), target[0] if target else "Brussels", (target[1],) if target else ())
            pool = _known_by(orgs, day)
            members = [o["ref"] for o in rng.sample(pool, min(len(pool), max(2, per)))]
            for org in members:
                _register(plan, ref, day, {"org": org})
            plan.add(c.HoldActivity(activity=ref, occurred_at=_at(day + timedelta(days=2), 18), actor=ACTOR))
            for k in range(case_split[i]):
                partners = tuple(rng.sample(members, min(len(members), rng.choice((2, 2, 3)))))
                _plan_case(plan, f"CASE-{ref}-{k:04d}", partners, source_kind, ref, day + timedelta(days=3))


def _plan_publications(plan: _Plan, history: DemoHistory) -> None:
    rng, size = plan.rng, history.size
    kinds = (("case_study", "CS", size("case_studies")), ("green_transition_guide", "GUIDE", size("green_guides")),
             ("panorama_report", "PANORAMA", size("panorama_reports")))
    for kind, prefix, count in kinds:
        for i, day in enumerate(_activity_days(rng, count)):
            plan.add(c.PublishPublication(publication=f"{prefix}-{i:03d}", kind=kind, title=f"{kind.replace('_', ' ').title()} {i}",
                                          occurred_at=_at(day, 10), actor=ACTOR))
    countries = sorted(nuts_countries() + PARTNER_COUNTRIES)
    for i in range(size("fact_sheets")):
        country = countries[i % len(countries)]
        ref = f"FACTSHEET-{i:03d}-{country}"
        # Fact sheets exist since 2023; each was updated once in the period.
        plan.add(c.PublishPublication(publication=ref, kind="country_fact_sheet", title=f"Country fact sheet {country}",
                                      country=country, occurred_at=_at(date(2023, 6, 1), 10), actor=ACTOR))
        plan.add(c.UpdatePublication(publication=ref, note="yearly figures refreshed",
                                     occurred_at=_at(_day_between(rng, START, date(2025, 11, 30)), 10), actor=ACTOR))


def write_demo(app: Ledger, history: DemoHistory, progress: Callable[[int], None] = lambda n: None) -> dict[str, int]:
    """Write the demo history into `app`, one atomic batch per recording day; return counts."""
    plan = plan_history(history)
    backfill = [item for item in plan.by_day.get(START, []) if item[0].date() < START]
    plan.by_day[START] = [item for item in plan.by_day.get(START, []) if item[0].date() >= START]
    counts: dict[str, int] = defaultdict(int)
    events = 0
    # What happened before 2024 is back-filled at 06:00 on the first day; each day's news is recorded at 20:00.
    batches = [(_at(START, 6), backfill)]
    batches += [(_at(START + timedelta(days=d), 20), plan.by_day.get(START + timedelta(days=d), [])) for d in range(history.days - 1)]
    for recorded_at, items in batches:
        history.now = recorded_at
        commands = [command for _, _, command in sorted(items, key=lambda item: (item[0], item[1]))]
        if commands:
            outcome = app.execute(commands, actor=ACTOR)
            events += outcome.events + bool(outcome.first_writer)  # the demo's own key, authorized by its first write
            for command in commands:
                counts[command.action] += 1
        progress(1)
    return {"events": events, **{k: counts[k] for k in sorted(counts)}}


def demo_signer(db_file: str | None) -> Signer:
    """The demo's own key: `demo.key` beside a SQLite file (made there, with `demo.pub`, if missing), else one for this run only."""
    if not db_file or db_file == ":memory:":
        return Signer.generate(DEMO_WRITER)
    private = Path(db_file).with_name(f"{DEMO_WRITER}.key")
    if private.exists():
        return read_signer(str(private))
    signer = Signer.generate(DEMO_WRITER)
    private.touch(mode=0o600)
    private.write_text(signer.encode() + "\n", encoding="utf-8")
    private.with_suffix(".pub").write_text(signer.verifier.encode() + "\n", encoding="utf-8")
    return signer


class NotADemoLedger(LedgerError):
    """A ledger holding events the demo did not write: the demo never replaces it."""


def other_actors(app: Ledger, page_size: int = 1000) -> Counter[str]:
    """The events in `app` recorded by anyone but the demo, counted by actor."""
    others: Counter[str] = Counter()
    after = 0
    while page := list(app.recorder.select_notifications(start=after + 1, limit=page_size)):
        others.update(actor for n in page if (actor := app.mapper.to_domain_event(n).actor) != ACTOR)
        after = page[-1].id
    return others


def discard_previous_demo(path: Path, open_ledger: Callable[[str], Ledger]) -> bool:
    """Delete the SQLite ledger at `path` if an earlier demo wrote all of it; raise NotADemoLedger if anyone else wrote to it."""
    if not path.exists():
        return False
    try:
        app = open_ledger(f"sqlite:///{path}")
        try:
            others = other_actors(app)
        finally:
            app.close()
    except LedgerError:
        raise
    except Exception as error:  # not a ledger at all (another SQLite file, or no SQLite): keep it
        raise NotADemoLedger(f"{path} cannot be read as a ledger ({error}); not replacing it") from error
    if others:
        by = ", ".join(f"{actor} ({count})" for actor, count in others.most_common(3))
        total = sum(others.values())
        raise NotADemoLedger(f"{path} holds {total} event{'s' if total != 1 else ''} not written by the demo (by {by}); not replacing it")
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return True
