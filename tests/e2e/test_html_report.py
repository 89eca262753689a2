"""The HTML impact report, opened in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from cli.main import ledger

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is not installed: scripts/test installs Debian's chromium package"
    return found


def test_the_html_report_renders_its_figures_in_chromium(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'html.db'}"
    runner = CliRunner()
    assert runner.invoke(ledger, ["demo", "--scale", "0.02", "--seed", "5", "--db", url]).exit_code == 0
    page = tmp_path / "impact.html"
    written = runner.invoke(ledger, ["report", "impact", "--format", "html", "--out", str(page), "--db", url])
    assert written.exit_code == 0, written.output
    expected = json.loads(runner.invoke(ledger, ["report", "impact", "--format", "json", "--db", url]).stdout)["figures"]
    assert "http://" not in page.read_text() and "https://" not in page.read_text()

    profile = tmp_path / "profile"
    dom = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    rendered = dict(re.findall(r'<tr data-key="([a-z0-9_]+)"><td>[^<]*</td><td class="num" data-value="([^"]*)"', dom))
    assert rendered == {key: str(value) for key, value in expected.items()}
    for chart in ("activity-chart", "funnel-chart", "pairs-chart"):
        assert f'id="{chart}"' in dom
    assert dom.count("<rect") > 10

    shot = tmp_path / "impact.png"
    subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    assert shot.stat().st_size > 20_000
