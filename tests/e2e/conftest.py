"""Fixtures of the browser-view tests: `ledger serve` in a real uvicorn process, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import socket
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.e2e.web import CORRECTION, FIRST, ROOT, TOKEN, Served, cli, free_port, write_lines


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("web")
    db = f"sqlite:///{folder / 'web.db'}"
    cli("import", str(ROOT / "examples" / "platform-actions.jsonl"), "--db", db)
    cli("import", str(write_lines(folder / "first.jsonl", FIRST)), "--db", db)
    time.sleep(0.01)
    between = datetime.now(timezone.utc).isoformat()
    time.sleep(0.01)
    cli("import", str(write_lines(folder / "correction.jsonl", CORRECTION)), "--db", db)
    port = free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--db", db, "--port", str(port), "--token", TOKEN],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", db, between)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "ledger serve did not start listening within 30 s"
                time.sleep(0.1)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, served: Served) -> Iterator[Page]:
    """A browser tab signed in through the form, which sets the session cookie."""
    context: BrowserContext = browser.new_context(base_url=served.base)
    tab = context.new_page()
    tab.goto("/")
    tab.fill("#token", TOKEN)
    tab.click("#sign-in")
    tab.wait_for_selector("#figures")
    yield tab
    context.close()
