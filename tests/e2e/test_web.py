"""The auditor's browser view: `ledger serve` in a real uvicorn process, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import json
from urllib.parse import quote

from playwright.sync_api import Browser, Page

from tests.e2e.web import APIS, PAGES, SCRIPT_NAME, TOKEN, Served, api, call, cli

def figure_values(tab: Page) -> dict[str, str]:
    return {row.get_attribute("data-key") or "": row.locator(".figure-value").get_attribute("data-value") or ""
            for row in tab.locator("#figures tbody tr").all()}


def test_an_auditor_clicks_from_a_figure_to_its_events_to_a_record_to_an_event(page: Page, served: Served) -> None:
    page.click('tr[data-key="bilateral_meetings"] a.figure-link')
    page.wait_for_selector("#events")
    assert page.locator("#figure-value").get_attribute("data-value") == "1"
    assert page.locator("tr.event-row").count() == 1
    page.click("tr.event-row a.record-link")
    page.wait_for_selector("#history")
    assert page.locator("#record-ref").inner_text() == "MM-2024-MILAN-M001"
    types = page.locator("#history tbody tr td:nth-child(3)").all_inner_texts()
    assert types == ["BilateralMeeting.Requested", "BilateralMeeting.Accepted", "BilateralMeeting.Held"]
    page.locator("tr.history-row a.event-link").last.click()
    page.wait_for_selector("#payload")
    position = int(page.locator("#event-position").inner_text())
    assert page.locator("#event").inner_text().startswith("type\nBilateralMeeting.Held")
    stored = api(served, f"/api/events/{position}")
    assert stored["type"] == "BilateralMeeting.Held" and stored["ref"] == "MM-2024-MILAN-M001"
    assert json.loads(page.locator("#payload").inner_text()) == stored["payload"]
    # The proof, checked in this browser against a pinned key: tests/e2e/test_web_proof.py.
    assert stored["proof"]["position"] == position and page.locator("#proof-data").get_attribute("data-position") == str(position)


def test_the_event_count_on_a_figure_page_equals_the_figure(page: Page, served: Served) -> None:
    figures = api(served, "/api/figures")["figures"]
    counts = [f for f in figures if f["is_count"]]
    assert len(counts) >= 15 and any(f["value"] > 1 for f in counts)
    for figure in counts:
        page.goto(f"/figures/{figure['key']}")
        assert page.locator("tr.event-row").count() == figure["value"], figure["key"]
        assert page.locator("#event-total").inner_text() == str(figure["value"])


def test_a_figure_page_pages_by_position_and_loses_no_event(served: Served) -> None:
    whole = api(served, "/api/figures/matchmaking_participants")["events"]
    seen, after = [], 0
    while True:
        part = api(served, f"/api/figures/matchmaking_participants?limit=1&after={after}")
        seen += part["events"]
        if part["next_after"] is None:
            break
        after = part["next_after"]
    assert len(whole) == 3 and seen == whole
    assert all(e["occurred_at"] and e["recorded_at"] for e in whole)


def test_as_of_before_a_back_dated_correction_shows_the_figure_as_it_was(page: Page, served: Served) -> None:
    assert figure_values(page)["cluster_organisations"] == "2"
    page.fill("#as-of-input", served.between)
    page.click("form.inputs button")
    page.wait_for_url("**as_of=**")
    assert figure_values(page)["cluster_organisations"] == "3"
    page.click('tr[data-key="cluster_organisations"] a.figure-link')
    page.wait_for_selector("#events")
    assert page.locator("tr.event-row").count() == 3
    assert "ORG-FR-0099" in page.locator("#events").inner_text()
    page.goto(f"/records/ORG-FR-0099?as_of={quote(served.between)}")
    assert page.locator("tr.history-row.later").count() == 1
    now = api(served, "/api/records/ORG-FR-0099")
    then = api(served, f"/api/records/ORG-FR-0099?as_of={quote(served.between)}")
    assert (then["version"], now["version"]) == (2, 3)
    assert then["state"]["archived"] is not True and now["state"]["archived"]


def test_a_stored_script_renders_as_text_and_never_runs(page: Page, served: Served) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for path in ("/records/ORG-FR-0099", "/audit?record=ORG-FR-0099", "/events/" + str(api(served, "/api/audit?record=ORG-FR-0099")["events"][0]["position"]),
                 f"/records/{quote(SCRIPT_NAME, safe='')}", f"/audit?actor={quote(SCRIPT_NAME)}"):
        page.goto(path)
        assert page.locator("script:not([src='/static/proof.js'])").count() == 0, path  # only the event page's proof check
        if path.startswith("/records/ORG"):
            assert page.locator("#state dd").get_by_text(SCRIPT_NAME, exact=True).count() == 1
        if path.startswith("/audit?record"):
            assert SCRIPT_NAME in page.locator("#log").inner_text()
        if path.startswith("/events/"):
            assert SCRIPT_NAME in page.locator("#payload").inner_text()
    assert dialogs == []


def test_no_page_shows_a_persons_name_or_email(page: Page, served: Served) -> None:
    for path in ("/records/P-3f9c2a", "/audit?record=P-3f9c2a", "/records/MM-2024-MILAN/P-3f9c2a", "/figures/matchmaking_participants"):
        page.goto(path)
        text = page.content()
        assert "P-3f9c2a" in text and "Giulia" not in text and "example.org" not in text, path


def test_without_the_token_requests_get_401_and_with_it_200(served: Served, browser: Browser) -> None:
    for path in PAGES + APIS:
        assert call(served, path, token=None)[0] == 401, path
        assert call(served, path, token="wrong")[0] == 401, path
        assert call(served, path)[0] == 200, path
    context = browser.new_context(base_url=served.base)
    tab = context.new_page()
    response = tab.goto("/audit?actor=admin.anna")
    assert response is not None and response.status == 401
    tab.fill("#token", "not it")
    tab.click("#sign-in")
    assert tab.locator("#sign-in-failed").count() == 1 and "session" not in str(context.cookies())
    tab.fill("#token", TOKEN)
    tab.click("#sign-in")
    tab.wait_for_selector("#log")
    assert tab.url.endswith("/audit?actor=admin.anna")
    cookie = next(c for c in context.cookies() if c["name"] == "ledger_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    context.close()


def test_post_put_and_delete_get_405_on_every_route(served: Served) -> None:
    for path in PAGES + APIS + ["/no-such-page"]:
        for method in ("POST", "PUT", "DELETE"):
            for token in (TOKEN, None):
                status, _ = call(served, path, method, token)
                assert status == 405, (method, path, token)
        assert call(served, path, "HEAD")[0] in (200, 404), path
    # The sign-in form's POST is the one exception; its PUT and DELETE are refused too.
    assert call(served, "/sign-in", "POST", None)[0] == 401
    assert call(served, "/sign-in", "PUT", None)[0] == 405 and call(served, "/sign-in", "DELETE", None)[0] == 405


def test_the_json_api_gives_the_numbers_the_pages_show(page: Page, served: Served) -> None:
    shown = figure_values(page)
    assert shown == {f["key"]: str(f["value"]) for f in api(served, "/api/figures")["figures"]}
    assert api(served, "/api/figures")["as_of_position"] == int(page.locator("#as-of-position").inner_text())
    report = json.loads(cli("report", "impact", "--format", "json", "--db", served.db))
    assert {k: str(v) for k, v in report["figures"].items()} == shown

    page.goto("/countries/IT")
    country = api(served, "/api/countries/IT")
    assert figure_values(page) == {f["key"]: str(f["value"]) for f in country["figures"]}
    sheet = json.loads(cli("report", "country", "IT", "--format", "json", "--db", served.db))
    assert {f["key"]: f["value"] for f in country["figures"]} == sheet["figures"]
    assert country["cross_border_partners"] == sheet["cross_border_partners"] == {"LV": 2}
    partners = page.locator("#partners tbody tr td").all_inner_texts()
    assert partners == ["Latvia (LV)", "2"]

    page.goto("/figures/matchmaking_participants")
    listed = [int(p) for p in page.locator("tr.event-row").evaluate_all("rows => rows.map(r => r.dataset.position)")]
    assert listed == [e["position"] for e in api(served, "/api/figures/matchmaking_participants")["events"]]

    page.goto("/audit?type=Held")
    logged = [int(p) for p in page.locator("tr.log-row").evaluate_all("rows => rows.map(r => r.dataset.position)")]
    assert logged == [e["position"] for e in api(served, "/api/audit?type=Held")["events"]]
    assert logged == [e["position"] for e in json.loads(cli("audit", "log", "--type", "Held", "--format", "json", "--db", served.db))]


def test_the_audit_log_filters_and_pages_by_position(page: Page, served: Served) -> None:
    whole = json.loads(cli("audit", "log", "--format", "json", "--db", served.db))
    seen, after = [], 0
    while True:
        part = api(served, f"/api/audit?limit=7&after={after}")
        seen += [e["position"] for e in part["events"]]
        if part["next_after"] is None:
            break
        after = part["next_after"]
    assert seen == [e["position"] for e in whole] and len(seen) == 28  # and the test writer's authorization
    by_actor = api(served, "/api/audit?actor=admin.claire")["events"]
    assert [e["ref"] for e in by_actor] == ["ORG-FR-0099"] * 3
    since = api(served, f"/api/audit?since={quote(served.between)}")["events"]
    assert [e["type"] for e in since] == ["ClusterOrganisation.Archived"]
    until = api(served, f"/api/audit?until={quote(served.between)}&record=ORG-FR-0099")["events"]
    assert [e["type"] for e in until] == ["ClusterOrganisation.Registered", "ClusterOrganisation.Published"]
    status, body = call(served, "/api/audit?type=Nonsense")
    assert status == 400 and b"not an event type" in body

    page.goto("/audit")
    assert page.locator("tr.log-row").count() == 28
    page.fill('input[name="actor"]', "admin.marco")
    page.click("form.inputs button")
    page.wait_for_url("**actor=admin.marco**")
    assert set(page.locator("tr.log-row td:nth-child(4)").all_inner_texts()) == {"admin.marco"}
