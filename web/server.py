"""How `ledger serve` runs the browser view: its listening socket, TLS, bounded concurrency, and a log that stays small."""

from __future__ import annotations

import errno
import logging
import resource
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidValue
from web.read import Reader

BACKLOG = 128
"""Connections the kernel holds while the server cannot accept them (busy, or out of file descriptors)."""
LOG_INTERVAL = 10.0
"""A condition that repeats (the same first line) is logged once per this many seconds, with a count of the others."""
ACCESS_FORMAT = '%(asctime)s %(client_addr)s "%(request_line)s" %(status_code)s'


@dataclass(frozen=True)
class Listener:
    """Where and how the view listens: address, port, and the certificate and key of TLS, if any."""

    host: str
    port: int
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def check_database(db: str) -> None:
    """Open what the pages read (ledger, projection store, tree) and close it again: a broken database fails here, at start."""
    reader = Reader(db)
    try:
        reader.sources().recorder.max_notification_id()
        reader.tree().published(1)
    finally:
        reader.close()


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound now, so a busy port or a foreign address is said in one line before anything is served."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=BACKLOG)
    except socket.gaierror as error:
        raise InvalidValue("host", host, f"not an address this machine can listen on ({error.strerror})") from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise InvalidValue("port", port, f"already in use on {host}; stop what listens there, or choose another --port") from None
        raise InvalidValue("host", host, f"cannot listen on it, port {port} ({error.strerror})") from None


def url(listener: Listener, sock: socket.socket) -> str:
    """The address a browser on this machine opens (the port the socket got, when 0 asked for any)."""
    host = listener.host if listener.host not in ("0.0.0.0", "::") else "127.0.0.1" if listener.host == "0.0.0.0" else "::1"
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"{'https' if listener.tls else 'http'}://{shown}:{sock.getsockname()[1]}/"


def concurrency() -> int:
    """Requests served at once (uvicorn answers 503 beyond): half the file descriptors left after the server's own, 2 to 100."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(2, min(100, (soft - 16) // 2))


def configured(app: Any, listener: Listener, sock: socket.socket, behind_proxy: bool) -> Any:
    """The uvicorn server of `app` on the bound socket, its TLS certificate loaded (a bad one is said in one line): one
    access-log line per request, repeated errors logged once per interval, concurrency bounded by the file descriptors."""
    import uvicorn

    config = uvicorn.Config(
        app, host=listener.host, port=sock.getsockname()[1], loop="asyncio", log_config=log_config(), access_log=True, server_header=False,
        limit_concurrency=concurrency(), backlog=BACKLOG, ssl_certfile=listener.tls_cert, ssl_keyfile=listener.tls_key,
        proxy_headers=behind_proxy, forwarded_allow_ips="127.0.0.1" if behind_proxy else None,
    )
    try:
        config.load()
    except (OSError, ssl.SSLError) as error:
        raise InvalidValue("tls-cert", listener.tls_cert, f"cannot be used with --tls-key {listener.tls_key} ({error.strerror or error})") from None
    return uvicorn.Server(config)


def log_config() -> dict[str, Any]:
    """uvicorn's loggers: each request in one line; warnings and errors, each repeated condition once per interval."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "filters": {"once": {"()": OncePerInterval}},
        "formatters": {
            "access": {"()": "uvicorn.logging.AccessFormatter", "fmt": ACCESS_FORMAT, "use_colors": False},
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stderr"},
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr", "filters": ["once"]},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "WARNING", "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "asyncio": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


class OncePerInterval(logging.Filter):
    """Lets a condition through once per interval (keyed by its message's first line); the next one says how many were held back.

    Out of file descriptors, every accept fails the same way many times a second: one line (and one traceback) per interval
    says it as well, and the log stays small.
    """

    def __init__(self, seconds: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.seconds, self.clock = seconds, clock
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        key = record.getMessage().partition("\n")[0][:200]
        now = self.clock()
        if key in self._last and now - self._last[key] < self.seconds:
            self._held[key] += 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg, record.args = f"{record.getMessage()}\n({held} more like it in the last {self.seconds:g} s, not logged)", ()
        return True
