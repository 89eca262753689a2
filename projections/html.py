"""A self-contained HTML impact page: the figures table, inline SVG charts and the events behind each count, nothing fetched."""

from __future__ import annotations

import math
from importlib import metadata
from datetime import datetime, timezone
from html import escape
from typing import Any

from projections.figures import SHOWN_AS, SHOWN_AS_NOTE, compared_with_published, meets, published_figures
from transparency.signed_report import CHECKPOINT, embed

KIND_COLOURS = {
    "matchmaking": "#1f77b4", "clusters_talk": "#ff7f0e", "clusters_meet_regions": "#2ca02c",
    "c2lab": "#d62728", "booster_academy": "#9467bd", "mission": "#8c564b",
}
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:64rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}h3{font-size:1rem;margin:1.2rem 0 .3rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}
th{border-bottom:2px solid #999}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17803d}.miss{color:#b42318}
.legend span{display:inline-block;margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
small,.caption{color:#555}.caption{margin:.2rem 0 .6rem}code{font-size:.9em}
#evidence table{width:auto;font-size:.85rem}#evidence td{padding:.1rem .6rem}
"""


def _number(value: Any) -> str:
    if value is None:  # no profile to count from
        return "none"
    if isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def _moment(iso: str) -> str:
    """An ISO timestamp as an auditor reads it (UTC, to the millisecond when it has one), inside a machine-readable <time>."""
    moment = datetime.fromisoformat(iso)
    zone = ""
    if moment.tzinfo is not None:
        moment, zone = moment.astimezone(timezone.utc), " UTC"
    shown = moment.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds" if moment.microsecond else "seconds")
    return f'<time datetime="{escape(iso)}">{shown}{zone}</time>'


def _as_of(report: dict[str, Any]) -> str:
    """Which events the page includes: the last one's position and recorded time, after the --as-of asked for."""
    position, recorded = report.get("as_of_position"), report.get("as_of_recorded_at")
    if position is None:
        included = "as of the ledger's latest event"
    elif position == 0:
        included = 'as of position <span id="as-of-position">0</span> (no event recorded)'
    else:
        included = f'as of position <span id="as-of-position">{position:,}</span>' + (f", recorded {_moment(recorded)}" if recorded else "")
    text = f"Events recorded by {_moment(report['as_of'])}: {included}" if report.get("as_of") else included[0].upper() + included[1:]
    return f'<p id="as-of">{text}.</p>'


def _against(value: Any, published: Any, qualifier: str) -> str:
    """Whether a value meets the published one under its qualifier, and the rule it was held to."""
    tolerance = {"about": "±10%", "close to": "±5%"}.get(qualifier)
    rule = f"within {tolerance}" if tolerance else "equal" if qualifier == "exactly" else "greater"
    if value is None:
        return '<span class="miss">nothing to compare</span>'
    if meets(value, published, qualifier):
        return f'<span class="ok">meets</span> <small>({rule})</small>'
    if not isinstance(value, (int, float)) or not isinstance(published, (int, float)):
        side = "differs"
    else:
        side = "below" if value < published else "above" if value > published else "equal"
    return f'<span class="miss">{side}</span> <small>(not {rule})</small>'.replace("not within", "outside")


def _figures_table(report: dict[str, Any]) -> str:
    published = {f["key"]: f for f in published_figures()["figures"]}
    traced = report.get("evidence", {})
    platform = not report.get("country")
    # The published values cover their own period: a report of another period shows them, but is not set against them.
    compared = platform and compared_with_published(report["period"]["from"], report["period"]["to"])
    rows = []
    for key, value in report["figures"].items():
        ref = published[key]
        name = escape(SHOWN_AS.get(key, key).replace("_", " "))
        label = f'<a href="#evidence-{key}">{name}</a>' if key in traced else name
        cells = f'<tr data-key="{key}"><td>{label}</td><td class="num" data-value="{"" if value is None else escape(str(value))}">{_number(value)}</td>'
        if platform:
            cells += f"<td>{escape(ref['qualifier'])} {_number(ref['value'])}</td>"
        if compared:
            cells += f"<td>{_against(value, ref['value'], ref['qualifier'])}</td>"
        rows.append(cells + "</tr>")
    headers = '<th>figure</th><th class="num">value</th>' + ("<th>published</th>" if platform else "") + ("<th>against published</th>" if compared else "")
    period = published_figures()["period"]
    if not platform:
        note = "<p class=\"caption\">The published values are platform-wide, so a country's figures are not set against them.</p>"
    elif not compared:
        note = (f'<p class="caption" id="not-compared">The published values cover {period["from"]} to {period["to"]}; this report covers '
                f'{report["period"]["from"]} to {report["period"]["to"]}, so its figures are not set against them.</p>')
    else:
        note = ""
    return f'{note}<table id="figures"><thead><tr>{headers}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _ticks(peak: int) -> list[int]:
    """Round y-axis ticks (steps of 1, 2 or 5 times a power of ten) from 0 up to at least `peak`, at most six steps."""
    step = next(m * 10**k for k in range(12) for m in (1, 2, 5) if math.ceil(peak / (m * 10**k)) <= 6)
    return list(range(0, max(1, math.ceil(peak / step)) * step + 1, step))


def _monthly_chart(by_month: dict[str, dict[str, int]]) -> str:
    if not by_month:
        return "<p>No month in the period.</p>"
    width, height, left, right, top, bottom = 900, 280, 48, 10, 14, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    bar = plot_w / len(by_month)
    ticks = _ticks(max(sum(kinds.values()) for kinds in by_month.values()))
    scale = plot_h / ticks[-1]
    parts = [f'<text x="12" y="{top + plot_h / 2:.0f}" font-size="11" transform="rotate(-90 12 {top + plot_h / 2:.0f})" text-anchor="middle">activities held</text>']
    for tick in ticks:
        y = top + plot_h - tick * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{"#888" if tick == 0 else "#e3e3e3"}"/>')
        parts.append(f'<text class="y-tick" x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{tick:,}</text>')
    every = 1 if len(by_month) <= 36 else 3 if len(by_month) <= 96 else 12
    for i, (month, kinds) in enumerate(by_month.items()):
        x, total = left + i * bar, sum(kinds.values())
        y = top + plot_h
        stack = []
        for kind, count in kinds.items():
            h = count * scale
            y -= h
            stack.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" fill="{KIND_COLOURS.get(kind, "#999")}"><title>{month} {kind.replace("_", " ")}: {count}</title></rect>')
        parts.append(f'<g class="month" data-month="{month}" data-total="{total}"><title>{month}: {total} held</title>{"".join(stack)}</g>')
        year, number = month.split("-")
        if (int(number) - 1) % every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle">{MONTH_NAMES[int(number) - 1]}</text>')
        if i == 0 or number == "01":
            parts.append(f'<text x="{x + 1:.1f}" y="{top + plot_h + 30}" font-size="11" font-weight="bold">{year}</text>')
    legend = "".join(f'<span><i style="background:{c}"></i>{k.replace("_", " ")}</span>' for k, c in KIND_COLOURS.items())
    first, last = next(iter(by_month)), next(reversed(by_month))
    caption = f'<p class="caption">Every month from {first} to {last}; a month without an activity held shows as zero.</p>'
    svg = f'<svg id="activity-chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="activities held per month">{"".join(parts)}</svg>'
    return f"{caption}{svg}<div class=\"legend\">{legend}</div>"


def _bars(values: dict[str, int], chart_id: str, colour: str) -> str:
    if not values:
        return "<p>Nothing in the period.</p>"
    width, row = 900, 26
    peak = max(values.values()) or 1
    parts = []
    for i, (label, value) in enumerate(values.items()):
        w = (width - 260) * value / peak
        y = i * row
        parts.append(f'<g class="bar" data-label="{escape(label)}" data-value="{value}">')
        parts.append(f'<text x="0" y="{y + 17}" font-size="13">{escape(label)}</text>')
        parts.append(f'<rect x="180" y="{y + 4}" width="{w:.1f}" height="{row - 8}" fill="{colour}"><title>{escape(label)}: {value}</title></rect>')
        parts.append(f'<text x="{186 + w:.1f}" y="{y + 17}" font-size="13">{value:,}</text></g>')
    return f'<svg id="{chart_id}" viewBox="0 0 {width} {row * len(values)}" width="100%" role="img">{"".join(parts)}</svg>'


def _top_caption(cut: dict[str, Any], what: str, unit: tuple[str, str]) -> str:
    """"Top N of M" for a cut-off chart, and what a tie at the cut did."""
    shown, total, limit, tie = len(cut["shown"]), cut["of"], cut["limit"], cut.get("tie")
    each = f"{tie['value']:,} {unit[0] if tie['value'] == 1 else unit[1]} each" if tie else ""
    if total <= limit:
        text = f"All {total:,} {what}."
    elif tie and tie["shown"] == tie["size"]:
        text = f"Top {shown:,} of {total:,} {what}: {tie['size']:,} {what} have {each} and straddle the cut at {limit:,}, so all of them are shown."
    elif tie:
        text = (f"Top {shown:,} of {total:,} {what}. The cut falls inside a tie: {tie['shown']:,} of the {tie['size']:,} {what} "
                f"with {each} are shown (alphabetical order), the other {tie['size'] - tie['shown']:,} are not.")
    else:
        text = f"Top {shown:,} of {total:,} {what}, by number of {unit[1]}."
    return f'<p class="caption" id="{what.replace(" ", "-")}-cut">{text}</p>'


def _evidence(report: dict[str, Any]) -> str:
    """The appendix: for each count, the first events behind it and how to list the rest."""
    traced = report.get("evidence")
    if not traced:
        return ""
    listed = max(len(f["events"]) for f in traced.values())
    if not listed:
        return '<div id="evidence"><h2>Appendix: the events behind each count</h2><p class="caption">No event is counted in this report.</p></div>'
    period = report["period"]
    options = f"--from {period['from']} --to {period['to']}" + (f" --as-of {report['as_of']}" if report.get("as_of") else "")
    sections = []
    for key, found in traced.items():
        rows = "".join(
            f'<tr><td class="num">{e["position"]}</td><td>{escape(e["ref"])}</td><td>{escape(e["event"])}</td></tr>' for e in found["events"]
        )
        table = f'<table><thead><tr><th class="num">position</th><th>record</th><th>event</th></tr></thead><tbody>{rows}</tbody></table>' if rows else ""
        rest = found["total"] - len(found["events"])
        if report.get("country"):
            more = f"<p>and {rest:,} more, not listed here.</p>" if rest else ""
        else:
            more = f"<p>and {rest:,} more; <code>ledger trace {key} {escape(options)}</code> lists all {found['total']:,}.</p>" if rest else ""
        heading = f'<h3 id="evidence-{key}">{escape(key.replace("_", " "))}: {found["total"]:,} event{"" if found["total"] == 1 else "s"}</h3>'
        sections.append(f'<section data-key="{key}" data-total="{found["total"]}">{heading}{table}{more}</section>')
    intro = f'<p class="caption">For each count, the events it counts, by position in the ledger (the first {listed:,} of each).</p>'
    # Folded away, so the figures stay the page's subject; a figure's link opens it at its section.
    return (f'<details id="evidence"><summary><h2>Appendix: the events behind each count</h2></summary>{intro}{"".join(sections)}'
            "</details>")


def _signed(signed: dict[str, Any] | None, report_name: str, key_name: str) -> str:
    """A signed page: the checkpoint it was made from, how to verify it, and the signed report itself (which `report verify` reads)."""
    if signed is None:
        return ""
    key = key_name.replace("/", "_") + ".pub"
    commands = (f"ledger mirror PREFIX --verifier-key {key} --db sqlite:///copy.db\n"
                f"ledger report verify {report_name} --verifier-key {key} --db sqlite:///copy.db")
    return (
        f'<h2>Signed checkpoint</h2><p class="caption">The tree of the ledger\'s events up to position {signed["as_of_position"]:,}, '
        f'signed by {escape(key_name)}:</p><pre id="checkpoint">{escape(signed[CHECKPOINT])}</pre>'
        '<h2>Verify this report</h2><p id="verify">This page carries its figures signed, with the checkpoint above. Copy the '
        f'ledger with <code>ledger mirror</code> from where it is served, then let <code>ledger report verify</code> check both '
        'signatures, check that the copy holds the checkpoint\'s tree, derive the report again at its position and compare '
        f'every figure (exit 0 when all are equal):</p><pre>{escape(commands)}</pre>{embed(signed)}'
    )


def _generated() -> str:
    """When the page was made, and by which version of the ledger's code."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        version = metadata.version("cluster-ledger")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f'<p id="generated"><small>Generated {_moment(now)} by cluster-ledger {escape(version)}.</small></p>'


def impact_page(report: dict[str, Any], signed: dict[str, Any] | None = None, *, report_name: str = "REPORT", key_name: str = "") -> str:
    """The whole page as one string; a signed report also shows its checkpoint and how to verify it."""
    charts = report.get("charts", {})
    period = report["period"]
    title = f"Impact {period['from']} to {period['to']}" + (f" — {report['country']}" if report.get("country") else "")
    partners = report.get("cross_border_partners")
    partner_html = ""
    if partners is not None:
        everyone = {"shown": partners, "of": len(partners), "limit": len(partners), "tie": None}
        partner_html = f"<h2>Cross-border partners</h2>{_top_caption(everyone, 'partner countries', ('meeting or case', 'meetings and cases'))}{_bars(partners, 'partners-chart', '#2ca02c')}"
    pairs = charts.get("case_country_pairs", {"shown": {}, "of": 0, "limit": 0, "tie": None})
    # The charts count the whole platform, also on a country's page.
    everywhere = " (all countries)" if report.get("country") else ""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{_as_of(report)}<p><small>Counting rules version {escape(report['assumptions']['rules_version'])}; "
        f"regularly updated = updated within {report['assumptions']['regularly_updated_window_days']} days; {escape(SHOWN_AS_NOTE)}.</small></p>"
        f"{_generated()}"
        f"<h2>Figures</h2>{_figures_table(report)}"
        f"<h2>Activities held per month{everywhere}</h2>{_monthly_chart(charts.get('activity_by_month', {}))}"
        f"<h2>Cooperation funnel{everywhere}</h2>{_bars(charts.get('funnel', {}), 'funnel-chart', '#1f77b4')}"
        f"<h2>Cooperation cases by country pair{everywhere}</h2>{_top_caption(pairs, 'country pairs', ('case', 'cases')) if pairs['of'] else ''}"
        f"{_bars(pairs['shown'], 'pairs-chart', '#ff7f0e')}"
        f"{partner_html}{_signed(signed, report_name, key_name)}{_evidence(report)}</body></html>"
    )
