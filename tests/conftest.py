"""Fixtures shared by every tier: ledgers on the in-memory store and on SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import bootstrap
from service_layer.ledger import Ledger


@pytest.fixture
def memory_ledger() -> Iterator[Ledger]:
    app = bootstrap.build_ledger("memory://")
    yield app
    app.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"
