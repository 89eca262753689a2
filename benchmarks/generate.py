"""A history of any size, streamed: demo-like two-year cycles with new refs, written through the ledger in large batches.

Each cycle is the demo history planned at CYCLE_SCALE with its own seed, its refs tagged with the cycle number, so
nothing of an earlier cycle is held in memory. Batches are recorded a millisecond apart from 2026-01-01, after every
fact they hold, so positions follow recorded time as in a real ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from service_layer import commands as c
from service_layer.demo import ACTOR, DemoHistory, plan_history

CYCLE_SCALE = 0.25
"""About 15,600 events per cycle."""
BATCH = 2_000
"""Commands per atomic batch."""
FIRST_RECORDED = datetime(2026, 1, 1, tzinfo=timezone.utc)

_REF_FIELDS = ("org", "activity", "meeting", "pitch", "case", "publication", "source", "requester", "partner")


def commands(size: int, seed: int = 2024) -> Iterator[c.Command]:
    """`size` commands (each records one event), cycle after cycle, in the order the demo records them."""
    produced, cycle = 0, 0
    while produced < size:
        plan = plan_history(DemoHistory(seed=seed + cycle, scale=CYCLE_SCALE))
        items = sorted((item for day in sorted(plan.by_day) for item in plan.by_day[day]), key=lambda item: (item[0], item[1]))
        del plan
        for _, _, command in items:
            if produced == size:
                return
            yield tagged(command, cycle)
            produced += 1
        cycle += 1


def tagged(command: c.Command, cycle: int) -> c.Command:
    """`command` with every ref it names made unique to `cycle` (cycle 0 keeps the demo's refs)."""
    if cycle == 0:
        return command
    update: dict[str, Any] = {}
    for name in _REF_FIELDS:
        value = getattr(command, name, None) if name in type(command).model_fields else None
        if isinstance(value, str):
            update[name] = f"{value}:{cycle}"
    if isinstance(command, c.IdentifyCase):
        update["orgs"] = tuple(f"{ref}:{cycle}" for ref in command.orgs)
    person = getattr(command, "person", None) if "person" in type(command).model_fields else None
    if isinstance(person, str):
        update["person"] = f"P-{cycle:04x}{person[2:]}"
    return command.model_copy(update=update)


def batches(size: int, seed: int = 2024, batch: int = BATCH) -> Iterator[list[c.Command]]:
    """The commands of `commands(size, seed)` in runs of `batch`."""
    run: list[c.Command] = []
    for command in commands(size, seed):
        run.append(command)
        if len(run) == batch:
            yield run
            run = []
    if run:
        yield run


class Clock:
    """Recorded time for the generated batches: one millisecond later at each call."""

    def __init__(self) -> None:
        self.now = FIRST_RECORDED

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def write(app: Any, size: int, seed: int = 2024) -> int:
    """Write `size` generated events into the ledger `app` (built with a `Clock`); how many were written."""
    written = 0
    for run in batches(size, seed):
        written += app.execute(run, actor=ACTOR).events
    return written


def import_lines(size: int, seed: int = 2024) -> Iterator[str]:
    """The same commands as JSON Lines an import file holds."""
    import json

    for command in commands(size, seed):
        yield json.dumps(command.model_dump(mode="json", exclude_none=True, exclude={"key"}), ensure_ascii=False)
