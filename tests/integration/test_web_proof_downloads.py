"""The event page offers the event's proof in the latest published checkpoint as JSON and as a tlog-proof; both verify with
`ledger verify-proof`, and an event the published checkpoint does not cover gets a 404 saying so."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_replay_survives import asgi_get
from tests.integration.test_tiles_mirror import grow, keys, publish, run  # noqa: F401 - fixture
from web.app import create_app


def test_the_event_page_offers_both_proof_files_and_each_verifies(keys: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    grow(url, 2)
    [(status, _, page)] = asgi_get(create_app(url), "/events/3")
    assert status == 200 and b"No published checkpoint covers this event yet" in page
    publish(url, keys[0])
    grow(url, 1)  # events after the published checkpoint: their page still offers no download
    last = run("audit", "log", "--format", "json", "--db", url)[1].count('"position"')
    answers = asgi_get(create_app(url), "/events/3", "/events/3/proof.json", "/events/3/proof.tlog-proof", f"/events/{last}/proof.tlog-proof",
                       "/tlog/checkpoint")
    (status, _, page), (json_status, json_headers, as_json), (tlog_status, tlog_headers, as_tlog), (late, _, why), (_, _, served) = answers
    assert status == 200 and b'href="/events/3/proof.tlog-proof?published=1" download' in page and b'href="/events/3/proof.json?published=1" download' in page
    assert (json_status, json_headers["content-disposition"]) == (200, 'attachment; filename="proof-3.json"')
    assert (tlog_status, tlog_headers["content-disposition"]) == (200, 'attachment; filename="proof-3.tlog-proof"')
    (tmp_path / "p.json").write_bytes(as_json)
    (tmp_path / "p.tlog-proof").write_bytes(as_tlog)
    checkpoint = as_tlog.decode().split("\n\n", 1)[1]
    (tmp_path / "cp.txt").write_text(checkpoint)
    assert checkpoint == served.decode()  # the published checkpoint, verbatim
    for proof in ("p.json", "p.tlog-proof"):
        code, output = run("verify-proof", str(tmp_path / proof), "--checkpoint", str(tmp_path / "cp.txt"), "--verifier-key", str(keys[1]))
        assert code == 0 and output.startswith("verified: the event at position 3 is leaf 2 of the tree of "), (proof, output)
    assert late == 404 and b"was added after the checkpoint" in why and b"the latest published checkpoint" in why
