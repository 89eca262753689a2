"""One style for numbers, counts and moments in every text output."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from presentation.text import count, moment, number


def test_numbers_are_grouped_by_thousands() -> None:
    assert [number(n) for n in (0, 999, 62527, 10_000_000)] == ["0", "999", "62,527", "10,000,000"]


def test_counts_agree_with_their_number() -> None:
    assert [count(n, "event") for n in (0, 1, 2, 2000)] == ["0 events", "1 event", "2 events", "2,000 events"]
    assert count(1, "entry", "entries") == "1 entry" and count(3, "entry", "entries") == "3 entries"


def test_moments_are_utc_to_the_second_with_their_offset() -> None:
    paris = timezone(timedelta(hours=2))
    assert moment(datetime(2025, 6, 1, 14, 0, 0, 123456, tzinfo=paris)) == "2025-06-01T12:00:00+00:00"
