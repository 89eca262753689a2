"""Both projection stores stream their rows, all of them or some kinds, and figures read from a store equal those of the same rows in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import bootstrap
from projections.figures import Settings, StoredRows, chart_data, compute, cross_border_partners, evidence_page, regions
from projections.store import ProjectionStore, encode
from tests.unit.test_streaming_figures import PERIOD, generated_rows


@pytest.fixture
def store(db_url: str) -> Iterator[ProjectionStore]:
    opened = bootstrap.build_projection_store(db_url)
    rows = list(generated_rows(3_000))
    opened.put_rows("platform", [(f"{row['kind']}:{row['ref']}", encode(row)) for row in rows])
    opened.put_rows("other", [("x", encode({"kind": "org", "ref": "not platform"}))])
    yield opened
    opened.close()


def test_a_store_streams_every_row_or_the_rows_of_some_kinds(store: ProjectionStore) -> None:
    rows = sorted(map(encode, generated_rows(3_000)))
    assert sorted(map(encode, store.iter_rows("platform"))) == rows
    chosen = sorted(encode(row) for row in generated_rows(3_000) if row["kind"] in ("activity", "pitch"))
    assert sorted(map(encode, store.iter_rows("platform", {"activity", "pitch"}))) == chosen
    assert list(store.iter_rows("platform", set())) == []


def test_a_row_written_in_other_json_is_still_found_by_kind(store: ProjectionStore) -> None:
    store.put_rows("platform", [("spaced", '{"kind": "pitch", "ref": "SPACED"}'), ("nested", '{"ref": "N", "kind": "case", "x": {"kind":"pitch"}}')])
    assert "SPACED" in {row["ref"] for row in store.iter_rows("platform", {"pitch"})}
    assert "N" not in {row["ref"] for row in store.iter_rows("platform", {"pitch"})}


@pytest.mark.parametrize("country", [None, "LV"])
def test_figures_from_a_store_equal_figures_from_the_same_rows_in_memory(store: ProjectionStore, country: str | None) -> None:
    rows = list(generated_rows(3_000))
    settings = Settings(PERIOD.start, PERIOD.end, country=country)
    stored, held = StoredRows(store, "platform"), lambda: rows
    expected, found = compute(held, settings), compute(stored, settings)
    assert (found.values, found.evidence, found.totals) == (expected.values, expected.evidence, expected.totals)
    assert cross_border_partners(stored, settings) == cross_border_partners(held, settings)
    assert regions(stored, settings) == regions(held, settings)
    assert chart_data(stored, settings) == chart_data(held, settings)


@pytest.mark.parametrize("country", [None, "LV"])
def test_a_figures_events_read_from_its_kinds_of_rows_equal_those_of_every_figure_from_every_row(store: ProjectionStore, country: str | None) -> None:
    rows = list(generated_rows(3_000))
    settings = Settings(PERIOD.start, PERIOD.end, country=country)
    everything = compute(lambda: rows, settings, limit=len(rows))
    for key in everything.values:
        listed = everything.evidence[key]
        after = listed[len(listed) // 2].position if listed else 0
        page = evidence_page(StoredRows(store, "platform"), settings, key, after=after, limit=5)
        assert (page.value, page.total) == (everything.values[key], everything.totals[key]), key
        assert page.events == [e for e in listed if e.position > after][:5], key
        assert page.skipped == sum(e.position <= after for e in listed), key


def test_rows_asked_for_a_text_are_every_row_whose_names_hold_it_ignoring_case(store: ProjectionStore) -> None:
    store.put_rows("platform", [(f"named:{i}", encode({"kind": "org", "ref": f"NAMED-{i}", "versions": [{"name": name}]}))
                                for i, name in enumerate(["Baltic Straße Cluster", "BALTIC wood", 'The "Quoted" Baltic', "Back\\slash baltic", "Solar"])])

    def named(rows: Iterator[Any], text: str) -> set[str]:
        return {r["ref"] for r in rows if any(text.casefold() in str(v.get("name", "")).casefold() for v in r.get("versions") or ())}

    for text in ("baltic", "strasse", "straße", "Baltic Straße", '"quoted"', "back\\slash", "wood", "solar", "nothing like it"):
        assert named(store.iter_rows("platform", {"org"}, holding=text.casefold()), text) == named(store.iter_rows("platform", {"org"}), text), text
    assert {r["ref"] for r in store.iter_rows("platform", {"org"}, holding="wood")} <= {"NAMED-0", "NAMED-2", "NAMED-3", "NAMED-1"}
