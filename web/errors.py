"""How the browser view answers what it cannot show: an error page for people, a JSON error for programs, never a bare 500."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from domain.errors import InvalidValue, LedgerError, UnknownReference, UnreplayableEvent, shown
from web.read import DatabaseUnavailable, NotFound

Page = Callable[[Request, str, dict[str, Any], int], Response]
RETRY_SECONDS = 5
"""What a 503 tells a client to wait before it asks again."""
EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
"""An OSError with one of these means the server is out of resources for now, not that the request is wrong."""


def status_of(error: LedgerError) -> int:
    # A stored event no replay can apply is the ledger's state, not the request's fault: 409, with its position.
    if isinstance(error, (NotFound, UnknownReference)):
        return 404
    if isinstance(error, UnreplayableEvent):
        return 409
    return 503 if isinstance(error, (DatabaseUnavailable, OutOfResources)) else 400


def install(app: FastAPI, page: Page, for_programs: Callable[[Request], bool], headers: dict[str, str]) -> Callable[[Request, LedgerError], Response]:
    """Answer every refused request of `app` in one line: a page rendered by `page`, or JSON where `for_programs` says so.
    Returns that answer, for refusals made before a route is found."""

    def answer(request: Request, error: LedgerError) -> Response:
        status = status_of(error)
        retry = {"Retry-After": str(RETRY_SECONDS)} if status == 503 else {}
        if for_programs(request):
            body = {"error": str(error), "position": error.position} if isinstance(error, UnreplayableEvent) else {"error": str(error)}
            response: Response = JSONResponse(body, status_code=status, headers=retry)
        else:
            response = page(request, "error.html", {"error": str(error), "status": status}, status)
            # A browser asks again by itself (no script needed), so the page says "retrying" truthfully.
            response.headers.update({**retry, "Refresh": str(RETRY_SECONDS)} if retry else {})
        return response

    @app.exception_handler(LedgerError)
    async def refused(request: Request, error: LedgerError) -> Response:
        return answer(request, error)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> Response:
        # The first problem, named by its parameter, as every other bad value is: `after: 'abc': input should be ...`.
        first = error.errors()[0]
        reason = str(first.get("msg", "is not valid"))
        return answer(request, InvalidValue(str(first["loc"][-1]), first.get("input", ""), reason[:1].lower() + reason[1:]))

    @app.exception_handler(HTTPException)
    async def no_route(request: Request, error: HTTPException) -> Response:
        if error.status_code == 404:
            return answer(request, NotFound(f"page: {shown(request.url.path)}: there is no such page"))
        response = answer(request, _Refused(str(error.detail)))
        response.status_code = error.status_code
        return response

    @app.exception_handler(OSError)
    async def exhausted(request: Request, error: OSError) -> Response:
        if error.errno not in EXHAUSTED:
            raise error
        return answer(request, OutOfResources(f"the server is out of file descriptors or memory for now ({error.strerror}); retrying"))

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> Response:
        # A bug: its traceback is still logged (the server re-raises after this), but the browser gets a page with the headers.
        response = answer(request, _Refused("the server could not show this page; the error is in its log"))
        response.status_code = 500
        response.headers.update(headers)
        return response

    return answer


class OutOfResources(LedgerError):
    """The server cannot open what a page needs (file descriptors, memory) for now; the request is not at fault."""


class _Refused(LedgerError):
    """A refusal by the web framework itself (a method or a status it chose), shown as its own line."""
