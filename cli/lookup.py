"""Commands that look records up: `list` the records of a kind, filtered, and `show` one record's current state."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click
from pydantic import TypeAdapter, ValidationError

from cli import render
from cli.context import Settings, db_option, pass_settings
from domain.errors import InvalidValue
from domain.values import participation_ref
from domain.values import CountryCode
from presentation.text import count, moment
from projections import lookup

_COUNTRY: TypeAdapter[str] = TypeAdapter(CountryCode)
NOUNS = {"orgs": ("organisation", None), "activities": ("activity", "activities"), "participants": ("participant", None),
         "meetings": ("meeting", None), "pitches": ("pitch", "pitches"), "cases": ("case", None), "publications": ("publication", None)}
"""How the line under a listing names its records."""


def period(year: int | None, start: str | None, end: str | None) -> tuple[date | None, date | None]:
    """The period of `--year`, or of `--from`/`--to` (either may be open); refused in one line if both forms are given."""
    if year is not None:
        if start or end:
            raise InvalidValue("year", str(year), "give --year or --from/--to, not both")
        return date(year, 1, 1), date(year, 12, 31)
    first = render.parse_moment("from", start).date() if start else None
    last = render.parse_moment("to", end).date() if end else None
    if first is not None and last is not None and last < first:
        raise InvalidValue("to", last.isoformat(), f"is before from ({first.isoformat()})")
    return first, last


def country_code(given: str) -> str:
    try:
        return _COUNTRY.validate_python(given)
    except ValidationError:
        raise InvalidValue("country", given, "not an ISO 3166 alpha-2 country code") from None


def _cell(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list) else value


def register(ledger: click.Group) -> None:
    """Add `list` and `show` to the `ledger` group."""

    @ledger.command("list")
    @click.argument("kind", type=click.Choice(list(lookup.KINDS)))
    @click.option("--country", help="only records of this country (an organisation's, a publication's, a case's or an activity's target)")
    @click.option("--year", type=click.IntRange(1900, 9999), help="only records created in this year (activities: running in it)")
    @click.option("--from", "start", help="only records created on or after this day (activities: ending on or after it)")
    @click.option("--to", "end", help="only records created on or before this day (activities: starting on or before it)")
    @click.option("--activity", help="only participants, meetings and pitches of this activity, or cases that came from it")
    @click.option("--org", help="only records of this organisation: its participations, meetings, pitches and cases")
    @click.option("--status", help="only records whose last step is this status, e.g. published, held, attended, exploring")
    @click.option("--as-of", "as_of", help="the records as the ledger knew them at this moment (ISO timestamp)")
    @click.option("--limit", type=click.IntRange(min=1), help="at most this many records, the first by reference")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="output format")
    @db_option
    @pass_settings
    def list_(settings: Settings, kind: str, country: str | None, year: int | None, start: str | None, end: str | None,
              activity: str | None, org: str | None, status: str | None, as_of: str | None, limit: int | None, fmt: str) -> None:
        """The records of one kind (orgs, activities, participants, meetings...) in their current state, filtered."""
        from cli.reporting import _rows, open_sources
        from projections.figures import StoredRows

        first, last = period(year, start, end)
        if status is not None:
            lookup.check_status(kind, status)
        filters = lookup.Filters(country=country_code(country) if country else None, start=first, end=last, activity=activity,
                                 org=org, status=status)
        when = render.parse_moment("as-of", as_of) if as_of else None
        with open_sources(settings.db) as sources:
            rows, _ = _rows(sources, when)
            # A store is asked for the rows of one kind only; rows folded as of a moment are all passed over.
            found = lookup.listing(rows([lookup.KINDS[kind]]) if isinstance(rows, StoredRows) else rows(), kind, filters)
        shown = list(lookup.limited(found, limit))
        if fmt == "json":
            click.echo(json.dumps(shown, indent=2))
            return
        noun, plural = NOUNS[kind]
        if shown:
            click.echo(render.table([k.replace("_", " ") for k in shown[0]], [[_cell(v) for v in r.values()] for r in shown]))
        more = f" (the first {len(shown)} of {len(found)})" if len(shown) < len(found) else ""
        click.echo(count(len(found), noun, plural) + more)

    @ledger.command("show")
    @click.argument("ref")
    @click.option("--activity", help="the activity REF takes part in: REF is then a participant (organisation or person)")
    @click.option("--as-of", "as_of", help="the record as the ledger knew it at this moment (ISO timestamp)")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="output format")
    @db_option
    @pass_settings
    def show(settings: Settings, ref: str, activity: str | None, as_of: str | None, fmt: str) -> None:
        """One record's current state (organisation, activity, participant, meeting, case...), or its state at a moment."""
        from service_layer.records import record_state

        until = render.parse_moment("as-of", as_of) if as_of else None
        app = settings.reader()
        try:
            found = record_state(app, participation_ref(activity, ref) if activity else ref, until)
        finally:
            app.close()
        shown = {"ref": found.ref, "id": found.id, "kind": found.kind, "version": found.version,
                 "as_of": until.isoformat() if until else None, "state": found.state}
        if fmt == "json":
            click.echo(json.dumps(shown, indent=2))
            return
        when = f", as of {moment(until)}" if until else ""
        click.echo(f"{found.kind} {found.ref}: version {found.version}{when}")
        click.echo(render.table(("field", "value"), [(k, _state_cell(v)) for k, v in found.state.items() if k != "ref"]))


def _state_cell(value: Any) -> str:
    if value in ([], {}):
        return "-"
    if isinstance(value, list):
        return ", ".join(_state_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_state_cell(v)}" for k, v in value.items())
    return "-" if value is None else str(value)
