"""A figure's values over many periods, counted in one pass over the rows it reads, equal the figures computed period by period."""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import date

import pytest

from projections.figures import Settings, compute, months_between, values_by_period
from tests.unit.test_streaming_figures import KEYS, PERIOD, generated_rows


def monthly(country: str | None) -> list[Settings]:
    """Each month from before the period's start to after its end, as a period of its own."""
    periods = []
    for month in months_between(date(2023, 11, 1), date(2026, 2, 1)):
        first = date.fromisoformat(month + "-01")
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        periods.append(replace(PERIOD, start=first, end=last, country=country))
    return periods


@pytest.mark.parametrize("country", [None, "LV"])
def test_values_by_period_equal_figures_computed_period_by_period(country: str | None) -> None:
    rows = list(generated_rows(3_000))
    months = monthly(country)
    alone = [compute(lambda: rows, period, limit=0).values for period in months]
    assert all(any(values[key] for values in alone) for key in ("bilateral_meetings", "cooperation_cases_identified", "case_studies"))
    whole = compute(lambda: rows, replace(PERIOD, country=country), limit=0).values
    for key in KEYS:
        # Months apart count a row only in the months holding one of its days; with a period over them, in every period.
        assert values_by_period(lambda: rows, months, key) == [values[key] for values in alone], key
        assert values_by_period(lambda: rows, [*months, replace(PERIOD, country=country)], key) == [values[key] for values in alone] + [whole[key]], key


def test_periods_of_different_countries_are_refused() -> None:
    with pytest.raises(ValueError, match="countries"):
        values_by_period(lambda: [], [PERIOD, replace(PERIOD, country="LV")], "bilateral_meetings")
