"""A trend, not only a snapshot: a benchmark result is compared row by row with an earlier result file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def row(name: str, store: str, events: int, events_per_s: int, peak_mib: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "store": store, "events": events, "seconds": round(events / events_per_s, 2) if events_per_s else 1.0,
            "events_per_s": events_per_s, "peak_mib": peak_mib, "ratios": [], "targets": "", **extra}


def result(path: Path, heading: str, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"heading": heading, "command": "scripts/benchmark --size 1000", "results": rows}))
    return path


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks.bench", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)


def test_each_row_is_compared_with_the_same_measure_and_store_of_an_earlier_result(tmp_path: Path) -> None:
    pages = [{"page": "figures", "path": "/", "first_ms": 900.0, "warm_ms": 4.0, "bytes": 10}]
    old = result(tmp_path / "old.json", "1000 events, before", [
        row("rebuild", "sqlite", 1000, 1000, 80.0), row("rebuild", "postgresql", 1000, 500, 90.0),
        row("baseline-read", "sqlite", 1000, 4000, 30.0), row("web-pages", "sqlite", 1000, 0, 91.0, pages=pages, tree_seconds=0.1),
    ])
    new = result(tmp_path / "new.json", "1000 events, after", [
        row("rebuild", "sqlite", 1000, 2000, 40.0), row("rebuild", "postgresql", 1000, 400, 90.0),
        row("tlog-verify", "sqlite", 1000, 3000, 50.0),
        row("web-pages", "sqlite", 1000, 0, 91.0, pages=[{**pages[0], "first_ms": 450.0, "warm_ms": 4.0}], tree_seconds=0.1),
    ])
    done = bench("compare", str(new), str(old))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "### Change against `old.json` (1000 events, before)"
    body = lines[lines.index("|---|---|--:|--:|--:|--:|--:|") + 1:]
    assert body == [
        "| rebuild | sqlite | 1,000 | 1,000 → 2,000 (2.00x) | 80.0 → 40.0 (0.50x) |  |  |",
        "| rebuild | postgresql | 1,000 | 500 → 400 (0.80x) | 90.0 → 90.0 (1.00x) |  |  |",
        "| tlog-verify | sqlite | only now | | | | |",
        "| web-pages | sqlite | 1,000 | 0 → 0 (-) | 91.0 → 91.0 (1.00x) |  |  |",
        "| web-pages: figures | sqlite |  |  |  | 900.0 → 450.0 (0.50x) | 4.0 → 4.0 (1.00x) |",
        "| baseline-read | sqlite | only then | | | | |",
    ]
    # The markdown result beside the new file holds its own table, then the changes.
    markdown = new.with_suffix(".md").read_text()
    assert markdown.startswith("### 1000 events, after\n") and markdown.endswith(done.stdout)
    assert "| rebuild | sqlite | 1,000 | 0.5 | 2,000 | 40.0 |" in markdown


def test_a_run_compared_with_a_missing_file_stops_before_measuring(tmp_path: Path) -> None:
    done = bench("run", "--size", "400", "--compare", str(tmp_path / "missing.json"), "--results", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(f"--compare: {str(tmp_path / 'missing.json')!r}: no such result file")
    assert list(tmp_path.iterdir()) == []
