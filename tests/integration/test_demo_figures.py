"""The scale-1 demo history meets every published 2024-2025 figure and its qualifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import ledger
from projections.figures import meets, published_figures


@pytest.mark.slow
def test_the_scale_1_demo_meets_every_published_figure(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scale1.db'}"
    runner = CliRunner()
    written = runner.invoke(ledger, ["demo", "--scale", "1", "--db", url])
    assert written.exit_code == 0, written.output
    result = runner.invoke(ledger, ["report", "impact", "--from", "2024-01-01", "--to", "2025-12-31", "--format", "json", "--db", url])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["figures"]
    misses = [
        (f["key"], figures[f["key"]], f["qualifier"], f["value"])
        for f in published_figures()["figures"]
        if not meets(figures[f["key"]], f["value"], f["qualifier"])
    ]
    assert misses == []


def test_the_same_demo_gives_the_same_figures_on_sqlite_and_postgres(tmp_path: Path) -> None:
    from tests.conftest import drop_schema, fresh_postgres_url

    postgres = fresh_postgres_url()
    reports = []
    try:
        for url in (f"sqlite:///{tmp_path / 'same.db'}", postgres):
            runner = CliRunner()
            assert runner.invoke(ledger, ["demo", "--scale", "0.05", "--seed", "9", "--db", url]).exit_code == 0
            result = runner.invoke(ledger, ["report", "impact", "--db", url, "--format", "json"])
            assert result.exit_code == 0, result.output
            reports.append(json.loads(result.stdout))
    finally:
        drop_schema(postgres)
    assert reports[0] == reports[1]
    assert reports[0]["figures"]["bilateral_meetings"] > 100
