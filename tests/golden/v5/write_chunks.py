"""Writes a signed ledger through both write paths with a fixed clock and key: what the byte-identity test repeats.

Usage (once, for this folder; never again): .venv/bin/python -m tests.golden.v5.write_chunks sqlite:///tests/golden/v5/chunks.db
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import bootstrap
from benchmarks import generate
from service_layer.importing import Problems, parse_lines, read_lines
from service_layer.ledger import read_signer

HERE = Path(__file__).resolve().parent
KEY = HERE / "golden-writer.key"
"""A signer key made for this folder only (it signs nothing else): with it, the same commands sign to the same bytes."""
ACTIONS = HERE.parents[0] / "v1" / "every-event.jsonl"
GENERATED, SEED, BATCH, CHUNK = 400, 7, 150, 20


class Clock:
    """Recorded time: one millisecond later at each call, from a fixed moment after every fact written."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def write(url: str) -> None:
    """Generated commands by `Ledger.execute` in batches of BATCH, then every event type by `execute_in_chunks`, CHUNK at a time (an import's path)."""
    app = bootstrap.build_ledger(url, clock=Clock(), signer=read_signer(str(KEY)))
    try:
        for run in generate.batches(GENERATED, SEED, BATCH):
            app.execute(run, actor=generate.ACTOR)
        problems = Problems()
        with ACTIONS.open("rb") as stream:
            numbered = list(parse_lines(read_lines(stream, problems), lambda error: [str(error)], problems))
        assert not problems, problems.report()
        app.execute_in_chunks(numbered, "golden.import", chunk=CHUNK)
    finally:
        app.close()


if __name__ == "__main__":
    write(sys.argv[1])
