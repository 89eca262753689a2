"""Random bytes, random JSON and random Unicode fed to `ledger import`: always one line per problem, exit 1, and nothing written."""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import ledger
from tests.conftest import drop_schema, fresh_postgres_url, snapshot

TRICKY = "\u2028\u2029\u0085\ufeff\x00\x1b\u202e\u200b\r\t\"\\{}[]:,"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(alphabet=st.characters() | st.sampled_from(TRICKY)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["action", "org", "name", "occurred_at", "members", "x"]) | st.text(max_size=5), children, max_size=5),
    max_leaves=12,
)
actionish = st.fixed_dictionaries(
    {"action": st.sampled_from(["org.register", "org.update", "person.register", "meeting.hold", "nope"]), "occurred_at": st.sampled_from(["2024-01-01", "31/12/2025", ""])},
    optional={"org": st.text(max_size=8), "name": st.text(alphabet=st.sampled_from(TRICKY + "ab"), max_size=6), "members": json_values},
)
line = st.one_of(
    st.binary(max_size=40),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    actionish.map(lambda v: json.dumps(v).encode()),
    st.text(alphabet=st.characters() | st.sampled_from(TRICKY), max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"[" * 5000, b'{"a": ' + b"9" * 5000 + b"}", b"\xef\xbb\xbf{}", b"\x00", b'{"a": 1, "a": 2}']),
)
PROBLEM = re.compile(r"^error: (line \d+: .+|\.\.\. and [\d,]+ more problem\(s\))$")


def check_refused(url: str, lines: list[bytes]) -> None:
    before = snapshot(url)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.jsonl"
        path.write_bytes(b"\n".join(lines))
        result = CliRunner().invoke(ledger, ["import", str(path), "--db", url])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    output = result.output.strip().splitlines()
    assert output and output[-1].startswith("Error: ")
    assert all(PROBLEM.match(entry) for entry in output[:-1]), output
    assert snapshot(url) == before


def seed(url: str) -> None:
    result = CliRunner().invoke(ledger, ["org", "register", "--org", "ORG-SEED", "--name", "Seed", "--country", "AT", "--ecosystems", "tourism",
                                         "--year-established", "1999", "--at", "2024-01-02", "--db", url])
    assert result.exit_code == 0, result.output


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line, min_size=1, max_size=6))
def test_random_import_files_are_refused_cleanly_on_sqlite(lines: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path_factory.getbasetemp() / 'fuzz.db'}"
    if not Path(url.removeprefix("sqlite:///")).exists():
        seed(url)
    check_refused(url, lines)


@pytest.fixture(scope="module")
def postgres_store() -> Iterator[str]:
    url = fresh_postgres_url()
    seed(url)
    yield url
    drop_schema(url)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line, min_size=1, max_size=6))
def test_random_import_files_are_refused_cleanly_on_postgres(lines: list[bytes], postgres_store: str) -> None:
    check_refused(postgres_store, lines)


def test_the_strategies_reach_each_kind_of_problem() -> None:
    # A guard on the generator itself: hand-picked members of each family give the messages the fuzz test relies on.
    url = f"sqlite:///{Path(tempfile.mkdtemp()) / f'{uuid.uuid4().hex}.db'}"
    seed(url)
    for lines in ([b"[" * 5000], [b"\xff"], [b'{"a": 1, "a": 2}'], [b"\x00"], ["\u2028".encode()], [b""]):
        check_refused(url, lines)
