"""Who the browser view answers: requests that name this server in `Host`, and sign-ins that expire, differ each time and end at sign-out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.integration.test_replay_survives import imported
from web.app import COOKIE, create_app
from web.security import HostCheck, Sessions

TOKEN = "session-test-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


Request = tuple[str, str, dict[str, str], bytes]
"""(method, path, headers, body)"""


@contextmanager
def client(app: Any) -> Iterator[Callable[..., list[tuple[int, dict[str, str]]]]]:
    """The app started (its lifespan entered) for the block: a function sending requests to it in turn, giving (status, headers)."""
    async def one(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http", "path": path,
                 "raw_path": path.encode(), "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        await app(scope, receive, send)
        return sent[0]["status"], {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}

    with asyncio.Runner() as runner:
        lifespan = app.router.lifespan_context(app)
        runner.run(lifespan.__aenter__())
        try:
            yield lambda *requests: [runner.run(one(*request)) for request in requests]
        finally:
            runner.run(lifespan.__aexit__(None, None, None))


def sign_in(exchange: Callable[..., list[tuple[int, dict[str, str]]]]) -> str:
    [(status, headers)] = exchange(("POST", "/sign-in", {"content-type": "application/x-www-form-urlencoded"}, f"token={TOKEN}".encode()))
    assert status == 303
    return headers["set-cookie"].split(";", 1)[0].partition("=")[2]


def with_cookie(value: str, path: str = "/api/figures") -> Request:
    return ("GET", path, {"cookie": f"{COOKIE}={value}"}, b"")


def test_a_session_lasts_its_hours_and_a_new_one_differs(db_url: str) -> None:
    imported(db_url)
    clock = Clock()
    with client(create_app(db_url, TOKEN, sessions=Sessions(hours=2, clock=clock))) as exchange:
        first, second = sign_in(exchange), sign_in(exchange)
        assert first != second and TOKEN not in first
        assert [s for s, _ in exchange(with_cookie(first), with_cookie(second))] == [200, 200]
        clock.now += 2 * 3600 - 1
        assert exchange(with_cookie(first))[0][0] == 200
        clock.now += 1
        assert [s for s, _ in exchange(with_cookie(first), with_cookie(second), with_cookie(first, "/"))] == [401, 401, 401]
        issued, nonce, signature = first.split(".")
        # A cookie whose time is moved on no longer matches its signature.
        assert exchange(with_cookie(f"{int(issued) + 3600}.{nonce}.{signature}"))[0][0] == 401


def test_sign_out_ends_the_session_even_for_a_kept_copy_of_its_cookie(db_url: str) -> None:
    imported(db_url)
    with client(create_app(db_url, TOKEN)) as exchange:
        kept, other = sign_in(exchange), sign_in(exchange)
        [(status, headers)] = exchange(("POST", "/sign-out", {"cookie": f"{COOKIE}={kept}"}, b""))
        assert status == 303 and headers["location"] == "/sign-in" and headers["set-cookie"].startswith(f'{COOKIE}=""; expires=')
        assert [s for s, _ in exchange(with_cookie(kept), with_cookie(other))] == [401, 200]


def test_only_requests_naming_this_server_are_answered(db_url: str) -> None:
    imported(db_url)
    app = create_app(db_url, hosts=HostCheck("127.0.0.1", 8000, ("ledger.example", "[::1]:9000")))
    hosts = {"127.0.0.1:8000": 200, "localhost:8000": 200, "[::1]:8000": 200, "ledger.example": 200, "ledger.example:1234": 200,
             "[::1]:9000": 200, "127.0.0.1:8001": 400, "attacker.example:8000": 400, "attacker.example": 400, "localhost": 400,
             "127.0.0.1:8000@attacker.example": 400, "": 400, "127.0.0.1:0": 400, "127.0.0.1:99999": 400}
    with client(app) as exchange:
        answers = exchange(*[("GET", "/api/figures", {"host": host}, b"") for host in hosts])
    assert {host: status for host, (status, _) in zip(hosts, answers)} == hosts

