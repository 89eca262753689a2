"""The HTML impact report, opened in a real headless Chromium and read back from its DOM."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import ledger
from projections.figures import months_between

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
AS_OF = "2024-09-30T23:59:59+00:00"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is not installed: scripts/test installs Debian's chromium package"
    return found


def cli(*args: str) -> str:
    result = CliRunner().invoke(ledger, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def dump_dom(page: Path, profile: Path) -> str:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout


@dataclass
class Table:
    """One <table> of the DOM: its header cells and the number of data cells in each row (0 for the header row)."""

    headers: list[str] = field(default_factory=list)
    row_widths: list[int] = field(default_factory=list)


class Tables(HTMLParser):
    """Every table of a page, as Chromium serialised it."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.tables: list[Table] = []
        self._in_th = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(Table())
        elif tag == "th":
            self._in_th = True
            self.tables[-1].headers.append("")
        elif tag == "tr":
            self.tables[-1].row_widths.append(0)
        elif tag == "td":
            self.tables[-1].row_widths[-1] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_th = False

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.tables[-1].headers[-1] += data.strip()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("html")
    url = f"sqlite:///{folder / 'html.db'}"
    cli("demo", "--scale", "0.02", "--seed", "5", "--db", url)
    return url, folder


@pytest.fixture(scope="module")
def page(demo: tuple[str, Path]) -> tuple[Path, str, dict]:
    url, folder = demo
    path = folder / "impact.html"
    assert cli("report", "impact", "--format", "html", "--out", str(path), "--db", url).strip() == f"wrote {path}"
    report = json.loads(cli("report", "impact", "--format", "json", "--db", url))
    return path, dump_dom(path, folder / "profile"), report


def test_the_html_report_renders_its_figures_in_chromium(page: tuple[Path, str, dict], tmp_path: Path) -> None:
    path, dom, report = page
    assert "http://" not in path.read_text() and "https://" not in path.read_text()
    rendered = dict(re.findall(r'<tr data-key="([a-z0-9_]+)"><td>(?:<a [^>]*>)?[^<]*(?:</a>)?</td><td class="num" data-value="([^"]*)"', dom))
    assert rendered == {key: str(value) for key, value in report["figures"].items()}
    for chart in ("activity-chart", "funnel-chart", "pairs-chart"):
        assert f'id="{chart}"' in dom
    assert dom.count("<rect") > 10

    shot = tmp_path / "impact.png"
    subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600", f"--screenshot={shot}", path.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    assert shot.stat().st_size > 20_000


def test_every_month_of_the_period_is_on_the_axis_with_a_y_scale(page: tuple[Path, str, dict]) -> None:
    _, dom, _ = page
    months = re.findall(r'<g class="month" data-month="(\d{4}-\d{2})" data-total="(\d+)"', dom)
    assert [m for m, _ in months] == months_between(date(2024, 1, 1), date(2025, 12, 31))
    assert len(months) == 24 and any(total == "0" for _, total in months)
    ticks = [int(t.replace(",", "")) for t in re.findall(r'<text class="y-tick"[^>]*>([\d,]+)</text>', dom)]
    steps = {b - a for a, b in zip(ticks, ticks[1:])}
    assert ticks[0] == 0 and len(ticks) >= 3 and len(steps) == 1, ticks
    assert ticks[-1] >= max(int(total) for _, total in months)


def test_every_table_column_has_a_header(page: tuple[Path, str, dict]) -> None:
    _, dom, _ = page
    tables = Tables(dom).tables
    assert len(tables) > 10  # the figures, then one per count in the appendix
    for table in tables:
        assert table.headers and all(table.headers), table.headers
        assert all(width in (0, len(table.headers)) for width in table.row_widths), (table.headers, set(table.row_widths))
    assert tables[0].headers == ["figure", "value", "published", "against published"]
    assert re.search(r'data-key="most_represented_sector">.*?exactly digital</td><td><span class="(ok|miss)">(meets|differs)</span> <small>\(', dom)


def test_the_header_names_the_last_included_position_and_its_recorded_time(page: tuple[Path, str, dict], demo: tuple[str, Path]) -> None:
    _, dom, report = page
    url, _ = demo
    log = json.loads(cli("audit", "log", "--format", "json", "--db", url))
    last = max(log, key=lambda e: e["position"])
    assert report["as_of"] is None and report["as_of_position"] == last["position"] and report["as_of_recorded_at"] == last["recorded_at"]
    header = re.search(r'<p id="as-of">(.*?)</p>', dom)
    assert header
    assert re.fullmatch(rf'As of position <span id="as-of-position">{last["position"]:,}</span>, recorded <time datetime="{re.escape(last["recorded_at"])}">'
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})? UTC</time>\.", header.group(1)), header.group(1)


def test_a_report_as_of_a_past_moment_names_the_last_event_recorded_by_then(demo: tuple[str, Path]) -> None:
    url, folder = demo
    path = folder / "as-of.html"
    cli("report", "impact", "--format", "html", "--as-of", AS_OF, "--out", str(path), "--db", url)
    recorded = json.loads(cli("audit", "log", "--until", AS_OF, "--format", "json", "--db", url))
    last = max(recorded, key=lambda e: e["position"])
    report = json.loads(cli("report", "impact", "--format", "json", "--as-of", AS_OF, "--db", url))
    assert (report["as_of_position"], report["as_of_recorded_at"]) == (last["position"], last["recorded_at"])
    header = re.search(r'<p id="as-of">(.*?)</p>', dump_dom(path, folder / "profile-as-of"))
    assert header and header.group(1).startswith(f'Events recorded by <time datetime="{AS_OF}">2024-09-30 23:59:59 UTC</time>: as of position')
    assert f'<span id="as-of-position">{last["position"]:,}</span>' in header.group(1)


def test_each_count_leads_to_the_events_behind_it(page: tuple[Path, str, dict], demo: tuple[str, Path]) -> None:
    _, dom, report = page
    url, _ = demo
    sections = dict(re.findall(r'<section data-key="([a-z0-9_]+)" data-total="(\d+)">', dom))
    assert "bilateral_meetings" in sections and "member_organisations_represented" not in sections
    for key, total in sections.items():
        assert int(total) == report["figures"][key]
        assert f'href="#evidence-{key}"' in dom
    traced = json.loads(cli("trace", "bilateral_meetings", "--format", "json", "--db", url))["events"]
    assert len(traced) > 50
    section = re.search(r'<section data-key="bilateral_meetings".*?</section>', dom)
    assert section
    listed = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>', section.group(0))
    assert listed == [(str(e["position"]), e["ref"], e["event"]) for e in traced[:50]]
    assert f"and {len(traced) - 50:,} more; <code>ledger trace bilateral_meetings --from 2024-01-01 --to 2025-12-31</code> lists all {len(traced):,}." in section.group(0)


def test_the_country_pair_chart_says_what_its_cut_left_out(page: tuple[Path, str, dict]) -> None:
    _, dom, _ = page
    bars = re.findall(r'<g class="bar" data-label="([A-Z]{2}-[A-Z]{2})" data-value="(\d+)">', dom)
    caption = re.search(r'<p class="caption" id="country-pairs-cut">(.*?)</p>', dom)
    assert bars and caption
    stated = re.match(r"(?:All|Top) ([\d,]+)(?: of ([\d,]+))? country pairs", caption.group(1))
    assert stated and int(stated.group(1).replace(",", "")) == len(bars), caption.group(1)


def test_a_country_page_sets_no_figure_against_platform_values_and_says_its_charts_are_platform_wide(demo: tuple[str, Path]) -> None:
    url, folder = demo
    path = folder / "country.html"
    report = json.loads(cli("report", "country", "DE", "--format", "json", "--db", url))
    cli("report", "country", "DE", "--format", "html", "--out", str(path), "--db", url)
    dom = dump_dom(path, folder / "profile-country")
    tables = Tables(dom).tables
    assert tables[0].headers == ["figure", "value"] and set(tables[0].row_widths) == {0, 2}
    assert "<h2>Cooperation funnel (all countries)</h2>" in dom
    partners = re.search(r'<p class="caption" id="partner-countries-cut">All ([\d,]+) partner countries\.</p>', dom)
    assert partners and int(partners.group(1)) == len(report["cross_border_partners"])
    sections = dict(re.findall(r'<section data-key="([a-z0-9_]+)" data-total="(\d+)">', dom))
    assert {key: int(total) for key, total in sections.items()} == {key: report["figures"][key] for key in sections}
    assert "ledger trace" not in dom  # trace counts the whole platform, not one country
