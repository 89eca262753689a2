"""Downloads of the browser view's lists, every row and not one page: CSV with a header row, or JSON Lines (one object a line)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from domain.errors import InvalidValue
from web import audit
from web.audit import LogFilter

if TYPE_CHECKING:
    from web.read import Query, Reader

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
CHUNK = 2_000
"""Rows read at a time: a download's memory stays bounded, and other pages are served between its chunks."""
EVIDENCE_RUN = 25_000
"""A figure's events found in one pass over the rows for its download; their memory is bounded by this many."""
AUDIT_COLUMNS = ("position", "recorded_at", "occurred_at", "actor", "ref", "type", "summary")
EVIDENCE_COLUMNS = ("position", "ref", "type", "value", "occurred_at", "recorded_at")
FIGURE_COLUMNS = ("key", "label", "value", "events", "published_qualifier", "published_value", "meets")
HISTORY_COLUMNS = ("version", "position", "type", "occurred_at", "recorded_at", "actor", "recorded_by_as_of", "summary")
COUNTRY_LISTS = {"partners": ("country", "meetings_and_cases"), "regions": ("region", "profiles")}


def media_type(fmt: str) -> str:
    """The media type of a download format; InvalidValue unless it is csv or jsonl."""
    if fmt not in FORMATS:
        raise InvalidValue("format", fmt, "one of: csv, jsonl")
    return FORMATS[fmt]


def encoder(fmt: str, columns: tuple[str, ...]) -> Any:
    """A function from rows to the bytes of a download; for CSV, its first call writes the header row first."""
    started = False

    def encode(rows: list[dict[str, Any]]) -> bytes:
        nonlocal started
        if fmt == "jsonl":
            return "".join(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n" for row in rows).encode()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        if not started:
            writer.writerow(columns)
            started = True
        writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
        return out.getvalue().encode()

    return encode


def _cell(value: Any) -> Any:
    """A value as one CSV cell: lists and objects as their JSON, nothing as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def audit_rows(reader: Reader, given: LogFilter, at: int | None) -> Iterator[list[dict[str, Any]]]:
    """Every event of the audit log that passes the filters, as the log stood at `at` (default: now), a chunk at a time."""
    pinned = at if at is not None else reader.sources().recorder.max_notification_id() or 0
    yield from audit.pages(reader, given, pinned, CHUNK)


def evidence_rows(reader: Reader, key: str, query: Query) -> Iterator[list[dict[str, Any]]]:
    """Every event behind one figure, a chunk at a time: one pass over the rows per EVIDENCE_RUN of them, not one per chunk."""
    from web.read import listed_events, require_figure

    require_figure(key)
    query.period(), query.moment()  # a bad period is refused before the download starts
    after, started = 0, False
    while True:
        found, _ = reader.evidence(query, key, after, EVIDENCE_RUN)
        for start in range(0, len(found.events), CHUNK):
            started = True
            yield listed_events(reader, found.events[start : start + CHUNK])
        if not found.more or not found.events:
            break
        after = found.events[-1].position
    if not started:  # a figure with no events: the header row alone
        yield []


def figure_rows(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The figures of a figures page or a country sheet as flat rows."""
    return [{**f, "published_qualifier": (f.get("published") or {}).get("qualifier"), "published_value": (f.get("published") or {}).get("value")}
            for f in figures]


def country_rows(sheet: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A country sheet's cross-border partners or its profiles by region, as rows; InvalidValue for another list."""
    if name not in COUNTRY_LISTS:
        raise InvalidValue("list", name, "one of: " + ", ".join(COUNTRY_LISTS))
    key, value = COUNTRY_LISTS[name]
    found = sheet["cross_border_partners"] if name == "partners" else sheet["regions"]["profiles"]
    return [{key: k, value: n} for k, n in found.items()]
