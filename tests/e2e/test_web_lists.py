"""Finding and going through lists in the browser view: the search box, "4–6 of 9" paging from both ends, permalinks pinned to
a position, and CSV and JSON Lines downloads of every row, streamed."""

from __future__ import annotations

import csv
import http.client
import io
import json
from urllib.parse import quote, urlparse

from playwright.sync_api import Page

from tests.e2e.web import SCRIPT_NAME, TOKEN, Served, api, call, cli


def test_paging_says_where_a_page_lies_and_goes_first_previous_next_last(page: Page, served: Served) -> None:
    whole = [e["position"] for e in json.loads(cli("audit", "log", "--format", "json", "--db", served.db))]
    assert len(whole) > 12
    page.goto("/audit?limit=5")
    assert page.inner_text("#page-range") == f"1–5 of {len(whole)} events"
    assert page.locator("#previous-page").count() == 0 and page.locator("#first-page").count() == 0
    page.click("#next-page")
    assert page.inner_text("#page-range") == f"6–10 of {len(whole)} events"
    page.click("#last-page")
    assert page.inner_text("#page-range") == f"{len(whole) - 4}–{len(whole)} of {len(whole)} events"
    assert page.locator("#next-page").count() == 0 and page.locator("#last-page").count() == 0
    assert [int(p) for p in page.locator(".log-row").evaluate_all("rows => rows.map(r => r.dataset.position)")] == whole[-5:]
    page.click("#previous-page")
    assert page.inner_text("#page-range") == f"{len(whole) - 9}–{len(whole) - 5} of {len(whole)} events"
    page.click("#first-page")
    assert page.inner_text("#page-range") == f"1–5 of {len(whole)} events"
    page.goto(f"/audit?after={whole[-1]}")
    assert page.inner_text("#page-range") == f"none of the {len(whole)} events lies here"
    page.click("#first-page")
    assert page.inner_text("#page-range") == f"1–{min(50, len(whole))} of {len(whole)} events"
    # The type filter is a select over the closed list of event types.
    options = page.locator("#type-filter option").evaluate_all("os => os.map(o => o.value)")
    assert "BilateralMeeting.Held" in options and "Activity" in options
    page.select_option("#type-filter", "Activity.Held")
    page.click("form.inputs button")
    held = [e["position"] for e in api(served, "/api/audit?type=Activity.Held&limit=1000")["events"]]
    assert page.inner_text("#page-range") == f"1–{len(held)} of {len(held)} events"


def test_a_figures_events_page_by_number_with_its_place_shown(page: Page, served: Served) -> None:
    figure = api(served, "/api/figures/matchmaking_participants?limit=1000")
    positions = [e["position"] for e in figure["events"]]
    second = api(served, "/api/figures/matchmaking_participants?limit=2&page=2")
    assert len(positions) >= 3
    assert (second["first"], second["last"], second["total"]) == (3, min(4, len(positions)), len(positions))
    assert [e["position"] for e in second["events"]] == positions[2:4]
    status, body = call(served, f"/api/figures/matchmaking_participants?limit=2&page={(len(positions) + 1) // 2 + 1}")
    assert status == 404 and b"past the last page" in body
    page.goto("/figures/matchmaking_participants")
    assert page.inner_text("#page-range") == f"1–{len(positions)} of {len(positions)} events"


def test_a_permalink_reads_the_same_after_the_log_grows(page: Page, served: Served) -> None:
    page.goto("/audit?type=Updated")
    permalink = page.get_attribute("#permalink", "href")
    assert permalink is not None and "at=" in permalink
    shown = page.inner_text("#log")
    page.goto("/")
    figures_link = page.get_attribute("#permalink", "href")
    assert figures_link is not None and "as_of=" in figures_link
    figures = page.inner_text("#figures")
    cli("org", "update", "--org", "ORG-IT-0001", "--smes", "99", "--at", "2024-07-01", "--db", served.db)
    page.goto(permalink)
    assert page.inner_text("#log") == shown
    page.goto("/audit?type=Updated")
    assert page.inner_text("#log") != shown
    page.goto(figures_link)
    assert page.inner_text("#figures") == figures


def test_the_search_box_finds_a_position_a_leaf_hash_a_reference_and_a_name(page: Page, served: Served) -> None:
    event = api(served, "/api/events/5")
    for query, lands in (("5", "/events/5"), (event["proof"]["leaf_hash"], "/events/5"),
                         (bytes(__import__("base64").b64decode(event["proof"]["leaf_hash"])).hex(), "/events/5"),
                         ("MM-2024-MILAN-M001", "/records/MM-2024-MILAN-M001")):
        page.goto("/")
        page.fill("#search-box", query)
        page.press("#search-box", "Enter")
        page.wait_for_load_state()
        assert urlparse(page.url).path == lands, query
    # A name lists the organisations that held it; stored text stays text.
    page.goto(f"/search?q={quote(SCRIPT_NAME[:8])}")
    assert urlparse(page.url).path == "/records/ORG-FR-0099"
    page.goto("/search?q=no-such-thing-anywhere")
    assert page.inner_text("#search-summary").startswith("0 matches")
    status, _ = call(served, "/search?q=")
    assert status == 400


def download(served: Served, path: str) -> tuple[dict[str, str], bytes]:
    """A download's headers and body, read as sent (chunked when streamed)."""
    connection = http.client.HTTPConnection(urlparse(served.base).netloc, timeout=30)
    connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    response = connection.getresponse()
    assert response.status == 200, (path, response.status)
    headers = {k.lower(): v for k, v in response.getheaders()}
    body = response.read()
    connection.close()
    return headers, body


def test_downloads_hold_every_row_of_the_list_not_one_page_and_stream(served: Served) -> None:
    whole = json.loads(cli("audit", "log", "--format", "json", "--db", served.db))
    headers, body = download(served, "/export/audit.csv")
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert headers["content-disposition"] == 'attachment; filename="audit.csv"'
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [int(r["position"]) for r in rows] == [e["position"] for e in whole]
    _, body = download(served, "/export/audit.jsonl?actor=admin.claire")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert [e["position"] for e in lines] == [e["position"] for e in whole if e["actor"] == "admin.claire"]
    assert lines and {e["ref"] for e in lines} == {"ORG-FR-0099"}
    figures = {f["key"]: f for f in api(served, "/api/figures")["figures"]}
    for key in ("matchmaking_participants", "cluster_organisations"):
        _, body = download(served, f"/export/figures/{key}.csv")
        assert len(list(csv.DictReader(io.StringIO(body.decode())))) == figures[key]["events"], key
    _, body = download(served, "/export/figures.jsonl")
    assert [json.loads(line)["key"] for line in body.decode().splitlines()] == list(figures)
    _, body = download(served, "/export/history.csv?ref=ORG-FR-0099")
    history = api(served, "/api/records/ORG-FR-0099")["events"]
    assert [int(r["position"]) for r in csv.DictReader(io.StringIO(body.decode()))] == [e["position"] for e in history]
    sheet = api(served, "/api/countries/IT")
    _, body = download(served, "/export/countries/IT/partners.jsonl")
    assert {json.loads(line)["country"]: json.loads(line)["meetings_and_cases"] for line in body.decode().splitlines()} == sheet["cross_border_partners"]
    _, body = download(served, "/export/countries/IT/regions.csv")
    assert {r["region"]: int(r["profiles"]) for r in csv.DictReader(io.StringIO(body.decode()))} == sheet["regions"]["profiles"]
    status, body = call(served, "/export/countries/IT/nonsense.csv")
    assert status == 400 and b"list" in body
    status, body = call(served, "/export/audit.xml")
    assert status == 400 and b"format" in body
