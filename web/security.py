"""What keeps the browser view safe to serve: the Host check against DNS rebinding, the token's strength, and sign-in sessions that expire."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.errors import LedgerError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""Names a browser on this machine uses for it; always allowed in `Host`."""
TOKEN_BITS = 128
"""The least a token must hold when the view is reachable from other machines: 22 base64 characters, or 32 hex digits."""
SESSION_HOURS = 8
_ALPHABETS = ((set(string.digits), math.log2(10)), (set(string.hexdigits), 4.0), (set(string.ascii_letters + string.digits + "+/=-_"), 6.0))
_PRINTABLE = math.log2(94)


def token_bits(token: str) -> int:
    """The strength of a token, as if each character were drawn at random from the smallest usual alphabet holding all of them
    (digits, hex digits, base64 or base64url, printable ASCII); a token with other characters counts as printable ASCII."""
    given = set(token)
    per_character = next((bits for alphabet, bits in _ALPHABETS if given <= alphabet), _PRINTABLE)
    return math.floor(len(token) * per_character)


def is_loopback(host: str) -> bool:
    """Whether an address to listen on lets only this machine in (`localhost`, 127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


class UnsafeServing(LedgerError):
    """`serve` was asked to let other machines in without HTTPS and a strong token, and without a proxy that serves HTTPS."""


def require_safe(host: str, tls: bool, token: str | None, behind_proxy: bool) -> None:
    """Refuse, with UnsafeServing, to serve other machines over plain HTTP or with a guessable token (a proxy may do both)."""
    if is_loopback(host):
        return
    if not behind_proxy and not tls:
        raise UnsafeServing(f"host: {host!r}: other machines may reach it: serve HTTPS (--tls-cert, --tls-key), or name --behind-proxy")
    if not behind_proxy and token is None:
        raise UnsafeServing(f"host: {host!r}: other machines may reach it: give a --token of at least {TOKEN_BITS} bits, or name --behind-proxy")
    if token is not None and token_bits(token) < TOKEN_BITS:
        # The token itself is never shown, only its length and strength.
        raise UnsafeServing(f"token: {len(token)} characters hold about {token_bits(token)} bits, fewer than {TOKEN_BITS}: use 22 base64 "
                            "characters (openssl rand -base64 18) or 32 hex digits (openssl rand -hex 16)")


@dataclass(frozen=True)
class HostCheck:
    """Which `Host` headers a request may carry: the bound address, this machine's names, and the `--allowed-host` names.

    A page fetched by a browser under another name (a rebound DNS name) is refused: its scripts could read the ledger. An
    allowed name without a port allows every port; the others must name the bound port (or none, on the scheme's own port).
    """

    bound: str
    port: int | None = None
    allowed: tuple[str, ...] = ()
    tls: bool = False

    def permits(self, header: str | None) -> bool:
        if header is None:  # HTTP/1.0 without Host: no browser sends it, so no rebinding either
            return True
        name, port = _split(header.strip().lower())
        if name is None:
            return False
        for entry in self.allowed:
            allowed_name, allowed_port = _split(entry.lower())
            if name == allowed_name and (allowed_port is None or allowed_port == (port or self._default_port())):
                return True
        if name not in {*LOOPBACK_NAMES, self.bound.lower().strip("[]")}:
            return False
        return self.port is None or (port or self._default_port()) == self.port

    def _default_port(self) -> int:
        return 443 if self.tls else 80


def _split(host: str) -> tuple[str | None, int | None]:
    """(name, port) of a Host header or `--allowed-host` entry; IPv6 literals in brackets; (None, None) if malformed."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None if not rest else "x"
    else:
        name, colon, port_text = host.partition(":")
        port = port_text if colon else None
    if not name or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
        return None, None
    return name, int(port) if port is not None else None


@dataclass
class Sessions:
    """Signed sign-in cookies: a new random value at each sign-in, carrying its time, valid for `hours`, ended by sign-out.

    The signing key is drawn when the server starts, so a restart of `serve` ends every session, and a cookie says nothing
    about the token.
    """

    hours: float = SESSION_HOURS
    clock: Callable[[], float] = time.time
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _ended: dict[str, float] = field(default_factory=dict)
    """Sessions signed out before they expired, with their expiry; forgotten once expired."""

    @property
    def seconds(self) -> int:
        return max(1, int(self.hours * 3600))

    def issue(self) -> str:
        """A new session's cookie value: `issued.nonce.signature`."""
        body = f"{int(self.clock())}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign(body)}"

    def valid(self, value: str) -> bool:
        body, _, signature = value.rpartition(".")
        issued, _, nonce = body.partition(".")
        if not (issued.isdigit() and nonce and hmac.compare_digest(signature.encode(), self._sign(body).encode())):
            return False
        return int(issued) <= self.clock() < int(issued) + self.seconds and body not in self._ended

    def end(self, value: str) -> None:
        """Sign a session out: its cookie is refused from now on, even if kept and sent again."""
        if self.valid(value):
            body = value.rpartition(".")[0]
            now = self.clock()
            self._ended = {b: until for b, until in self._ended.items() if until > now}
            self._ended[body] = int(body.partition(".")[0]) + self.seconds

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
