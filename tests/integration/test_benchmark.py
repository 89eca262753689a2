"""The benchmark runs end to end at a tiny size and reports every measure with its baselines (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import postgres_url

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"ledger-write", "baseline-insert", "import", "raw-scan-json", "raw-scan-orjson", "baseline-read", "rebuild-by-pages",
            "rebuild", "report-impact", "report-as-of", "sign-batch", "check-batch", "mirror", "tiles-http"}


def test_the_benchmark_reports_every_measure_with_its_ratios(tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_TEST_PG_URL": postgres_url()}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "run", "--size", "400", "--no-kafka", "--results", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [written] = list(tmp_path.glob("*-400.json"))
    rows = json.loads(written.read_text())["results"]
    found = {(r["name"], r["store"]) for r in rows}
    assert {(name, "sqlite") for name in EXPECTED | {"raw-insert"}} <= found
    assert {(name, "postgresql") for name in EXPECTED | {"raw-copy", "raw-executemany"}} <= found
    pages = [r for r in rows if r["name"] == "web-pages"]
    assert {r["store"] for r in pages} == {"sqlite", "postgresql"}
    for r in pages:
        # Every page of the browser view answered (a refused page fails the measure), each timed cold and warm.
        assert len(r["pages"]) >= 14 and r["events"] == 401 and 10 < r["peak_mib"] < 4096, r  # 400 and the run's writer
        assert all(p["first_ms"] > 0 and p["warm_ms"] > 0 and p["bytes"] > 0 for p in r["pages"]), r
        assert "every page <1 s first, <200 ms warm" in r["targets"], r
        # The two CSV downloads (a figure's events, the audit log of one type) are timed apart from the pages' targets.
        assert [p["path"].split("?")[0].split("/")[2] for p in r["pages"] if p["download"]] == ["figures", "audit.csv"], r
    for r in rows:
        if r["name"] == "web-pages":
            continue
        assert r["events"] > 0 and r["seconds"] >= 0 and r["events_per_s"] > 0 and 10 < r["peak_mib"] < 4096, r
        # As of the middle event's recorded time: every event recorded by then, at least half of them.
        # The writes count the 400 events they record; what reads the ledger counts the writer its first write authorized too.
        counted = 400 if r["name"] in ("ledger-write", "import") else 401
        assert (200 <= r["events"] <= 401) if r["name"] == "report-as-of" else r["events"] == counted, r
    by_name = {(r["name"], r["store"]): r for r in rows}
    for store in ("sqlite", "postgresql"):
        ratios = by_name[("rebuild", store)]["ratios"]
        assert [ratio.split("x ")[1] for ratio in ratios] == ["raw-scan-json", "raw-scan-orjson"]
        assert all(float(ratio.split("x ")[0]) > 0 for ratio in ratios)
        assert "≥150k/s" in by_name[("rebuild", store)]["targets"]
        assert len(by_name[("ledger-write", store)]["ratios"]) == 2
        # Signing and checking every event, beside plain hashing of the same events; checking also each event on its own.
        assert [ratio.split("x ")[1] for ratio in by_name[("sign-batch", store)]["ratios"]] == ["baseline-sha256"]
        assert by_name[("check-batch", store)]["each_events_per_s"] > 0
        # A verified mirror from a local `ledger serve`, beside fetching the same tiles with bare HTTP.
        assert [ratio.split("x ")[1] for ratio in by_name[("mirror", store)]["ratios"]] == ["tiles-http"]
    markdown = written.with_suffix(".md").read_text()
    page_lines = sum(len(r["pages"]) + 1 for r in pages)
    assert markdown.count("\n| ") == len(rows) + 1 + page_lines and "scripts/benchmark --size 400" in markdown
    assert markdown.count("| figures | `/` |") == 2


def test_a_run_without_the_write_baselines_measures_the_reads_only(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "run", "--size", "200", "--no-postgres", "--no-kafka", "--no-pages",
         "--no-write-baselines", "--results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [written] = list(tmp_path.glob("*-200.json"))
    names = {r["name"] for r in json.loads(written.read_text())["results"]}
    assert not names & {"baseline-insert", "raw-insert"}, names
    assert {"ledger-write", "import", "rebuild", "tlog-verify", "report-impact"} <= names, names


def test_a_served_ledger_answers_past_a_pipe_full_of_access_lines(tmp_path: Path) -> None:
    # `ledger serve` writes one access line per request: the benchmark's server must keep answering long after 64 KiB of them.
    import urllib.request

    import bootstrap
    from benchmarks import bench
    from service_layer import commands as c
    from service_layer.ledger import utc_now

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = bootstrap.build_ledger(url)
    try:
        app.execute([c.RegisterOrg(org="ORG-LOG", name="Busy Cluster", country="PT", ecosystems=("digital",), year_established=2010,
                                   occurred_at=utc_now())])
    finally:
        app.close()
    with bench._served(url, "/openapi.json") as (base, _):
        for _ in range(1_500):  # about 120 KiB of access lines
            with urllib.request.urlopen(f"{base}/api/events/2?padding={'x' * 40}", timeout=10) as answer:
                assert answer.status == 200
