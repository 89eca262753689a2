"""Facts out of their record's timeline and bad actors are refused from the command line and the ledger; figures count a
record only from its creation on, even in an old ledger that holds facts dated before it (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import bootstrap
from cli.main import ledger
from domain.base import Action
from domain.errors import InvalidValue, shown
from domain.model import ClusterOrganisation
from domain.values import Members
from tests.builders import new_ref, org
from tests.conftest import snapshot

REGISTER = ("org", "register", "--name", "Cluster X", "--country", "IT", "--ecosystems", "digital", "--year-established", "2010")
BAD_ACTORS = ["bob\nalice", "a" * 300, "ev\x1b[31mil", "ev\u202eil", "", "   "]


def run(*args: str, db: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(ledger, [*args, "--db", db], env=env, catch_exceptions=False)


def refused(result: Result) -> str:
    """The one error line of a refused command (no traceback)."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0].removeprefix("Error: ")


def impact(db: str, year: int) -> dict[str, object]:
    result = run("report", "impact", "--from", f"{year}-01-01", "--to", f"{year}-12-31", "--format", "json", db=db)
    assert result.exit_code == 0, result.output
    figures: dict[str, object] = json.loads(result.stdout)["figures"]
    return figures


def test_a_profile_is_not_published_or_updated_before_its_registration(db_url: str) -> None:
    ref = new_ref("ORG")
    assert run(*REGISTER, "--org", ref, "--at", "2025-06-01", db=db_url).exit_code == 0
    before = snapshot(db_url)
    message = refused(run("org", "publish", "--org", ref, "--at", "2024-01-01", db=db_url))
    assert message == f"occurred_at: 2024-01-01T00:00:00+00:00 is before the registration of {ref} on 2025-06-01T00:00:00+00:00"
    assert "2023-01-01" in refused(run("org", "update", "--org", ref, "--smes", "3", "--at", "2023-01-01", db=db_url))
    assert snapshot(db_url) == before
    assert impact(db_url, 2024)["cluster_organisations"] == 0


def test_an_activity_and_a_meeting_are_not_held_before_their_day_or_request(db_url: str) -> None:
    a, b, event, meeting = new_ref("ORG"), new_ref("ORG"), new_ref("MM"), new_ref("M")
    steps = [
        (*REGISTER, "--org", a, "--at", "2025-01-01"), (*REGISTER, "--org", b, "--at", "2025-01-01"),
        ("activity", "schedule", "--activity", event, "--kind", "matchmaking", "--title", "MM", "--starts-on", "2025-06-10",
         "--ends-on", "2025-06-11", "--place", "Milan", "--at", "2025-01-10"),
        ("participant", "register", "--activity", event, "--org", a, "--at", "2025-02-01"),
        ("participant", "register", "--activity", event, "--org", b, "--at", "2025-02-01"),
        ("meeting", "request", "--meeting", meeting, "--activity", event, "--requester", a, "--partner", b, "--at", "2025-05-02"),
    ]
    for step in steps:
        assert run(*step, db=db_url).exit_code == 0
    before = snapshot(db_url)
    message = refused(run("activity", "hold", "--activity", event, "--at", "2025-02-02", db=db_url))
    assert "2025-02-02T00:00:00+00:00 is before the first day (starts_on)" in message and "2025-06-10" in message
    message = refused(run("meeting", "hold", "--meeting", meeting, "--at", "2025-04-01", db=db_url))
    assert message == f"occurred_at: 2025-04-01T00:00:00+00:00 is before the request of {meeting} on 2025-05-02T00:00:00+00:00"
    assert snapshot(db_url) == before
    assert impact(db_url, 2025)["bilateral_meetings"] == 0


def test_figures_count_a_profile_of_an_old_ledger_only_from_its_registration(db_url: str) -> None:
    ref = new_ref("ORG")
    app = bootstrap.build_ledger(db_url)
    try:
        # An old ledger, written before the timeline was a rule: published and updated with dates before the registration.
        recorded = datetime(2025, 7, 1, tzinfo=timezone.utc)
        action = Action("old.writer", datetime(2025, 6, 1, tzinfo=timezone.utc), recorded, "k-register", "d-register")
        profile = ClusterOrganisation.register(ref, action, name="X", country="IT", region=None, sectors=(), ecosystems=("digital",),
                                               year_established=2010, members=Members(smes=10))
        for key, at, event_class, fields in (
            ("k-publish", datetime(2024, 1, 1, tzinfo=timezone.utc), ClusterOrganisation.Published, {}),
            ("k-update", datetime(2023, 1, 1, tzinfo=timezone.utc), ClusterOrganisation.Updated, {"changes": ("members",), "members": Members(smes=3)}),
        ):
            profile.trigger_event(event_class, timestamp=recorded, occurred_at=at, actor="old.writer", action_key=key, action_digest=key, **fields)
        app.save(profile)
    finally:
        app.close()
    assert impact(db_url, 2024)["cluster_organisations"] == 0
    assert impact(db_url, 2024)["new_profiles_published"] == 0
    in_2025 = impact(db_url, 2025)
    # Counted from the registration on, with the update (dated before it) applied after the registration's fields.
    assert (in_2025["cluster_organisations"], in_2025["new_profiles_published"], in_2025["member_organisations_represented"]) == (1, 1, 3)


@pytest.mark.parametrize("actor", BAD_ACTORS, ids=["newline", "300-characters", "escape", "right-to-left", "empty", "blank"])
def test_a_bad_actor_from_the_option_or_the_environment_is_refused(actor: str, db_url: str, tmp_path: Path) -> None:
    command = (*REGISTER, "--org", new_ref("ORG"), "--at", "2025-06-01")
    for result, field in ((run(*command, "--actor", actor, db=db_url), "actor"),
                          (run(*command, db=db_url, env={"LEDGER_ACTOR": actor}), "$LEDGER_ACTOR")):
        assert refused(result).startswith(f"{field}: {shown(actor)}: ")
    lines = tmp_path / "one.jsonl"
    lines.write_text(org(new_ref("ORG")).model_dump_json() + "\n")
    assert refused(run("import", str(lines), "--actor", actor, db=db_url)).startswith("actor: ")
    app = bootstrap.build_ledger(db_url)
    try:
        for write in (lambda: app.execute([org(new_ref("ORG"))], actor=actor),
                      lambda: app.execute_in_chunks([(1, org(new_ref("ORG")))], actor=actor)):
            with pytest.raises(InvalidValue) as caught:
                write()
            assert caught.value.field == "actor"
        assert not app.recorder.max_notification_id()
    finally:
        app.close()


def test_the_actor_of_an_option_is_cleaned_as_an_import_lines_actor_is(db_url: str) -> None:
    ref = new_ref("ORG")
    assert run(*REGISTER, "--org", ref, "--at", "2025-06-01", "--actor", " Ana\u0301 ", db=db_url).exit_code == 0
    result = run("history", ref, "--format", "json", db=db_url)
    assert [e["actor"] for e in json.loads(result.stdout)] == ["An\u00e1"]
