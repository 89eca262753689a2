"""Recorded time only moves forward: a write stamped before the last stored event (or, on PostgreSQL, far ahead of the
server's clock) is refused with one line; verify and as-of reports name a disorder written before that rule."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import bootstrap
from adapters import recorded_time
from cli.main import ledger
from domain.errors import RecordedTimeAhead, RecordedTimeBackwards
from tests.builders import new_ref, org
from tests.conftest import snapshot

LEDGER = str(Path(sys.executable).parent / "ledger")
NOW = datetime.now(timezone.utc)


class Clock:
    """A recorded-time clock the test moves by hand; `then` is what it reads after the first call."""

    def __init__(self, now: datetime, then: datetime | None = None) -> None:
        self.now, self.then = now, then

    def __call__(self) -> datetime:
        now = self.now
        if self.then is not None:
            self.now = self.then
        return now


def write(url: str, clock: Clock, refs: int = 1) -> list[int]:
    app = bootstrap.build_ledger(url, clock=clock)
    try:
        return app.execute([org(new_ref("ORG-RT")) for _ in range(refs)]).positions
    finally:
        app.close()


def test_a_write_stamped_before_the_last_stored_event_is_refused_and_writes_nothing(db_url: str) -> None:
    write(db_url, Clock(datetime(2026, 3, 1, 10, tzinfo=timezone.utc)), refs=2)
    before = snapshot(db_url)
    with pytest.raises(RecordedTimeBackwards) as refused:
        write(db_url, Clock(datetime(2026, 2, 1, 10, tzinfo=timezone.utc)))
    assert str(refused.value) == ("recorded time: 2026-02-01T10:00:00+00:00 is before the last stored event's 2026-03-01T10:00:00+00:00 "
                                  "(position 3); check this machine's clock; nothing was written")
    assert snapshot(db_url) == before
    assert len(write(db_url, Clock(datetime(2026, 3, 1, 10, tzinfo=timezone.utc)))) == 1  # the same time is not earlier


def test_an_import_stamped_before_the_last_stored_event_is_refused(db_url: str) -> None:
    write(db_url, Clock(datetime(2026, 3, 1, 10, tzinfo=timezone.utc)))
    before = snapshot(db_url)
    app = bootstrap.build_ledger(db_url, clock=Clock(datetime(2026, 2, 1, 10, tzinfo=timezone.utc)))
    try:
        with pytest.raises(RecordedTimeBackwards, match=r"^recorded time: 2026-02-01T10:00:00\+00:00 is before .* \(position 2\)"):
            app.execute_in_chunks(enumerate([org(new_ref("ORG-RT")) for _ in range(5)]), chunk=2)
    finally:
        app.close()
    assert snapshot(db_url) == before


def test_a_write_overtaken_by_a_later_stamped_one_is_stamped_again(db_url: str) -> None:
    # Stamped before the stored event, by a clock that has passed it since: another write took the lock first; not a clock fault.
    write(db_url, Clock(NOW))
    assert len(write(db_url, Clock(NOW - timedelta(milliseconds=5), then=NOW + timedelta(milliseconds=5)))) == 1
    with pytest.raises(RecordedTimeBackwards):  # a clock that stays behind is a clock fault
        write(db_url, Clock(NOW - timedelta(milliseconds=5)))


def test_postgres_refuses_a_recorded_time_far_ahead_of_its_clock(tmp_path: Path) -> None:
    from tests.conftest import drop_schema, fresh_postgres_url

    url = fresh_postgres_url()
    try:
        write(url, Clock(NOW + recorded_time.AHEAD_LIMIT - timedelta(minutes=1)))  # within the bound
        before = snapshot(url)
        with pytest.raises(RecordedTimeAhead, match=r"^recorded time: 2099-01-01T12:00:00\+00:00 is more than 5 minutes ahead of the "
                                                    r"database server's clock \(20\d\d-.*\); check this machine's clock; nothing was written$"):
            write(url, Clock(datetime(2099, 1, 1, 12, tzinfo=timezone.utc)))
        assert snapshot(url) == before
    finally:
        drop_schema(url)


def faked(moment: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`ledger ARGS --db URL` run under Debian's faketime, the machine's clock set to `moment` ('' for the real clock)."""
    command = [LEDGER, *args, "--db", url]
    return subprocess.run(["faketime", moment, *command] if moment else command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1"})


def register(ref: str) -> list[str]:
    return ["org", "register", "--org", ref, "--name", ref, "--country", "IT", "--ecosystems", "digital",
            "--year-established", "2000", "--at", "2023-06-01"]


def test_a_command_under_a_clock_set_back_is_refused_in_one_line(db_url: str) -> None:
    assert faked("", db_url, *register("ORG-NOW")).returncode == 0
    result = faked("2024-01-01 12:00:00", db_url, *register("ORG-BACK"))
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.startswith("Error: recorded time: 2024-01-01T12:00:"), result.stderr
    assert result.stderr.endswith("(position 2); check this machine's clock; nothing was written\n"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert faked("", db_url, *register("ORG-BACK")).stdout.startswith("recorded 1 event at position ")


def test_a_clock_set_far_ahead_then_back_to_now(db_url: str) -> None:
    assert faked("", db_url, *register("ORG-NOW")).returncode == 0
    ahead = faked("2099-01-01 12:00:00", db_url, *register("ORG-AHEAD"))
    back = faked("", db_url, *register("ORG-BACK"))
    if db_url.startswith("postgresql"):  # the server's clock bounds it: nothing was written, and now writes go on
        assert ahead.returncode == 1 and "is more than 5 minutes ahead of the database server's clock" in ahead.stderr, ahead
        assert back.stdout.startswith("recorded 1 event at position "), back
    else:  # no server clock: the write in 2099 is stored, and every write at the real time after it is refused
        assert ahead.stdout == "recorded 1 event at position 3\n", ahead
        assert back.returncode == 1 and back.stderr.startswith("Error: recorded time: 20"), back
        assert "is before the last stored event's 2099-01-01T12:00:" in back.stderr and "(position 3)" in back.stderr, back
    assert "Traceback" not in ahead.stderr + back.stderr


def test_a_disorder_written_before_the_rule_is_named_by_verify_and_refused_by_as_of_reports(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(db_url, Clock(datetime(2024, 5, 1, tzinfo=timezone.utc)))
    write(db_url, Clock(datetime(2024, 7, 1, tzinfo=timezone.utc)))
    with monkeypatch.context() as m:  # as a ledger written before recorded times were checked
        m.setattr(recorded_time, "check_after_last", lambda *args: None)
        write(db_url, Clock(datetime(2024, 5, 15, tzinfo=timezone.utc)), refs=2)
    write(db_url, Clock(datetime(2024, 8, 1, tzinfo=timezone.utc)))
    runner = CliRunner()
    result = runner.invoke(ledger, ["verify", "--db", db_url])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == ("position 4: recorded time out of order (2 positions): the event was recorded "
                                             "2024-05-15T00:00:00Z, before position 3's 2024-07-01T00:00:00Z"), result.output
    for _ in range(2):  # found by reading the log, then from what that read kept
        result = runner.invoke(ledger, ["report", "impact", "--as-of", "2024-06-01", "--db", db_url])
        assert result.exit_code == 1 and (result.exception is None or isinstance(result.exception, SystemExit)), result.output
        assert result.output == ("Error: recorded time: the event at position 4 was recorded 2024-05-15T00:00:00+00:00, before position 3's "
                                 "2024-07-01T00:00:00+00:00; a report as of a moment needs recorded times in order "
                                 "(`ledger verify` names every such position)\n"), result.output
    assert runner.invoke(ledger, ["report", "impact", "--db", db_url]).exit_code == 0  # the current report reads no recorded times


def test_an_as_of_report_reads_the_log_once_for_its_order(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from projections import reports, runner

    for month in (3, 4, 5):
        write(db_url, Clock(datetime(2024, month, 1, tzinfo=timezone.utc)), refs=3)
    read: list[int] = []
    pages = runner.notifications
    monkeypatch.setattr(runner, "notifications", lambda recorder, after, **kw: (read.append(after), pages(recorder, after, **kw))[1])
    cli = CliRunner()
    for _ in range(2):
        assert cli.invoke(ledger, ["report", "impact", "--as-of", "2024-04-15", "--db", db_url]).exit_code == 0
    write(db_url, Clock(datetime(2024, 6, 1, tzinfo=timezone.utc)))
    assert cli.invoke(ledger, ["report", "impact", "--as-of", "2024-04-15", "--db", db_url]).exit_code == 0
    assert read == [0, 10, 10], read  # the whole log once, then only what was stored since
    assert reports.RECORDED_ORDER == "recorded-order"
