"""What the browser view's record, country and monthly pages read, on SQLite and PostgreSQL: states folded event by event equal
the repository's, country sheets by name, and a count figure month by month adding up to the figure."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.main import ledger
from domain.base import ref_id
from web import read, state
from web.read import Query, Reader

ROOT = Path(__file__).resolve().parents[2]


def imported(db_url: str) -> None:
    result = CliRunner().invoke(ledger, ["import", str(ROOT / "examples" / "platform-actions.jsonl"), "--db", db_url])
    assert result.exit_code == 0, result.output


def test_a_records_state_and_changes_are_the_repositorys_state_event_by_event(db_url: str) -> None:
    imported(db_url)
    reader = Reader(db_url)
    try:
        repository = reader.ledger().repository
        for ref in ("ORG-IT-0001", "MM-2024-MILAN-M001", "CASE-2024-0001"):
            page = read.record_page(reader, ref)
            assert page["state"] == state.state_of(repository.get(ref_id(ref)))
            for entry in page["events"][1:]:
                before = state.state_of(repository.get(ref_id(ref), version=entry["version"] - 1))
                after = state.state_of(repository.get(ref_id(ref), version=entry["version"]))
                changed = {k.replace("_", " ") for k in after if before.get(k) != after[k]}
                assert {c["field"] for c in entry["changes"]} == changed and changed, (ref, entry["version"])
        # A meeting names its activity and both organisations: each a link to a record the ledger holds.
        links = {name: v["ref"] for name, v in read.record_page(reader, "MM-2024-MILAN-M001")["fields"] if "ref" in v}
        assert links == {"activity": "MM-2024-MILAN", "requester": "ORG-LV-0007", "partner": "ORG-IT-0001"}
    finally:
        reader.close()


def test_countries_are_named_a_nuts_spelling_opens_the_sheet_and_months_add_up(db_url: str) -> None:
    imported(db_url)
    reader = Reader(db_url)
    try:
        listed = read.countries_page(reader, Query())["countries"]
        assert [(c["code"], c["name"]) for c in listed] == [("IT", "Italy"), ("LV", "Latvia")]
        for country in listed:
            sheet = read.country_page(reader, Query(country=country["code"]))
            assert country["profiles"] == next(f["value"] for f in sheet["figures"] if f["key"] == "cluster_organisations")
        greece = read.country_page(reader, Query(country="EL"))
        assert (greece["country"], greece["country_name"]) == ("GR", "Greece")
        assert read.country_code("uk") == "GB"
        figures = {f["key"]: f["value"] for f in read.figures_page(reader, Query())["figures"]}
        for key in ("bilateral_meetings", "cooperation_cases_identified"):
            months = read.figure_months(reader, key, Query())["months"]
            assert len(months) == 24 and sum(m["value"] for m in months) == figures[key] > 0
    finally:
        reader.close()
