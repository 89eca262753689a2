"""Commands for reporting jobs and auditors: project, report, trace, audit."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

import bootstrap
from cli import render
from cli.context import Settings, db_option, output_option, pass_settings, readable
from cli.files import write_whole, read_text
from domain.errors import InvalidValue
from presentation.text import count, number
from projections import reports, runner
from projections.figures import (
    SHOWN_AS, SHOWN_AS_NOTE, EvidencePage, RowSource, Settings as Period, compared_with_published, evidence_listing, evidence_page, published_figures,
)
from projections.platform import FOLD_VERSION
from projections.reports import Sources
from service_layer.log_check import require_readable
from transparency import audit, log
from transparency.errors import TransparencyError
from transparency.note import Checkpoint, Signer, Verifier, parse_signer, parse_verifier, read_checkpoint, sign_note, split_note
from transparency.policy import Policy, parse_policy
from transparency.policy import check as check_policy
from transparency.signed_report import CHECKPOINT, check_signature, differences, parse_signed_report, sign_report

FORMATS = ["table", "json", "csv", "markdown", "html"]
EVIDENCE_LISTED = 50  # events per figure on the HTML page; `ledger trace KEY` lists them all
TRACE_PAGE = 100_000  # events `ledger trace` computes at a time, so memory stays bounded whatever the figure


@contextmanager
def open_sources(db: str | None, *, reading: bool = True) -> Iterator[Sources]:
    """The ledger's log and the projection store, closed afterwards; a database that holds no ledger is refused. Only
    `reading` may use a temporary copy of a ledger file that cannot be written (`project` writes the projection itself)."""
    if reading:
        db = readable(db)
    elif bootstrap.require_ledger(db).note:
        raise click.ClickException(f"db: {bootstrap.describe(bootstrap.database_url(db))} cannot be written here (read-only, or its "
                                   "disk is full); its projection cannot be brought up to date, nothing was written (reports still work)")
    ledger = bootstrap.build_ledger(db)
    store = bootstrap.build_projection_store(db)
    if getattr(store, "note", ""):
        click.echo(store.note, err=True)
    try:
        yield Sources(ledger.recorder, ledger.mapper, store)
    finally:
        store.close()
        ledger.close()


def _period(start: str | None, end: str | None) -> tuple[date, date]:
    default_start, default_end = reports.default_period()
    first = render.parse_moment("from", start).date() if start else default_start
    last = render.parse_moment("to", end).date() if end else default_end
    if last < first:
        raise InvalidValue("to", last.isoformat(), f"is before from ({first.isoformat()})")
    return first, last


def period_options(f: Any) -> Any:
    f = click.option("--as-of", "as_of", help="only events recorded by this moment (ISO timestamp): the report as it could have been issued then")(f)
    f = click.option("--to", "end", help="last day of the period (default: 2025-12-31)")(f)
    f = click.option("--from", "start", help="first day of the period (default: 2024-01-01)")(f)
    return click.option("--window-days", type=click.IntRange(min=1), default=365, show_default=True, help="a profile counts as regularly updated if updated within this many days")(f)


def _notice(line: str) -> None:
    click.echo(line, err=True)


def _rows(sources: Sources, as_of: datetime | None) -> tuple[RowSource, reports.Included]:
    position = sources.store.position(runner.PROJECTION, FOLD_VERSION)
    caught_up_here = as_of is None and not sources.store.fed_by_consumers(runner.PROJECTION)  # else Kafka consumers feed it
    if as_of is not None or caught_up_here:
        require_readable(sources.recorder, 0 if as_of is not None else position)
    behind = (sources.recorder.max_notification_id() or 0) - position if caught_up_here else 0
    with render.catching_up("catching up the read model", behind, label="catching up", threshold=5000) as bar:
        return reports.platform_rows_included(sources, as_of, progress=bar.update, notice=_notice)


def run_report(db: str | None, start: str | None, end: str | None, as_of: str | None, window_days: int, country: str | None, charts: bool = False) -> tuple[dict[str, Any], Any]:
    first, last = _period(start, end)
    moment = render.parse_moment("as-of", as_of, past=True) if as_of else None
    with open_sources(db) as sources:
        rows, included = _rows(sources, moment)
        report, figures = reports.impact(rows, Period(first, last, window_days, country=country), moment, charts=charts, included=included)
    if charts:
        # The HTML page lists the first events behind each count, so a figure can be followed to its evidence.
        report["evidence"] = evidence_listing(figures, EVIDENCE_LISTED)
    return report, figures


def render_report(report: dict[str, Any], fmt: str) -> str:
    """The report in one of FORMATS; a country sheet leaves out the platform-wide published values."""
    if fmt == "json":
        return json.dumps(report, indent=2)
    if fmt == "html":
        from projections.html import impact_page

        return impact_page(report)
    published = {f["key"]: f for f in published_figures()["figures"]}
    country = report.get("country")
    headers = ("figure", "value") if country else ("figure", "value", "published")
    # A table for people writes numbers as every output does (62,527); a CSV file keeps them as data (62527).
    shown = _value if fmt == "csv" else _text
    named = (lambda key: key) if fmt == "csv" else (lambda key: SHOWN_AS.get(key, key))
    rows = [
        (named(key), shown(value)) if country else (named(key), shown(value), f"{published[key]['qualifier']} {shown(published[key]['value'])}")
        for key, value in report["figures"].items()
    ]
    partners = ", ".join(f"{c} ({n})" for c, n in (report.get("cross_border_partners") or {}).items()) or "none"
    regions = report.get("regions") or {}
    by_region = f"profiles by region ({regions.get('classification')}): " + (
        ", ".join(f"{'no region given' if r == 'none' else r} ({n})" for r, n in regions.get("profiles", {}).items()) or "no profile")
    # The published values cover their own period: a report of another period is not set against them.
    other_period = "" if country or compared_with_published(report["period"]["from"], report["period"]["to"]) else (
        f"published values cover {published_figures()['period']['from']} to {published_figures()['period']['to']}, not this period; "
        "they are shown, not compared")
    period = f"{report['period']['from']} to {report['period']['to']}"
    title = f"Impact {period}" + (f" for {country}" if country else "") + (f", as of {report['as_of']}" if report["as_of"] else "")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    if fmt == "markdown":
        lines = [f"# {title}", "", "| " + " | ".join(headers) + " |", "| --- | ---: |" + (" --- |" if not country else "")]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
        if country:
            lines += ["", f"Cross-border partners: {partners}.", "", by_region[0].upper() + by_region[1:] + "."]
        lines += ["", f"Counting rules version {report['assumptions']['rules_version']}; regularly updated = updated within {report['assumptions']['regularly_updated_window_days']} days; "
                  f"{SHOWN_AS_NOTE}."]
        lines += ["", other_period[0].upper() + other_period[1:] + "."] if other_period else []
        return "\n".join(lines)
    body = render.table(headers, rows)
    notes = [f"cross-border partners: {partners}", by_region] if country else []
    return "\n".join([title, body, *notes, *([other_period] if other_period else []), f"{SHOWN_AS_NOTE}"])


def _value(value: Any) -> Any:
    return f"{value:.4f}" if isinstance(value, float) else value


def _text(value: Any) -> Any:
    if value is None:  # no profile to count from (an empty ledger, a period before any)
        return "none"
    return number(value) if isinstance(value, int) and not isinstance(value, bool) else _value(value)


SIGNED_FORMATS = ("json", "html")
"""The formats a signed report is written in: the JSON, or the page that carries it."""
CHARTS = ("charts", "evidence")
"""What only the HTML page shows: drawn from the figures' rows, never signed or re-derived."""


def signed(report: dict[str, Any], signer: Signer, db: str | None) -> dict[str, Any]:
    """The report signed, with the checkpoint of the tree up to its `as_of_position`: the published one of that size if this
    key signed one (it carries its witnesses' cosignatures), else one signed now."""
    store = bootstrap.build_tree_store(readable(db))
    try:
        log.catch_up(store)
        size = log.size_at(store, report["as_of_position"])
        published = [p.note for p in store.published(50) if p.size == size
                     and any(s.name == signer.name and s.hash == signer.verifier.hash for s in split_note(p.note)[1])]
        note = published[0] if published else sign_note(Checkpoint(signer.name, size, log.root(store, size)).body(), signer)
    finally:
        store.close()
    return sign_report({k: v for k, v in report.items() if k not in CHARTS}, note, signer)


def emit(text: str, out: Path | None, json_asked: bool = False) -> None:
    if out is None:
        click.echo(text)
        return
    write_whole(out, text + ("\n" if not text.endswith("\n") else ""), what="out")
    click.echo(f"wrote {out}", err=json_asked)  # where JSON is asked for, stdout holds nothing else


def register(ledger: click.Group) -> None:
    """Add the reporting and audit commands to the `ledger` group."""

    @ledger.command()
    @click.option("--rebuild", is_flag=True, help="drop the projections and rebuild them from position 0")
    @db_option
    @output_option
    @pass_settings
    def project(settings: Settings, rebuild: bool) -> None:
        """Catch every projection up with the ledger (or rebuild it)."""
        with open_sources(settings.db, reading=False) as sources:
            if sources.store.fed_by_consumers(runner.PROJECTION):
                raise InvalidValue("db", bootstrap.describe(bootstrap.database_url(settings.db)),
                                   "this read model is built by Kafka consumers; rebuild it by consuming into a new schema")
            total = sources.recorder.max_notification_id() or 0
            position = 0 if rebuild else sources.store.position(runner.PROJECTION, FOLD_VERSION)
            require_readable(sources.recorder, position)
            started = time.perf_counter()
            doing, left = ("rebuilding the read model", "to fold") if rebuild else ("catching up the read model", "behind")
            with render.catching_up(doing, total - position, label="rebuilding" if rebuild else "catching up", threshold=5000, left=left) as bar:
                job = runner.rebuild if rebuild else runner.catch_up
                applied = job(sources.recorder, sources.mapper, sources.store, progress=bar.update, notice=_notice)
            seconds = time.perf_counter() - started
        if settings.output == "json":
            click.echo(json.dumps({"outcome": "rebuilt" if rebuild else "caught up", "applied": applied, "seconds": round(seconds, 3)}, indent=2))
            return
        rate = f", {applied / seconds:,.0f} events/s" if applied and seconds > 0 else ""
        click.echo(f"{'rebuilt' if rebuild else 'caught up'}: applied {count(applied, 'event')} in {seconds:.1f} s{rate}")

    @ledger.group()
    def report() -> None:
        """Reports for reporting jobs: impact figures and country fact sheets."""

    def report_options(f: Any) -> Any:
        f = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write to this file instead of the terminal")(f)
        f = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="output format")(f)
        f = click.option("--sign", "key", type=click.Path(dir_okay=False, path_type=Path),
                         help="signer key file: sign the report (json or html) with the signed checkpoint of its tree, for `report verify`")(f)
        return db_option(period_options(f))

    def issue(settings: Settings, report_: dict[str, Any], fmt: str, out: Path | None, signer: Signer | None) -> None:
        if signer is None:
            emit(render_report(report_, fmt), out, json_asked=fmt == "json")
            return
        carried = signed(report_, signer, settings.db)
        if fmt == "json":
            emit(json.dumps(carried, indent=2, ensure_ascii=False), out, json_asked=True)
            return
        from projections.html import impact_page

        emit(impact_page(report_, carried, report_name=out.name if out else "REPORT", key_name=signer.name), out)

    def signer_of(key: Path | None, fmt: str) -> Signer | None:
        if key is None:
            return None
        if fmt not in SIGNED_FORMATS:
            raise click.UsageError(f"--sign writes a report as {' or '.join(SIGNED_FORMATS)}: give --format json or --format html")
        return parse_signer(read_text(key, "sign"))

    @report.command("impact")
    @report_options
    @pass_settings
    def impact(settings: Settings, start: str | None, end: str | None, as_of: str | None, window_days: int, fmt: str, out: Path | None,
               key: Path | None) -> None:
        """The published impact figures, rebuilt for any period."""
        signer = signer_of(key, fmt)
        report_, _ = run_report(settings.db, start, end, as_of, window_days, None, charts=fmt == "html")
        issue(settings, report_, fmt, out, signer)

    @report.command("country")
    @click.argument("country")
    @report_options
    @pass_settings
    def country(settings: Settings, country: str, start: str | None, end: str | None, as_of: str | None, window_days: int, fmt: str, out: Path | None,
                key: Path | None) -> None:
        """A country fact sheet: the figures for one country and its cross-border partners."""
        from domain.values import country_code

        try:
            code = country_code(country)
        except ValueError as error:
            raise InvalidValue("country", country, str(error)) from None
        signer = signer_of(key, fmt)
        report_, _ = run_report(settings.db, start, end, as_of, window_days, code, charts=fmt == "html")
        issue(settings, report_, fmt, out, signer)

    @report.command("verify")
    @click.argument("report_file", metavar="REPORT", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--verifier-key", "key", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="the verifier key of the report's signer (and of its checkpoint's)")
    @click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="C2SP tlog-policy file: the report's checkpoint must also be cosigned by its quorum")
    @db_option
    @output_option
    @pass_settings
    def verify_report(settings: Settings, report_file: Path, key: Path, policy_file: Path | None) -> None:
        """Check a signed report's signatures and checkpoint against this ledger, derive it again there and compare every figure;
        exit 1 on any difference."""
        verifier = parse_verifier(read_text(key, "verifier-key"))
        policy = parse_policy(read_text(policy_file, "policy")) if policy_file is not None else None
        try:
            claimed = parse_signed_report(read_text(report_file, "report"))
        except TransparencyError as error:
            raise click.ClickException(f"report: {str(report_file)!r}: {error}") from None
        findings: list[str] = []
        try:
            check_signature(claimed, verifier)
        except TransparencyError as error:
            findings.append(f"report: {error}")
        cp = _report_checkpoint(claimed[CHECKPOINT], verifier, policy, findings)
        db = readable(settings.db)
        store = bootstrap.build_tree_store(db)
        try:
            log.catch_up(store)
            position = claimed["as_of_position"]
            if position > store.last_position():
                raise click.ClickException(f"as_of_position: {position}: this ledger's log ends at position {store.last_position()}; "
                                           "bring it up to date (`ledger mirror`) and run this again")
            size = log.size_at(store, position)
            if cp is not None and cp.size != size:
                findings.append(f"checkpoint: its tree has {cp.size} leaves; this ledger's tree up to position {position} has {size}")
            with render.progress(length=store.size(), label="verifying", threshold=20_000) as bar:
                findings += [f.line() for f in audit.verify(store, cp if cp is not None and cp.size == size else None, progress=bar.update).findings]
        finally:
            store.close()
        with open_sources(db) as sources:
            derived = reports.rederive(sources, claimed)
        found = differences(claimed, derived)
        findings += [d.line() for d in found]
        if settings.output == "json":
            click.echo(json.dumps({"verified": not findings, "signed_by": verifier.name, "tree_size": size, "as_of_position": position,
                                   "figures": len(claimed["figures"]), "findings": findings}, indent=2))
        elif findings:
            for line in findings:
                click.echo(line)
        if findings:
            raise click.ClickException(f"the report does not hold: {count(len(findings), 'finding')}, {number(len(found))} of them in what it reports")
        if settings.output == "json":
            return
        click.echo(f"verified: report signed by {verifier.name}; its checkpoint matches this ledger's tree of {count(size, 'event')} up to "
                   f"position {position}; all {count(len(claimed['figures']), 'figure')}, derived again there, are equal")

    @ledger.command()
    @click.argument("key")
    @period_options
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="output format")
    @db_option
    @pass_settings
    def trace(settings: Settings, key: str, start: str | None, end: str | None, as_of: str | None, window_days: int, fmt: str) -> None:
        """The events behind one figure, so it can be checked by hand."""
        keys = [f["key"] for f in published_figures()["figures"]]
        if key not in keys:
            raise InvalidValue("key", key, f"not a figure; one of: {', '.join(keys)}")
        first, last = _period(start, end)
        moment = render.parse_moment("as-of", as_of, past=True) if as_of else None
        with open_sources(settings.db) as sources:
            rows, _ = _rows(sources, moment)
            pages = _evidence_pages(rows, Period(first, last, window_days), key)
            page = next(pages)
            if fmt == "json":
                # One event a line, written as its page is computed.
                head = json.dumps({"figure": key, "value": page.value, "is_count": page.is_count})
                click.echo(head[:-1] + ', "events": [', nl=False)
                listed = 0
                for page in _chain(page, pages):
                    for e in page.events:
                        click.echo(("\n  " if not listed else ",\n  ") + json.dumps(e.__dict__), nl=False)
                        listed += 1
                click.echo("\n]}")
                return
            # The first page sets the column widths, so the table can be printed a page at a time.
            header = render.table(("position", "aggregate", "event", "value"), [_traced(e) for e in page.events])
            widths = [len(cell) for cell in header.splitlines()[1].split("  ")]
            click.echo("\n".join(header.splitlines()[:2]))
            listed = 0
            for page in _chain(page, pages):
                for e in page.events:
                    click.echo("  ".join(render.printable(str(v)).ljust(w) for v, w in zip(_traced(e), widths)).rstrip())
                listed += len(page.events)
        click.echo(f"{key} = {_text(page.value)} ({count(listed, 'event')} listed)")


def _report_checkpoint(note: str, verifier: Verifier, policy: Policy | None, findings: list[str]) -> Checkpoint | None:
    """The report's checkpoint, its signature (and with `policy`, its cosignatures) checked; a failure is noted in `findings`."""
    try:
        if policy is None:
            return read_checkpoint(note, verifier)
        witnessed = check_policy(policy, note, verifier)
    except TransparencyError as error:
        findings.append(f"checkpoint: {error}")
        return None
    for line in witnessed.lines():
        click.echo(f"checkpoint: {line}")
    problem = witnessed.problem()
    if problem is not None:
        findings.append(f"checkpoint: policy: {problem}")
    return witnessed.checkpoint


def _traced(e: Any) -> tuple[Any, ...]:
    return (e.position, e.ref, e.event, "" if e.value is None else e.value)


def _evidence_pages(rows: RowSource, period: Period, key: str) -> Iterator[EvidencePage]:
    """Every event behind one figure, TRACE_PAGE at a time, in position order."""
    after = 0
    while True:
        page = evidence_page(rows, period, key, after=after, limit=TRACE_PAGE)
        yield page
        if not page.more:
            return
        after = page.events[-1].position


def _chain(first: EvidencePage, rest: Iterator[EvidencePage]) -> Iterator[EvidencePage]:
    yield first
    yield from rest
