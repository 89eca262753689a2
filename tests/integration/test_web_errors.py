"""Every error of the browser view is a page (or, for programs, a JSON error): no input answers 500, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi.routing import APIRoute

from tests.integration.test_replay_survives import imported
from web import read
from web.app import HEADERS, MACHINE_PATHS, create_app

TOKEN = "fuzz-token"
HOSTILE = ["", " ", "abc", "-1", "0", "99999999", str(2**63), str(10**30), str(-(10**30)), "1e9", "0001-01-01", "0000-01-01",
           "9999-12-31", "10000-01-01", "2024-02-30", "2024-06-30T25:00:00Z", "é✓中文", "\u202e\u200b", "\x00", "a" * 3000, "../../etc/passwd"]
"""Values no page may answer with a 500: huge integers, dates outside 1..9999, unicode, control characters and empty values."""
GOOD = {"key": "bilateral_meetings", "ref": "ORG-IT-0001", "position": "3", "country": "IT", "path": "0/000", "fmt": "csv",
        "name": "partners"}
"""A value each path parameter takes on a page that exists, so that one parameter at a time is the hostile one."""


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, raised: Exception | None = None) -> None:
        self.status, self.headers, self.body, self.raised = status, headers, body, raised


def requests(app: Any, targets: list[tuple[str, str]], headers: list[tuple[bytes, bytes]]) -> list[Answer]:
    """GET each (path, query string) from the ASGI app, its start-up and shut-down run around them; an exception is a 500."""
    async def one(path: str, query: str) -> Answer:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
                 "raw_path": quote(path).encode(), "query_string": query.encode(), "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        raised = None
        try:
            await app(scope, receive, send)
        except Exception as error:  # noqa: BLE001 - a bug: the answer sent before it is raised on (to be logged) is kept
            raised = error
        if not sent:
            return Answer(500, {}, repr(raised).encode(), raised)
        found = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
        return Answer(sent[0]["status"], found, b"".join(m.get("body", b"") for m in sent[1:]), raised)

    async def all_of() -> list[Answer]:
        async with app.router.lifespan_context(app):
            return [await one(path, query) for path, query in targets]

    return asyncio.run(all_of())


def fuzzed(app: Any) -> list[tuple[str, str]]:
    """Each route of the app with each of its parameters given each hostile value, the others at a good value (or left out)."""
    targets = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        good = {p.name: GOOD[p.name] for p in route.dependant.path_params}
        for value in HOSTILE:
            for param in route.dependant.path_params:
                targets.append((route.path_format.format(**{**good, param.name: value}), ""))
            for param in route.dependant.query_params:
                name = param.alias or param.name
                targets.append((route.path_format.format(**good), urlencode({name: value})))
    return targets


def test_no_input_answers_500_and_every_page_answers_a_page(db_url: str) -> None:
    imported(db_url)
    app = create_app(db_url, TOKEN)
    targets = fuzzed(app)
    assert len(targets) > 500  # every route, every parameter
    answers = requests(app, targets, [(b"authorization", f"Bearer {TOKEN}".encode()), (b"host", b"127.0.0.1:8000")])
    failures = [(path, query, a.status, a.body[:200]) for (path, query), a in zip(targets, answers) if a.status >= 500]
    assert failures == []
    for (path, query), a in zip(targets, answers):
        assert a.headers.get("content-security-policy") == HEADERS["Content-Security-Policy"], (path, query)
        if a.status < 400:
            continue
        if path.startswith(MACHINE_PATHS):
            assert a.headers["content-type"] == "application/json" and json.loads(a.body)["error"], (path, query)
        else:
            assert a.headers["content-type"].startswith("text/html") and b'id="error"' in a.body, (path, query, a.body[:200])


def test_malformed_and_out_of_range_parameters_are_named_in_one_line(db_url: str) -> None:
    imported(db_url)
    app = create_app(db_url)
    targets = [("/events/abc", ""), ("/events/99999999999999999999", ""), ("/api/events/" + str(10**30), ""), ("/audit", "after=-1"),
               ("/audit", f"after={10**30}"), ("/", "window_days=100000000"), ("/api/figures", "from=0001-01-01&to=9999-12-31"),
               ("/no/such/page", ""), ("/api/no/such", ""), ("/audit", "after=99999999"), ("/figures/bilateral_meetings", "after=99999999")]
    answers = requests(app, targets, [])
    shown = [(a.status, _line(a)) for a in answers]
    assert shown == [
        (400, "position: 'abc': input should be a valid integer, unable to parse string as an integer"),
        (400, "position: '99999999999999999999': input should be less than or equal to 9223372036854775807"),
        (400, f"position: '{10**30}': input should be less than or equal to 9223372036854775807"),
        (400, "after: '-1': input should be greater than or equal to 0"),
        (400, f"after: '{10**30}': input should be less than or equal to 9223372036854775807"),
        (400, "window_days: '100000000': reaches back before the year 1 from 2024-01-01"),
        (400, "window_days: '365': reaches back before the year 1 from 0001-01-01"),
        (404, "page: '/no/such/page': there is no such page"),
        (404, "page: '/api/no/such': there is no such page"),
        (200, "No event after position 99,999,999 passes these filters."),
        (200, "No event of this figure after position 99,999,999."),
    ]


def _line(answer: Answer) -> str:
    """The one line an answer gives: the JSON error, the page's error paragraph, or its note on an empty page."""
    if answer.headers["content-type"] == "application/json":
        return str(json.loads(answer.body)["error"])
    text = answer.body.decode()
    for marker in ('<p id="error">', '<p id="past-end">'):
        if marker in text:
            return html.unescape(text.split(marker, 1)[1].split("</p>", 1)[0])
    return text[:200]


def test_a_bug_is_still_a_page_with_the_security_headers_and_its_traceback_is_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*_: Any) -> Any:
        raise RuntimeError("a bug")

    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    imported(db)
    monkeypatch.setattr(read, "figures_page", bug)
    page, api = requests(create_app(db), [("/", ""), ("/api/figures", "")], [])
    assert (page.status, api.status) == (500, 500)
    assert [type(a.raised) for a in (page, api)] == [RuntimeError, RuntimeError]  # raised on, so that the server logs it
    assert _line(page) == _line(api) == "the server could not show this page; the error is in its log"
    assert page.headers["content-security-policy"] == api.headers["content-security-policy"] == HEADERS["Content-Security-Policy"]
    assert page.headers["cache-control"] == "no-store"
