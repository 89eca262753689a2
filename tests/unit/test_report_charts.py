"""The HTML report's chart data: an even month axis and top lists that say what they leave out."""

from __future__ import annotations

from collections import Counter
from datetime import date

from projections.figures import months_between, top_with_ties


def test_the_month_axis_has_every_month_of_the_period_across_years() -> None:
    assert months_between(date(2024, 11, 15), date(2025, 2, 1)) == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert months_between(date(2024, 3, 1), date(2024, 3, 31)) == ["2024-03"]
    assert len(months_between(date(2024, 1, 1), date(2025, 12, 31))) == 24


def test_a_top_list_never_splits_a_tie_silently() -> None:
    assert top_with_ties(Counter({"a": 3, "b": 2, "c": 1}), 5) == {"shown": {"a": 3, "b": 2, "c": 1}, "of": 3, "limit": 5, "tie": None}
    clean = top_with_ties(Counter({"a": 3, "b": 2, "c": 1}), 2)
    assert clean["shown"] == {"a": 3, "b": 2} and clean["tie"] is None
    small_tie = top_with_ties(Counter({"a": 5, "b": 3, "c": 3, "d": 3, "e": 3, "f": 1}), 4)
    assert small_tie["shown"] == {"a": 5, "b": 3, "c": 3, "d": 3, "e": 3} and small_tie["tie"] == {"value": 3, "size": 4, "shown": 4}
    big_tie = top_with_ties(Counter({"a": 5, **{f"p{i:02d}": 1 for i in range(40)}}), 4)
    assert list(big_tie["shown"]) == ["a", "p00", "p01", "p02"] and big_tie["tie"] == {"value": 1, "size": 40, "shown": 3}
    assert big_tie["of"] == 41
