"""Concurrent writers on PostgreSQL: one wins a conflict cleanly; a tailing reader neither skips nor repeats."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bootstrap
from domain.base import ref_id
from domain.errors import ConcurrentChange
from service_layer import commands as c
from service_layer.ledger import Ledger
from tests.builders import org
from transparency.note import parse_signer
from tests.conftest import drop_schema, fresh_postgres_url

SPAWN = multiprocessing.get_context("spawn")


class _RacingLedger(Ledger):
    """Waits for the other writer after deciding and before saving, so both decide on the same version."""

    name = "Ledger"
    barrier: Any = None

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        self.barrier.wait(timeout=120)
        return super().save(*objs, **kwargs)


def _update_concurrently(url: str, ref: str, name: str, barrier: Any, results: Any) -> None:
    app = _RacingLedger(env=bootstrap.persistence_env(url), signing_key=os.environ["LEDGER_SIGNING_KEY"])
    app.barrier = barrier
    try:
        outcome = app.execute([c.UpdateOrg(org=ref, name=name, occurred_at="2024-02-01")])
        results.put(("won", name, outcome.events))
    except ConcurrentChange as error:
        results.put(("conflict", name, str(error)))
    except Exception as error:  # reported to the test, which fails naming it
        results.put(("error", name, repr(error)))
    finally:
        app.close()


def test_two_writers_on_one_aggregate_one_wins_the_other_gets_a_clear_conflict() -> None:
    url = fresh_postgres_url()
    ref = "ORG-RACE"
    try:
        app = bootstrap.build_ledger(url)
        app.execute([org(ref)])
        app.close()
        barrier, results = SPAWN.Barrier(2), SPAWN.Queue()
        writers = [SPAWN.Process(target=_update_concurrently, args=(url, ref, name, barrier, results)) for name in ("First", "Second")]
        for w in writers:
            w.start()
        for w in writers:
            w.join(timeout=90)
        outcomes = sorted(results.get(timeout=60) for _ in writers)
        assert [o[0] for o in outcomes] == ["conflict", "won"]
        assert "run the command again" in outcomes[0][2]
        winner = outcomes[1][1]

        app = bootstrap.build_ledger(url)
        events = app.aggregate_events(ref)
        profile = app.repository.get(ref_id(ref))
        app.close()
        assert [type(e).__name__ for e in events] == ["Registered", "Updated"]
        assert profile.name == winner and profile.version == 2
    finally:
        drop_schema(url)


def _append(url: str, writer: int, batches: int, per_batch: int, barrier: Any, errors: Any) -> None:
    app = None
    try:
        app = bootstrap.build_ledger(url)
        app.execute([org(f"ORG-W{writer}-warm-up")])  # loads reference tables before the race
        barrier.wait(timeout=120)
        for batch in range(batches):
            app.execute([org(f"ORG-W{writer}-{batch}-{i}") for i in range(per_batch)])
    except Exception as error:  # reported to the test, which fails naming it
        errors.put(f"writer {writer}: {error!r}")
    finally:
        if app is not None:
            app.close()


def _tail(url: str, expected: int, results: Any) -> None:
    app = bootstrap.build_ledger(url)
    seen: list[tuple[int, str, int]] = []
    deadline = time.monotonic() + 120
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            after = seen[-1][0] if seen else 0
            page = app.recorder.select_notifications(start=after + 1, limit=37)
            seen += [(n.id, str(n.originator_id), n.originator_version) for n in page]
            if not page:
                time.sleep(0.005)
    finally:
        app.close()
    results.put(seen)


def test_a_tailing_reader_never_skips_or_repeats_while_four_writers_append() -> None:
    url = fresh_postgres_url()
    writers_count, batches, per_batch = 4, 60, 3
    expected = 1 + writers_count * (batches * per_batch + 1)
    try:
        app = bootstrap.build_ledger(url)  # the tables, and the writers' key authorized, before the race
        app.record_root_writer(parse_signer(Path(os.environ["LEDGER_SIGNING_KEY"]).read_text()).verifier.encode())
        app.close()
        results = SPAWN.Queue()
        reader = SPAWN.Process(target=_tail, args=(url, expected, results))
        reader.start()
        barrier, errors = SPAWN.Barrier(writers_count), SPAWN.Queue()
        writers = [SPAWN.Process(target=_append, args=(url, w, batches, per_batch, barrier, errors)) for w in range(writers_count)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(timeout=120)
        problems = []
        while not errors.empty():
            problems.append(errors.get(timeout=5))
        assert problems == []
        seen = results.get(timeout=150)
        reader.join(timeout=10)

        app = bootstrap.build_ledger(url)
        stored = [(n.id, str(n.originator_id), n.originator_version) for n in app.recorder.select_notifications(start=1, limit=10 * expected)]
        refs = {str(e.originator_id): e.ref.split("-")[1] for e in (app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=10 * expected))}
        app.close()
        assert len(stored) == expected
        assert seen == stored  # same notifications, same order: nothing skipped, nothing repeated
        assert len({s[1] for s in seen}) == expected
        # The writers' batches interleave in the log: they really ran at the same time.
        writers_by_position = [refs[s[1]] for s in seen]
        switches = sum(1 for a, b in zip(writers_by_position, writers_by_position[1:]) if a != b)
        assert switches > writers_count
    finally:
        drop_schema(url)


def test_four_importers_on_shared_records_store_every_event_once_and_never_show_a_raw_error(tmp_path: Path) -> None:
    url = fresh_postgres_url()
    shared = [f"ORG-SHARED-{i:02d}" for i in range(40)]
    files = []
    for w in range(4):
        lines = [_register_line(ref) for ref in shared]
        lines += [_register_line(f"ORG-OWN-{w}-{i:02d}") for i in range(20)]
        lines.append(json.dumps({"action": "org.update", "org": shared[0], "name": f"Renamed by importer {w}", "occurred_at": "2024-03-01",
                                 "key": f"rename-{w}"}))
        path = tmp_path / f"import-{w}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(path)
    try:
        bootstrap.build_ledger(url).close()  # the tables exist before the race
        ledger = str(Path(sys.executable).parent / "ledger")
        go = tmp_path / "go"
        runs = [subprocess.Popen([sys.executable, "-c", _AT_ONCE, str(go), str(tmp_path / f"ready-{w}"), "import", str(f), "--db", url],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w, f in enumerate(files)]
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready-{w}").exists() for w in range(4)) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()  # the four start importing at the same moment, their code already loaded
        outputs = [p.communicate(timeout=300) for p in runs]
        results = [(p.returncode, out, err) for p, (out, err) in zip(runs, outputs)]
        for code, out, err in results:
            assert "duplicate key" not in out + err and "Traceback" not in out + err, err
            if code != 0:  # lost every retry: told plainly, and nothing of it was written
                assert err.strip().splitlines()[-1] == "Error: another writer changed the same record first; nothing was written, run the command again"
        refused = [f for f, (code, _, _) in zip(files, results) if code != 0]
        for path in refused:
            assert subprocess.run([ledger, "import", str(path), "--db", url], capture_output=True, timeout=300).returncode == 0

        app = bootstrap.build_ledger(url)
        stored = list(app.recorder.select_notifications(start=1, limit=10_000))
        app.close()
        pairs = [(str(n.originator_id), n.originator_version) for n in stored]
        assert len(pairs) == len(set(pairs))
        # The writer's authorization once (by whichever importer wrote first), every registration once, every rename once.
        assert len(stored) == 1 + len(shared) + 4 * 20 + 4
    finally:
        drop_schema(url)


_AT_ONCE = """
import pathlib, sys, time
from cli.main import ledger
go, ready = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.001)
ledger(sys.argv[3:], prog_name="ledger")
"""
"""Runs `ledger ARGS...` once the file GO exists, so several processes start their work at the same moment."""


def _register_line(ref: str) -> str:
    return json.dumps({"action": "org.register", "org": ref, "name": f"Cluster {ref}", "country": "IT", "region": "ITC4",
                       "ecosystems": ["digital"], "year_established": 2012, "occurred_at": "2024-01-10"})
