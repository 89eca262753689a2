"""Import lines are bounded while read: a line over MAX_LINE bytes is refused having read at most that many bytes and one."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import bootstrap
from service_layer import importing
from tests.builders import new_ref, org
from tests.conftest import snapshot

ROOT = Path(__file__).resolve().parents[2]


class CountingReads(io.BytesIO):
    """A file that remembers the longest single read asked of it."""

    longest = 0

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.longest = max(self.longest, len(line))
        return line


def test_a_line_over_the_limit_is_refused_at_the_limit_and_the_lines_after_it_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "MAX_LINE", 10)
    monkeypatch.setattr(importing, "SKIP_BLOCK", 4)
    stream = CountingReads(b"0123456789\n" + b"x" * 95 + b"\n012345678\r\n" + b"0123456789A")
    problems = importing.Problems()
    lines = list(importing.read_lines(stream, problems))
    assert lines == [(1, "0123456789"), (3, "012345678")]  # 10 bytes are accepted; the CR is dropped before its LF
    assert problems.report() == [
        "line 2: longer than 10 bytes, the most a line may have; not read further",
        "line 4: longer than 10 bytes, the most a line may have; not read further",
    ]
    assert stream.longest == 11


RUN = """
import json, re, sys, time
from pathlib import Path
from click.testing import CliRunner
from cli.main import ledger
started = time.process_time()
result = CliRunner().invoke(ledger, ["import", sys.argv[1], "--db", sys.argv[2]])
seconds = time.process_time() - started
print(json.dumps({"exit_code": result.exit_code, "stderr": result.stderr, "seconds": seconds,
                  # this process's peak resident memory (ru_maxrss would carry the parent's over from before exec)
                  "peak_mib": int(re.search(r"VmHWM:\\s*(\\d+) kB", Path("/proc/self/status").read_text())[1]) / 1024}))
"""


def test_an_import_line_of_20_mb_is_refused_in_one_line_quickly_in_little_memory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = bootstrap.build_ledger(url)
    try:
        app.execute([org(new_ref("ORG"))])
    finally:
        app.close()
    before = snapshot(url)
    good = json.dumps({"action": "org.archive", "org": "ORG-NONE", "occurred_at": "2024-03-01"})
    huge = '{"action": "org.register", "name": "' + "x" * (20 << 20) + '"}'
    path = tmp_path / "huge.jsonl"
    path.write_text(f"{good}\n{huge}\n{good}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", RUN, str(path), url], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(done.stdout)
    assert result["exit_code"] == 1
    lines = result["stderr"].splitlines()
    assert lines[1] == f"error: line 2: longer than {importing.MAX_LINE:,} bytes, the most a line may have; not read further"
    assert lines[0].startswith("error: line 1: ") and lines[2].startswith("error: line 3: ")  # the lines around it are checked
    assert lines[-1] == f"Error: {path}: 3 bad lines; nothing was written"
    assert result["seconds"] < 2 and result["peak_mib"] < 100, result
    assert snapshot(url) == before
