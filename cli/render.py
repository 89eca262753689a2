"""Text rendering for the command line: tables, summaries, progress bars."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import click

from presentation.text import count, event_details, event_type, moment, number, parse_moment, printable, summary

__all__ = ["event_details", "event_type", "parse_moment", "printable", "summary", "progress", "catching_up", "table", "history"]

LONG_CATCH_UP = 100_000
"""Events behind from which bringing a read model or the tree up to date is said in one line first: seconds of work, more
than the scale-1 demo history holds."""


class _Quiet:
    """Stands where a progress bar is not worth drawing."""

    def __init__(self, items: Iterable[Any] | None) -> None:
        self.items = items or ()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def update(self, n: int = 1) -> None:
        pass


@contextmanager
def progress(
    items: Sequence[Any] | None = None, label: str = "", length: int | None = None, threshold: int = 2000
) -> Iterator[Any]:
    """A progress bar on stderr for long work at a terminal; nothing for short work or when stderr is not a terminal."""
    size = length if length is not None else len(items or ())
    if size < threshold or not sys.stderr.isatty():
        yield _Quiet(items)
        return
    with click.progressbar(items, length=length, label=label, file=sys.stderr, show_pos=True, item_show_func=lambda rate: rate) as bar:
        yield _Rated(bar) if items is None else bar


@contextmanager
def catching_up(doing: str, behind: int, label: str, threshold: int = 2000, left: str = "behind") -> Iterator[Any]:
    """`progress` for bringing a read model or the tree up to date from `behind` events behind; when that is long work, what
    is being done is first said in one line on stderr, at a terminal or not (stdout stays the command's output alone)."""
    if behind >= LONG_CATCH_UP:
        click.echo(f"{doing}: {count(behind, 'event')} {left}", err=True)
    with progress(length=behind, label=label, threshold=threshold) as bar:
        yield bar


class _Rated:
    """Shows the rate of a progress bar driven by `update(n)`, e.g. events per second."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.started = time.perf_counter()
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n
        elapsed = max(time.perf_counter() - self.started, 1e-6)
        self.bar.update(n, current_item=f"{self.done / elapsed:,.0f}/s")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain fixed-width table; stored text is shown escaped, never interpreted by the terminal."""
    cells = [[str(h) for h in headers], *([("" if v is None else printable(str(v))) for v in row] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def history(events: Sequence[Any], fmt: str, recorded_by: Mapping[int, str] | None = None) -> str:
    """An aggregate's events, oldest first, with the writer whose key signed each ("-" where none did)."""
    by = recorded_by or {}
    if fmt == "json":
        return json.dumps(
            [
                {
                    "version": e.originator_version,
                    "type": event_type(e),
                    "occurred_at": e.occurred_at.isoformat(),
                    "recorded_at": e.timestamp.isoformat(),
                    "actor": e.actor,
                    "recorded_by": by.get(e.originator_version, ""),
                    "details": event_details(e),
                }
                for e in events
            ],
            indent=2,
        )
    rows = [
        (e.originator_version, event_type(e), moment(e.occurred_at), moment(e.timestamp), e.actor,
         by.get(e.originator_version) or "-", summary(e))
        for e in events
    ]
    return table(("version", "type", "effective", "recorded", "actor", "recorded by", "details"), rows)


def demo_summary(counts: dict[str, int], url: str) -> str:
    """What the demo wrote."""
    lines = [f"wrote a demo history of {number(counts['events'])} events to {url}"]
    lines += [f"  {name.replace('_', ' ')}: {number(value)}" for name, value in counts.items() if name != "events"]
    return "\n".join(lines)


def stored_types(found: Sequence[Any], fmt: str) -> str:
    """The stored event types and versions, and whether this code reads each."""
    if fmt == "json":
        return json.dumps([{"topic": t.topic, "version": t.version, "events": t.count, "first_position": t.first_position,
                            "readable": t.readable, "problem": t.problem} for t in found], indent=2)
    if not found:
        return "no events stored"
    rows = [(t.topic, t.version, t.count, t.first_position, "yes" if t.readable else f"no: {t.problem}") for t in found]
    return table(("type", "version", "events", "first position", "readable"), rows)
