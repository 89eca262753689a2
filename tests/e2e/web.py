"""What the browser-view tests share: a small ledger to serve, and calls to a running `ledger serve`."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli.main import ledger

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-auditor-token"
SCRIPT_NAME = "<script>alert(1)</script>"
# Registered and published in a first import; archived by a correction imported later, effective months before.
FIRST = [
    {"action": "org.register", "org": "ORG-FR-0099", "name": SCRIPT_NAME, "country": "FR", "region": "FR10", "sectors": ["software"],
     "ecosystems": ["digital"], "year_established": 2015, "members": {"smes": 40, "large_enterprises": 2, "research_organisations": 1},
     "occurred_at": "2024-02-01", "actor": "admin.claire"},
    {"action": "org.publish", "org": "ORG-FR-0099", "occurred_at": "2024-02-02", "actor": "admin.claire"},
]
CORRECTION = [{"action": "org.archive", "org": "ORG-FR-0099", "reason": "registered by mistake", "occurred_at": "2024-06-30", "actor": "admin.claire"}]
PAGES = ["/", "/figures/bilateral_meetings", "/records/MM-2024-MILAN-M001", "/events/1", "/audit", "/countries", "/countries/IT"]
APIS = ["/api/figures", "/api/figures/bilateral_meetings", "/api/records/MM-2024-MILAN-M001", "/api/events/1", "/api/audit",
        "/api/countries/IT", "/api/openapi.json"]


def cli(*args: str) -> str:
    result = CliRunner().invoke(ledger, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def write_lines(path: Path, actions: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(a) + "\n" for a in actions))
    return path


@dataclass
class Served:
    """A running `ledger serve` and what its ledger holds."""

    base: str
    db: str
    between: str  # a moment after the first imports and before the correction


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(served: Served, path: str, method: str = "GET", token: str | None = TOKEN) -> tuple[int, bytes]:
    request = urllib.request.Request(served.base + path, method=method, data=b"" if method in ("POST", "PUT") else None)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def api(served: Served, path: str) -> Any:
    status, body = call(served, path)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)
