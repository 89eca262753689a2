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
    figures = json.loads(result.output)["figures"]
    misses = [
        (f["key"], figures[f["key"]], f["qualifier"], f["value"])
        for f in published_figures()["figures"]
        if not meets(figures[f["key"]], f["value"], f["qualifier"])
    ]
    assert misses == []
