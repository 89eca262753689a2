"""The README runs: every shell block and transcript, in order, in a fresh folder, prints what the README shows."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import drop_schema, postgres_url
from tests.readme_runner import README, matches, parse, run, services_from
from tests.witnesses import tools


def test_every_block_of_the_readme_runs_and_prints_what_it_shows(tmp_path: Path) -> None:
    postgres_url()  # fails loudly, never skips, without the services
    tools()  # the README runs two litewitness instances
    blocks = parse(README.read_text())
    assert sum(len(b.steps) for b in blocks if not b.not_run) > 30
    assert [b.not_run for b in blocks if b.not_run] == [
        "not run (these are the two commands themselves: CI runs scripts/test, which runs this README)"
    ]
    made: list[str] = []
    try:
        failures = run(blocks, tmp_path, services_from(dict(os.environ), made))
    finally:
        for url in made:
            drop_schema(url)
    assert failures == [], "\n\n".join(failures)


def test_shown_output_may_elide_lines_and_differ_in_times_and_rates() -> None:
    shown = ["rebuilt: applied 62,527 events in 4.5 s, 13,806 events/s", "...", "41 events"]
    assert matches(shown, ["rebuilt: applied 62,527 events in 6.2 s, 10,123 events/s", "a", "b", "41 events"])
    assert not matches(shown, ["rebuilt: applied 62,528 events in 6.2 s, 10,123 events/s", "41 events"])
    assert not matches(["recorded 1 event at position 25"], ["recorded 1 event at position 26"])
    assert matches(["2024-02-18T20:00:00  x"], ["2026-11-30T04:04:06+00:00  x"])
