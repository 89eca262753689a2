"""The auditor's browser view: read-only pages and a JSON API over the same data, each handler a thin call into web.read."""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import resources
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, Path as PathParam, Query as Param, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from domain.errors import InvalidValue
from web import audit as audit_log, errors, export, read, search
from web.security import HostCheck, Sessions

PROOF_SCRIPT = resources.files("web").joinpath("static", "proof.js").read_text(encoding="utf-8")
from web.read import LogFilter, Query, Reader

T = TypeVar("T")
SAFE_METHODS = ("GET", "HEAD")
COOKIE = "ledger_session"
SIGN_IN = "/sign-in"
SIGN_OUT = "/sign-out"
TLOG = "/tlog/"
"""Where the log is served as C2SP tlog-tiles (checkpoint, tiles and entry bundles)."""
MACHINE_PATHS = ("/api/", TLOG)
"""Paths read by programs: their errors are short text or JSON, never a page."""
HEADERS = {
    # No page runs a script; stored text that slipped through escaping still could not act.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
POSITION_MAX = 2**63 - 1
"""The largest position a database holds (a signed 64-bit integer, in SQLite and PostgreSQL): a larger one is refused, not overflowed."""
Position = Annotated[int, PathParam(ge=0, le=POSITION_MAX)]
After = Annotated[int, Param(ge=0, le=POSITION_MAX)]


def create_app(db: str | None, token: str | None = None, *, hosts: HostCheck | None = None, sessions: Sessions | None = None,
               secure: bool = False) -> FastAPI:
    """The web app for the ledger at `db`; with `token`, every request must present it. Requests must name this machine, or
    one of `hosts`, in `Host`; a sign-in lasts as long as `sessions` says, its cookie `Secure` if `secure` (served over TLS)."""
    hosts = hosts or HostCheck("127.0.0.1")
    sessions = sessions or Sessions()
    reader = Reader(db)
    # One thread owns the database connections (SQLite's are bound to their thread); requests queue for it.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-read")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.submit(reader.warm_up)  # not awaited: the server answers at once, and requests queue behind it
        yield
        await asyncio.get_running_loop().run_in_executor(worker, reader.close)
        worker.shutdown()

    app = FastAPI(title="Cluster Ledger: auditor's browser view", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan)
    env = Environment(loader=PackageLoader("web"), autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["number"] = _number
    env.filters["moment"] = _moment
    env.globals["link"] = _link
    templates = Jinja2Templates(env=env)

    async def run(job: Callable[[], T]) -> T:
        # A database that dropped its connections (restarted) is reconnected to, or the page says it is unavailable.
        return await asyncio.get_running_loop().run_in_executor(worker, lambda: reader.attempt(job))

    def page(request: Request, template: str, data: dict[str, Any], status: int = 200) -> HTMLResponse:
        signed_in = token is not None and sessions.valid(request.cookies.get(COOKIE, ""))  # a browser's session: it may sign out
        return templates.TemplateResponse(request, template, {"data": data, "signed_in": signed_in}, status_code=status)

    answer = errors.install(app, page, lambda request: request.url.path.startswith(MACHINE_PATHS), HEADERS)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        signing_in = token is not None and request.url.path in (SIGN_IN, SIGN_OUT)
        host = request.headers.get("host")
        if not hosts.permits(host):
            # A page fetched under a name that is not this server's (DNS rebinding) must not get the ledger to its scripts.
            response: Response = answer(request, InvalidValue("Host", host, "not a name of this server; `serve --allowed-host NAME` allows another"))
        elif request.method not in SAFE_METHODS and not (signing_in and request.method == "POST"):
            response = JSONResponse({"error": "this view is read-only: only GET and HEAD are allowed"}, status_code=405,
                                    headers={"Allow": "GET, HEAD"})
        elif token is not None and not signing_in and not _presents(request, token, sessions):
            if request.url.path.startswith(MACHINE_PATHS):
                response = JSONResponse({"error": "a token is required: send Authorization: Bearer TOKEN"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
            else:
                response = page(request, "sign_in.html", {"next": _local(quote(request.url.path) + (f"?{request.url.query}" if request.url.query else "")), "failed": False}, 401)
        else:
            response = await call_next(request)
        cache = response.headers.get("Cache-Control") if request.url.path.startswith(TLOG) and response.status_code == 200 else None
        response.headers.update(HEADERS)
        if cache is not None:  # the log's files are meant to be cached; everything else is not
            response.headers["Cache-Control"] = cache
        return response

    if token is not None:
        @app.get(SIGN_IN, include_in_schema=False)
        async def sign_in_form(request: Request, next: str = "/") -> Response:
            return page(request, "sign_in.html", {"next": _local(next), "failed": False})

        @app.post(SIGN_IN, include_in_schema=False)
        async def sign_in(request: Request) -> Response:
            """The one route that takes a POST: the token travels in the body, never in an address, a log or a Referer."""
            body = await request.body()
            form = parse_qs(body[:4096].decode("utf-8", errors="replace"))
            given, target = form.get("token", [""])[0], _local(form.get("next", ["/"])[0])
            if not hmac.compare_digest(given.encode(), token.encode()):
                return page(request, "sign_in.html", {"next": target, "failed": True}, 401)
            response = RedirectResponse(target, status_code=303)
            # A new value at each sign-in, carrying its time: it expires, and says nothing about the token.
            response.set_cookie(COOKIE, sessions.issue(), max_age=sessions.seconds, httponly=True, samesite="strict", secure=secure, path="/")
            return response

        @app.post(SIGN_OUT, include_in_schema=False)
        async def sign_out(request: Request) -> Response:
            """Ends the session: its cookie is refused from now on, even if a copy of it is sent again."""
            sessions.end(request.cookies.get(COOKIE, ""))
            response = RedirectResponse(SIGN_IN, status_code=303)
            response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=secure, path="/")
            return response

    def report_query(start: str | None, end: str | None, as_of: str | None, window_days: int, country: str | None = None) -> Query:
        return Query(start or None, end or None, as_of or None, window_days, country or None)

    @app.get("/api/figures", summary="The 20 figures for a period, beside their published values")
    async def api_figures(start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                          as_of: str | None = None, window_days: int = 365) -> dict[str, Any]:
        query = report_query(start, end, as_of, window_days)
        return await run(lambda: read.figures_page(reader, query))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def figures(request: Request, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                      as_of: str | None = None, window_days: int = 365) -> Response:
        query = report_query(start, end, as_of, window_days)
        return page(request, "figures.html", {**await run(lambda: read.figures_page(reader, query)), "query": query.params()})

    @app.get("/api/figures/{key}", summary="The events behind one figure, a page at a time (after = last position of the previous page)")
    async def api_figure(key: str, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                         as_of: str | None = None, window_days: int = 365, country: str | None = None, after: After = 0,
                         page: int | None = Param(None, ge=1, le=POSITION_MAX), limit: int = Param(read.PAGE_SIZE, ge=1, le=1000)) -> dict[str, Any]:
        query = report_query(start, end, as_of, window_days, country)
        if page is not None:
            return await run(lambda: read.figure_page_number(reader, key, query, page, limit))
        return await run(lambda: read.figure_page(reader, key, query, after, limit))

    @app.get("/figures/{key}", response_class=HTMLResponse, include_in_schema=False)
    async def figure(request: Request, key: str, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                     as_of: str | None = None, window_days: int = 365, country: str | None = None, after: After = 0,
                     page_number: int | None = Param(None, alias="page", ge=1, le=POSITION_MAX)) -> Response:
        query = report_query(start, end, as_of, window_days, country)
        if page_number is not None:
            found = await run(lambda: read.figure_page_number(reader, key, query, page_number))
        else:
            found = await run(lambda: read.figure_page(reader, key, query, after))
        return page(request, "figure.html", {**found, "query": query.params()})

    async def download(rows: Iterator[list[dict[str, Any]]], fmt: str, columns: tuple[str, ...], name: str) -> Response:
        """Stream every row as CSV or JSON Lines, a chunk at a time from the reading thread; the first chunk is read before
        the answer starts, so a refused request gets its error page, not a broken download."""
        media_type = export.media_type(fmt)
        encode = export.encoder(fmt, columns)
        first = await run(lambda: next(rows, None))

        async def body() -> AsyncIterator[bytes]:
            yield encode(first or [])
            while (chunk := await run(lambda: next(rows, None))) is not None:
                yield encode(chunk)

        return StreamingResponse(body(), media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})

    @app.get("/export/audit.{fmt}", include_in_schema=False)
    async def export_audit(fmt: str, actor: str | None = None, type: str | None = None, record: str | None = None, since: str | None = None,
                           until: str | None = None, at: int | None = Param(None, ge=1, le=POSITION_MAX)) -> Response:
        """Every event of the audit log that passes the filters, as the log stood at `at`."""
        given = LogFilter(actor or None, type or None, record or None, since or None, until or None)
        return await download(export.audit_rows(reader, given, at), fmt, export.AUDIT_COLUMNS, "audit")

    @app.get("/export/figures/{key}.{fmt}", include_in_schema=False)
    async def export_evidence(key: str, fmt: str, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                              as_of: str | None = None, window_days: int = 365, country: str | None = None) -> Response:
        """Every event behind one figure."""
        query = report_query(start, end, as_of, window_days, country)
        return await download(export.evidence_rows(reader, key, query), fmt, export.EVIDENCE_COLUMNS, key)

    @app.get("/export/figures.{fmt}", include_in_schema=False)
    async def export_figures(fmt: str, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                             as_of: str | None = None, window_days: int = 365, country: str | None = None) -> Response:
        """The figures of a period (of one country, with `country`) beside their published values."""
        query = report_query(start, end, as_of, window_days, country)
        found = read.country_page if country else read.figures_page
        rows = iter([export.figure_rows((await run(lambda: found(reader, query)))["figures"])])
        return await download(rows, fmt, export.FIGURE_COLUMNS, f"figures-{country}" if country else "figures")

    @app.get("/export/history.{fmt}", include_in_schema=False)
    async def export_history(fmt: str, ref: str = "", as_of: str | None = None) -> Response:
        """Every event of one record, each marked as recorded by `as_of` or not."""
        found = await run(lambda: read.record_page(reader, ref, as_of or None))
        return await download(iter([found["events"]]), fmt, export.HISTORY_COLUMNS, f"history-{re.sub(r'[^A-Za-z0-9_-]', '_', found['ref'])}")

    @app.get("/export/countries/{country}/{name}.{fmt}", include_in_schema=False)
    async def export_country(country: str, name: str, fmt: str, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                             as_of: str | None = None, window_days: int = 365) -> Response:
        """A country sheet's cross-border partners or its profiles by region."""
        query = report_query(start, end, as_of, window_days, country)
        export.country_rows({"cross_border_partners": {}, "regions": {"profiles": {}}}, name)  # an unknown list is refused before any work
        sheet = await run(lambda: read.country_page(reader, query))
        return await download(iter([export.country_rows(sheet, name)]), fmt, export.COUNTRY_LISTS.get(name, ()), f"{sheet['country']}-{name}")

    @app.get("/figures/{key}/months", response_class=HTMLResponse, include_in_schema=False)
    async def figure_months(request: Request, key: str, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                            as_of: str | None = None, window_days: int = 365, country: str | None = None) -> Response:
        query = report_query(start, end, as_of, window_days, country)
        return page(request, "months.html", {**await run(lambda: read.figure_months(reader, key, query)), "query": query.params()})

    @app.get("/api/records/{ref:path}", summary="One record's whole history, and its state as of a moment")
    async def api_record(ref: str, as_of: str | None = None) -> dict[str, Any]:
        return await run(lambda: read.record_page(reader, ref, as_of or None))

    @app.get("/records/{ref:path}", response_class=HTMLResponse, include_in_schema=False)
    async def record(request: Request, ref: str, as_of: str | None = None) -> Response:
        return page(request, "record.html", await run(lambda: read.record_page(reader, ref, as_of or None)))

    @app.get("/static/proof.js", include_in_schema=False)
    async def proof_script() -> Response:
        # The one script of the app: the event page's in-browser proof check (no inline scripts: the CSP forbids them).
        return Response(PROOF_SCRIPT, media_type="text/javascript")

    # Which checkpoint an event is proven in: the latest published by default.
    published_param = Param(None, ge=1, le=POSITION_MAX, description="the published checkpoint of this number (`ledger checkpoint --list`)")
    pasted_param = Param(None, max_length=16_384, description="a checkpoint as signed, pasted by the auditor")

    @app.get("/api/events/{position}", summary="One stored event: its payload as stored, its position, and its inclusion proof "
             "(exactly `ledger prove`'s output) in the latest published checkpoint, or the one asked for")
    async def api_event(position: Position, published: int | None = published_param, checkpoint: str | None = pasted_param) -> dict[str, Any]:
        return await run(lambda: read.event_page(reader, position, published, checkpoint or None))

    @app.get("/events/{position}", response_class=HTMLResponse, include_in_schema=False)
    async def event(request: Request, position: Position, as_of: str | None = None, published: int | None = published_param,
                    checkpoint: str | None = pasted_param) -> Response:
        moment = read.parse_moment("as-of", as_of) if as_of else None  # a wrong moment is refused before any work
        shown = await run(lambda: read.event_page(reader, position, published, checkpoint or None))
        return page(request, "event.html", {**shown, **read.seen_as_of(shown, moment)})

    @app.get("/events/{position}/proof.json", include_in_schema=False)
    async def event_proof(position: Position, published: int | None = published_param, checkpoint: str | None = pasted_param) -> Response:
        """The event's inclusion proof in a signed checkpoint's tree (the latest published by default), as `ledger prove` writes it."""
        proof, _ = await run(lambda: read.published_proof(reader, position, published, checkpoint or None))
        return _download(proof.model_dump_json(indent=2) + "\n", "application/json", f"proof-{position}.json")

    @app.get("/events/{position}/proof.tlog-proof", include_in_schema=False)
    async def event_tlog_proof(position: Position, published: int | None = published_param, checkpoint: str | None = pasted_param) -> Response:
        """The same proof as a C2SP tlog-proof, which carries the signed checkpoint (`ledger verify-proof` reads both)."""
        _, proof = await run(lambda: read.published_proof(reader, position, published, checkpoint or None))
        return _download(proof.text(), "text/plain; charset=utf-8", f"proof-{position}.tlog-proof")

    @app.get("/api/audit", summary="The audit log, filtered, a page at a time by position (after = last position of the previous page)")
    async def api_audit(actor: str | None = None, type: str | None = None, record: str | None = None, since: str | None = None,
                        until: str | None = None, after: After = 0, before: int | None = Param(None, ge=1, le=POSITION_MAX),
                        at: int | None = Param(None, ge=1, le=POSITION_MAX), limit: int = Param(read.PAGE_SIZE, ge=1, le=1000)) -> dict[str, Any]:
        given = LogFilter(actor or None, type or None, record or None, since or None, until or None)
        return await run(lambda: read.audit_page(reader, given, after, limit, before, at))

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    async def audit(request: Request, actor: str | None = None, type: str | None = None, record: str | None = None, since: str | None = None,
                    until: str | None = None, after: After = 0, before: int | None = Param(None, ge=1, le=POSITION_MAX),
                    at: int | None = Param(None, ge=1, le=POSITION_MAX), limit: int = Param(read.PAGE_SIZE, ge=1, le=1000)) -> Response:
        given = LogFilter(actor or None, type or None, record or None, since or None, until or None)
        found = await run(lambda: read.audit_page(reader, given, after, limit, before, at))
        return page(request, "audit.html", {**found, "types": audit_log.type_choices()})

    @app.get("/api/search", summary="What a search finds: a position, a leaf hash (hex or base64), a record reference or an organisation's name")
    async def api_search(q: str = "") -> dict[str, Any]:
        return await run(lambda: search.find(reader, q))

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    async def search_page(request: Request, q: str = "") -> Response:
        found = await run(lambda: search.find(reader, q))
        if len(found["matches"]) == 1 and not found["more"]:  # the one match: straight to its page
            return RedirectResponse(found["matches"][0]["href"], status_code=303)
        return page(request, "search.html", found)

    @app.get("/api/countries/{country}", summary="A country fact sheet: its figures, regions and cross-border partners")
    async def api_country(country: str, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                          as_of: str | None = None, window_days: int = 365) -> dict[str, Any]:
        query = report_query(start, end, as_of, window_days, country)
        return await run(lambda: read.country_page(reader, query))

    @app.get("/countries", response_class=HTMLResponse, include_in_schema=False)
    async def countries(request: Request, country: str | None = None, start: str | None = Param(None, alias="from"),
                        end: str | None = Param(None, alias="to"), as_of: str | None = None, window_days: int = 365) -> Response:
        query = report_query(start, end, as_of, window_days)
        if country:
            return RedirectResponse(_link(f"/countries/{read.country_code(country)}", **query.params()), status_code=303)
        return page(request, "countries.html", {**await run(lambda: read.countries_page(reader, query)), "query": query.params()})

    @app.get("/countries/{country}", response_class=HTMLResponse, include_in_schema=False)
    async def country(request: Request, country: str, start: str | None = Param(None, alias="from"), end: str | None = Param(None, alias="to"),
                      as_of: str | None = None, window_days: int = 365) -> Response:
        query = report_query(start, end, as_of, window_days, country)
        return page(request, "country.html", {**await run(lambda: read.country_page(reader, query)), "query": query.params()})

    # Readers that share answers between people must not share those of a server that asks for a token.
    shared = "private" if token is not None else "public"

    @app.get(f"{TLOG}checkpoint", include_in_schema=False)
    async def tlog_checkpoint() -> Response:
        """C2SP tlog-tiles: the latest published checkpoint, which may change within seconds."""
        note = await run(lambda: read.tlog_checkpoint(reader))
        return Response(note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": f"{shared}, max-age=5"})

    @app.get(TLOG + "tile/{path:path}", include_in_schema=False)
    async def tlog_tile(path: str) -> Response:
        """C2SP tlog-tiles: a hash tile or entry bundle; once served, its bytes never change."""
        data = await run(lambda: read.tlog_tile(reader, f"tile/{path}"))
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": f"{shared}, max-age=31536000, immutable"})

    # Every page answers HEAD as it answers GET (uvicorn leaves the body out).
    app.add_middleware(_HeadAsGet)
    return app


def _download(text: str, media_type: str, name: str) -> Response:
    return Response(text, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


class _HeadAsGet:
    """Hands a HEAD request on as a GET, in a copy of its scope, so the server still knows to send no body."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = dict(scope, method="GET")
        await self.app(scope, receive, send)


def _presents(request: Request, token: str, sessions: Sessions) -> bool:
    """Whether the request carries the token as a bearer header, or the cookie of a session signed in and not yet over."""
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    return sessions.valid(request.cookies.get(COOKIE, ""))


def _local(target: str) -> str:
    """Only a path on this site, so the sign-in form cannot send a browser elsewhere (`//host`, `/\\host`, tabs browsers drop)."""
    return target if re.fullmatch(r"/(?![/\\])[\x21-\x7e]*", target) and "\\" not in target else "/"


def _link(path: str, **params: Any) -> str:
    """A path with its query string; parameters that are None or empty are left out."""
    given = {k: v for k, v in params.items() if v not in (None, "")}
    return path + (f"?{urlencode(given)}" if given else "")


def _moment(iso: str | None) -> str:
    """An ISO timestamp as an auditor reads it: UTC, to the millisecond when it has one."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso).astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds" if moment.microsecond else "seconds") + " UTC"


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
