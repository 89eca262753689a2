"""A self-contained HTML impact page: the figures table and inline SVG charts, nothing fetched."""

from __future__ import annotations

from html import escape
from typing import Any

from projections.figures import meets, published_figures

KIND_COLOURS = {
    "matchmaking": "#1f77b4", "clusters_talk": "#ff7f0e", "clusters_meet_regions": "#2ca02c",
    "c2lab": "#d62728", "booster_academy": "#9467bd", "mission": "#8c564b",
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:64rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#17803d}.miss{color:#b42318}
.legend span{display:inline-block;margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
small{color:#666}
"""


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def _figures_table(report: dict[str, Any]) -> str:
    published = {f["key"]: f for f in published_figures()["figures"]}
    rows = []
    for key, value in report["figures"].items():
        ref = published[key]
        ok = value is not None and meets(value, ref["value"], ref["qualifier"])
        mark = '<span class="ok">meets</span>' if ok else '<span class="miss">below</span>'
        rows.append(
            f'<tr data-key="{key}"><td>{escape(key.replace("_", " "))}</td><td class="num" data-value="{escape(str(value))}">{_number(value)}</td>'
            f"<td>{escape(ref['qualifier'])} {_number(ref['value'])}</td><td>{mark}</td></tr>"
        )
    return "<table id=\"figures\"><thead><tr><th>figure</th><th>value</th><th>published</th><th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"


def _monthly_chart(by_month: dict[str, dict[str, int]]) -> str:
    if not by_month:
        return "<p>No activity held in the period.</p>"
    width, height, pad = 900, 260, 30
    bar = (width - 2 * pad) / len(by_month)
    peak = max(sum(kinds.values()) for kinds in by_month.values())
    parts = []
    for i, (month, kinds) in enumerate(by_month.items()):
        y = height - pad
        for kind, count in kinds.items():
            h = (height - 2 * pad) * count / peak
            y -= h
            parts.append(f'<rect x="{pad + i * bar + 1:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" fill="{KIND_COLOURS.get(kind, "#999")}"><title>{month} {kind}: {count}</title></rect>')
        if i % 3 == 0:
            parts.append(f'<text x="{pad + i * bar:.1f}" y="{height - 8}" font-size="11">{month}</text>')
    parts.append(f'<text x="4" y="{pad - 8}" font-size="11">{peak} activities</text>')
    legend = "".join(f'<span><i style="background:{c}"></i>{k.replace("_", " ")}</span>' for k, c in KIND_COLOURS.items())
    return f'<svg id="activity-chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="activities held per month">{"".join(parts)}</svg><div class="legend">{legend}</div>'


def _bars(values: dict[str, int], chart_id: str, colour: str) -> str:
    if not values:
        return "<p>Nothing in the period.</p>"
    width, row = 900, 26
    peak = max(values.values()) or 1
    parts = []
    for i, (label, value) in enumerate(values.items()):
        w = (width - 260) * value / peak
        y = i * row
        parts.append(f'<text x="0" y="{y + 17}" font-size="13">{escape(label)}</text>')
        parts.append(f'<rect x="180" y="{y + 4}" width="{w:.1f}" height="{row - 8}" fill="{colour}"><title>{escape(label)}: {value}</title></rect>')
        parts.append(f'<text x="{186 + w:.1f}" y="{y + 17}" font-size="13">{value:,}</text>')
    return f'<svg id="{chart_id}" viewBox="0 0 {width} {row * len(values)}" width="100%" role="img">{"".join(parts)}</svg>'


def impact_page(report: dict[str, Any]) -> str:
    """The whole page as one string."""
    charts = report.get("charts", {})
    period = report["period"]
    title = f"Impact {period['from']} to {period['to']}" + (f" — {report['country']}" if report.get("country") else "")
    as_of = report["as_of"] or "now"
    partners = report.get("cross_border_partners")
    partner_html = f"<h2>Cross-border partners</h2>{_bars(partners, 'partners-chart', '#2ca02c')}" if partners is not None else ""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p><small>As of {escape(as_of)}; counting rules version {escape(report['assumptions']['rules_version'])}; "
        f"regularly updated = updated within {report['assumptions']['regularly_updated_window_days']} days.</small></p>"
        f"<h2>Figures</h2>{_figures_table(report)}"
        f"<h2>Activities held per month</h2>{_monthly_chart(charts.get('activity_by_month', {}))}"
        f"<h2>Cooperation funnel</h2>{_bars(charts.get('funnel', {}), 'funnel-chart', '#1f77b4')}"
        f"<h2>Cooperation cases by country pair</h2>{_bars(charts.get('case_country_pairs', {}), 'pairs-chart', '#ff7f0e')}"
        f"{partner_html}</body></html>"
    )
