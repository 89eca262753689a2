"""The browser view's pages as people read and follow them: the moment kept while drilling down, readable states and diffs,
counting rules, monthly charts, country names, contrast, and a layout that fits a 390 px phone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Browser, Page

from projections.figures import counting_rule
from tests.e2e.web import TOKEN, Served, api, call

SCREENS = ["/", "/figures/matchmaking_participants", "/records/ORG-IT-0001", "/events/5", "/audit", "/countries", "/countries/IT",
           "/figures/bilateral_meetings/months"]

# The contrast ratio (WCAG 2.x) of an element's computed colour on the first opaque background behind it.
CONTRAST = """(element) => {
  const rgb = (text) => text.match(/[\\d.]+/g).map(Number);
  const back = (node) => { for (; node; node = node.parentElement) { const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const [a, b] = [lum(rgb(getComputedStyle(element).color)), lum(back(element))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""
# Every element that holds text of its own, with its computed font size in px.
TEXT_SIZES = """() => [...document.querySelectorAll('body *')]
  .filter((e) => [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()) && e.getClientRects().length)
  .map((e) => [e.tagName + (e.id ? '#' + e.id : '') + ' ' + e.textContent.trim().slice(0, 30), parseFloat(getComputedStyle(e).fontSize)])"""


def query_of(href: str | None) -> dict[str, list[str]]:
    assert href is not None
    return parse_qs(urlsplit(href).query)


def test_drilling_down_from_a_figure_keeps_the_moment_to_the_record_and_the_event(page: Page, served: Served) -> None:
    page.goto(f"/figures/cluster_organisations?as_of={quote(served.between)}")
    assert "as of " + served.between in page.title() and page.locator("#past").is_visible()
    link = page.locator("tr.event-row a.record-link", has_text="ORG-FR-0099")
    assert query_of(link.get_attribute("href"))["as_of"] == [served.between]
    assert all(query_of(a.get_attribute("href"))["as_of"] == [served.between] for a in page.locator("a.event-link").all())
    link.click()
    page.wait_for_selector("#history")
    assert page.locator("h1").inner_text() == f"ClusterOrganisation ORG-FR-0099, as of {served.between}"
    assert page.locator("#state-heading").inner_text() == f"State as of {served.between} (version 2)"
    assert page.title().startswith(f"ORG-FR-0099 as of {served.between}")
    # The correction recorded later is marked in words, not by colour alone, and the state leaves it out.
    later = page.locator("tr.history-row.later")
    assert later.count() == 1 and later.locator(".marker").inner_text() == "after the moment"
    assert later.locator("td:nth-child(3)").inner_text() == "ClusterOrganisation.Archived"
    assert page.locator("#state dt:text-is('archived')").locator("xpath=following-sibling::dd[1]").inner_text() == "no"
    later.locator("a.event-link").click()
    page.wait_for_selector("#payload")
    assert page.locator("#past .marker").inner_text() == "recorded after the moment"
    assert query_of(page.locator("#event-ref").get_attribute("href"))["as_of"] == [served.between]
    # Without a moment the same pages say they show the present, and when its last event was recorded.
    page.goto("/records/ORG-FR-0099")
    assert page.locator("#state-heading").inner_text() == "State now (version 3)" and page.locator("#past").count() == 0
    page.goto("/")
    position = int(page.locator("#as-of-position").inner_text().replace(",", ""))
    recorded = page.locator("#as-of-recorded").get_attribute("datetime")
    assert recorded is not None and datetime.fromisoformat(recorded) == datetime.fromisoformat(api(served, f"/api/events/{position}")["recorded_at"])


def test_a_state_reads_as_values_and_links_to_the_records_it_names(page: Page, served: Served) -> None:
    page.goto("/records/ORG-IT-0001")
    state = page.locator("#state").inner_text()
    assert not any(python in state for python in ("['", "{'", "True", "False", "None")), state
    ecosystems = page.locator("#state dt:text-is('ecosystems')").locator("xpath=following-sibling::dd[1]//li").all_inner_texts()
    assert ecosystems == api(served, "/api/records/ORG-IT-0001")["state"]["ecosystems"]
    members = page.locator("#state dt:text-is('members')").locator("xpath=following-sibling::dd[1]").inner_text()
    assert "smes: 126" in members  # as updated in 2025
    page.goto(f"/records/MM-2024-MILAN-M001?as_of={quote(served.between)}")
    assert page.locator("#state a.state-ref:text-is('MM-2024-MILAN-M001')").count() == 0  # its own reference is not a link
    activity = page.locator("#state a.state-ref:text-is('MM-2024-MILAN')")
    assert query_of(activity.get_attribute("href"))["as_of"] == [served.between]
    activity.click()
    page.wait_for_selector("#history")
    assert page.locator("#record-ref").inner_text() == "MM-2024-MILAN"


def test_each_update_shows_what_it_changed_against_the_state_before_it(page: Page, served: Served) -> None:
    page.goto("/records/ORG-FR-0099")
    archived = page.locator('tr.history-row[data-version="3"] li.change[data-field="archived"]')
    assert archived.locator(".before").inner_text() == "no" and archived.locator(".after").inner_text() == "yes"
    assert page.locator('tr.history-row[data-version="3"] li.change').count() == 1
    published = page.locator('tr.history-row[data-version="2"] li.change[data-field="published"]')
    assert (published.locator(".before").inner_text(), published.locator(".after").inner_text()) == ("no", "yes")
    page.goto("/records/ORG-IT-0001")
    smes = page.locator('tr.history-row[data-version="3"] li.change[data-field="members"]')
    assert "smes: 120" in smes.locator(".before").inner_text() and "smes: 126" in smes.locator(".after").inner_text()


def test_each_figure_shows_its_counting_rule_and_a_chart_by_month(page: Page, served: Served) -> None:
    report = api(served, "/api/figures")
    for figure in report["figures"]:
        rule = page.locator(f'tr[data-key="{figure["key"]}"] .rule').inner_text()
        assert rule == counting_rule(figure["key"], report["assumptions"])
    assert page.locator('tr[data-key="bilateral_meetings"] .rule').inner_text() == report["assumptions"]["bilateral_meetings"]
    for key in ("bilateral_meetings", "cooperation_cases_identified", "new_profiles_published"):
        page.goto(f"/figures/{key}")
        assert page.locator("#rule").inner_text() == f"Counting rule: {report['assumptions'][key]}."
        page.click("#months-link")
        page.wait_for_selector("#chart")
        values = [int(v) for v in page.locator("#months td[data-value]").evaluate_all("cells => cells.map(c => c.dataset.value)")]
        assert len(values) == 24 and page.locator("#chart rect").count() == 24
        total = next(f["value"] for f in report["figures"] if f["key"] == key)
        assert sum(values) == total > 0, key  # each event counted falls in exactly one month of the period
        tallest = max(range(24), key=lambda i: values[i])
        heights = [float(h or 0) for h in page.locator("#chart rect").evaluate_all("rects => rects.map(r => r.getAttribute('height'))")]
        assert heights.index(max(heights)) == tallest and heights.count(0.0) == values.count(0)
    # A month's link asks for the figure with that month as the period.
    page.locator("#months a", has_text="2024-02").click()
    assert query_of(page.url)["from"] == ["2024-02-01"] and query_of(page.url)["to"] == ["2024-02-29"]


def test_countries_are_listed_by_name_and_el_is_greece(page: Page, served: Served) -> None:
    page.goto("/countries?from=2024-01-01&to=2024-12-31")
    names = page.locator("#countries a.country-link").all_inner_texts()
    assert names == ["France", "Italy", "Latvia"]
    for row in page.locator("#countries tbody tr").all():
        code = row.get_attribute("data-country")
        sheet = api(served, f"/api/countries/{code}?from=2024-01-01&to=2024-12-31")
        shown = int(row.locator("td.num").inner_text())
        assert shown == next(f["value"] for f in sheet["figures"] if f["key"] == "cluster_organisations"), code
        assert query_of(row.locator("a").get_attribute("href")) == {"from": ["2024-01-01"], "to": ["2024-12-31"]}
    status, body = call(served, "/countries/EL")
    assert status == 200 and b"Greece" in body
    page.goto("/countries/EL")
    assert page.locator("#country-name").inner_text() == "Greece" and "(GR)" in page.locator("h1").inner_text()
    page.goto("/countries?country=uk")
    assert page.locator("#country-name").inner_text() == "United Kingdom"
    # A partner's sheet opens for the same period and moment.
    page.goto(f"/countries/IT?from=2024-01-01&to=2025-12-31&as_of={quote(served.between)}")
    partner = page.locator("#partners a.partner-link")
    assert partner.inner_text() == "Latvia"
    assert query_of(partner.get_attribute("href")) == {"from": ["2024-01-01"], "to": ["2025-12-31"], "as_of": [served.between]}
    partner.click()
    page.wait_for_selector("#country-name")
    assert page.locator("#country-name").inner_text() == "Latvia" and page.locator("#past").is_visible()


def test_text_has_aa_contrast_and_rows_after_the_moment_say_so(page: Page, served: Served) -> None:
    page.goto(f"/records/ORG-FR-0099?as_of={quote(served.between)}")
    checked = ["tr.later td", "tr.later .marker", "tr.history-row:not(.later) td", "#past", "#past a", ".caption", "nav a", "nav small",
               "li.change .before", "li.change .after", "h1"]
    for selector in checked:
        for element in page.locator(selector).all():
            ratio = element.evaluate(CONTRAST)
            assert ratio >= 4.5, (selector, round(ratio, 2))
    page.goto("/")
    # Verdicts in both words the pages and the proof check use, whether or not this ledger meets any figure.
    page.evaluate("""() => { for (const name of ['ok', 'meets', 'miss']) { const s = document.createElement('span');
      s.className = name + ' probe'; s.textContent = name; document.querySelector('main').append(s); } }""")
    for selector in (".probe", ".miss", ".rule", "#as-of small", "td a.figure-link"):
        ratios = [e.evaluate(CONTRAST) for e in page.locator(selector).all()]
        assert ratios and min(ratios) >= 4.5, (selector, min(ratios, default=None))


@pytest.mark.parametrize("width", [1400, 390])
def test_every_page_fits_the_screen_with_no_text_under_12_px(browser: Browser, served: Served, tmp_path: Path, width: int) -> None:
    context = browser.new_context(base_url=served.base, viewport={"width": width, "height": 900},
                                  extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    tab = context.new_page()
    try:
        for path in SCREENS:
            tab.goto(path)
            assert tab.locator('meta[name="viewport"]').get_attribute("content") == "width=device-width, initial-scale=1"
            assert tab.evaluate("document.documentElement.scrollWidth") <= width, (path, width)
            small = [(text, size) for text, size in tab.evaluate(TEXT_SIZES) if size < 12]
            assert small == [], (path, width, small[:5])
            tab.screenshot(path=str(tmp_path / f"{path.strip('/').replace('/', '-') or 'figures'}-{width}.png"))
        # A wide table scrolls inside itself on a phone, never the page.
        tab.goto("/audit")
        log = tab.locator("#log")
        overflow = log.evaluate("t => [getComputedStyle(t).overflowX, t.scrollWidth > t.clientWidth]")
        assert overflow == (["auto", True] if width == 390 else ["visible", False]), overflow
    finally:
        context.close()


def test_the_new_addresses_refuse_bad_input_with_one_line_naming_it(served: Served) -> None:
    refused = {
        "/figures/bilateral_meetings/months?from=0002-01-01&to=9999-12-31": (400, "to: '9999-12-31': a chart by month covers at most 120 months"),
        "/figures/bilateral_meetings/months?from=0001-01-01&to=0001-12-31": (400, "window_days: '365': reaches back before the year 1 from 0001-01-01"),
        "/figures/no_such_figure/months": (404, "figure: 'no_such_figure' is not a figure"),
        "/events/5?as_of=soon": (400, "as-of: 'soon': expected YYYY-MM-DD or an ISO timestamp"),
        "/countries?as_of=soon": (400, "as-of: 'soon': expected YYYY-MM-DD or an ISO timestamp"),
        "/countries/ZZ": (400, "country: 'ZZ': not an ISO 3166 alpha-2 country code"),
    }
    for path, (status, line) in refused.items():
        got, body = call(served, path)
        text = body.decode()
        assert got == status and "<html" in text, (path, got)
        assert line in text.replace("&#39;", "'"), (path, text[-400:])
    # The last month a date can name is charted like any other.
    got, body = call(served, "/figures/bilateral_meetings/months?from=9999-12-01&to=9999-12-31")
    assert got == 200 and b'data-month="9999-12"' in body
