"""Signed reports: verified where they were made and on a mirror, the figure named on a tampered mirror, a hand-edited file or
another key refused; `--sign` refused in formats that cannot carry a signature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.tampering import tamper
from tests.integration.test_tiles_mirror import grow, keys, publish, run, target  # noqa: F401 - fixtures
from transparency.note import Signer, parse_verifier

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "platform-actions.jsonl"
SMES_RAISED = {
    # One organisation's SMEs raised by 5, as only the database's owner can: the guards lifted, the event edited in place.
    "sqlite": "UPDATE {events} SET state = CAST(replace(CAST(state AS TEXT), '\"smes\":31,', '\"smes\":36,') AS BLOB)",
    "postgres": "UPDATE {events} SET state = convert_to(replace(convert_from(state, 'UTF8'), '\"smes\":31,', '\"smes\":36,'), 'UTF8')",
}


def signed_report(url: str, key: Path, out: Path, *args: str) -> dict[str, object]:
    code, output = run("report", *(args or ("impact",)), "--format", "json", "--sign", str(key), "--out", str(out), "--db", url)
    assert code == 0, output
    return json.loads(out.read_text())


def label(pub: Path) -> str:
    """How errors name a verifier key: name+hash."""
    verifier = parse_verifier(pub.read_text())
    return f"{verifier.name}+{verifier.hash:08x}"


def verify(report: Path, pub: Path, url: str) -> tuple[int, str]:
    return run("report", "verify", str(report), "--verifier-key", str(pub), "--db", url)


def test_a_signed_report_verifies_at_its_source_and_on_a_mirror_after_the_source_grew(
    db_url: str, target: str, keys: tuple[Path, Path], tmp_path: Path  # noqa: F811
) -> None:
    assert run("import", str(EXAMPLES), "--db", db_url)[0] == 0
    report = signed_report(db_url, keys[0], tmp_path / "impact.json")
    country = tmp_path / "lv.html"
    code, output = run("report", "country", "LV", "--format", "html", "--sign", str(keys[0]), "--out", str(country), "--db", db_url)
    assert code == 0, output
    assert report["checkpoint"].startswith(f"ledger.example/tlog\n")  # type: ignore[union-attr]
    code, output = verify(tmp_path / "impact.json", keys[1], db_url)
    assert code == 0 and output.startswith("verified: report signed by ledger.example/tlog;"), output
    assert f"up to position {report['as_of_position']}; all 20 figures" in output
    grow(db_url, 2)  # later events change nothing at the report's position
    publish(db_url, keys[0], tmp_path / "tiles")
    assert run("mirror", str(tmp_path / "tiles"), "--verifier-key", str(keys[1]), "--db", target)[0] == 0
    for file in ("impact.json", "lv.html"):
        code, output = verify(tmp_path / file, keys[1], target)
        assert code == 0 and output.startswith("verified: "), (file, output)
    page = country.read_text()
    assert '<pre id="checkpoint">ledger.example/tlog\n' in page and "ledger report verify lv.html --verifier-key ledger.example_tlog.pub" in page


def test_a_tampered_mirror_names_the_figure_with_both_values(db_url: str, target: str, keys: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    assert run("import", str(EXAMPLES), "--db", db_url)[0] == 0
    report = signed_report(db_url, keys[0], tmp_path / "impact.json")
    publish(db_url, keys[0], tmp_path / "tiles")
    assert run("mirror", str(tmp_path / "tiles"), "--verifier-key", str(keys[1]), "--db", target)[0] == 0
    tamper(target, SMES_RAISED["sqlite" if target.startswith("sqlite") else "postgres"])
    code, output = verify(tmp_path / "impact.json", keys[1], target)
    members = report["figures"]["member_organisations_represented"]  # type: ignore[index]
    assert code == 1, output
    assert f"figures.member_organisations_represented: the report says {members}, the ledger gives {members + 5}\n" in output
    # The event no longer hashes to the tree the mirror holds, nor the events to the report's signed checkpoint.
    assert ": payload altered: " in output and "\ncheckpoint: checkpoint root differs: the first " in output
    assert output.endswith("Error: the report does not hold: 3 findings, 1 of them in what it reports\n"), output


def test_a_hand_edited_report_fails_on_its_signature_and_names_the_figure(keys: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLES), "--db", url)[0] == 0
    report = signed_report(url, keys[0], tmp_path / "impact.json")
    report["figures"]["bilateral_meetings"] += 1  # type: ignore[index]
    (tmp_path / "edited.json").write_text(json.dumps(report, indent=2))
    code, output = verify(tmp_path / "edited.json", keys[1], url)
    meetings = report["figures"]["bilateral_meetings"]  # type: ignore[index]
    lines = output.splitlines()
    assert code == 1 and len(lines) == 3, output
    assert lines[0] == f"report: signature invalid: the signature by {label(keys[1])} does not match the report"
    assert lines[1] == f"figures.bilateral_meetings: the report says {meetings}, the ledger gives {meetings - 1}"
    # Spaces and key order are not what is signed: the canonical JSON is.
    (tmp_path / "spaced.json").write_text(json.dumps(dict(reversed(list(signed_report(url, keys[0], tmp_path / "again.json").items())))))
    assert verify(tmp_path / "spaced.json", keys[1], url)[0] == 0


def test_a_report_signed_by_another_key_and_wrong_inputs_are_refused(keys: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLES), "--db", url)[0] == 0
    other = Signer.generate("ledger.example/tlog")
    (tmp_path / "other.key").write_text(other.encode() + "\n")
    signed_report(url, tmp_path / "other.key", tmp_path / "other.json")
    code, output = verify(tmp_path / "other.json", keys[1], url)
    mine = label(keys[1])
    assert code == 1 and output.splitlines()[:2] == [
        f"report: signature invalid: the report carries no signature by key {mine}",
        f"checkpoint: signature invalid: the checkpoint carries no signature by key {mine}",
    ], output
    assert "figures." not in output
    code, output = run("report", "impact", "--format", "csv", "--sign", str(keys[0]), "--db", url)
    assert code == 2 and output.endswith("Error: --sign writes a report as json or html: give --format json or --format html\n")
    (tmp_path / "plain.json").write_text(run("report", "impact", "--format", "json", "--db", url)[1])
    code, output = verify(tmp_path / "plain.json", keys[1], url)
    assert (code, output.count("\n")) == (1, 1) and "checkpoint: missing or not a str (write the report with --sign KEY)" in output
    report = json.loads((tmp_path / "other.json").read_text())
    last, report["as_of_position"] = report["as_of_position"], 10_000
    (tmp_path / "ahead.json").write_text(json.dumps(report))
    code, output = verify(tmp_path / "ahead.json", keys[1], url)
    assert code == 1 and output.endswith(f"Error: as_of_position: 10000: this ledger's log ends at position {last}; "
                                         "bring it up to date (`ledger mirror`) and run this again\n"), output


@pytest.mark.parametrize("edit", ["<html><body>nothing signed</body></html>", "[1, 2]", "{not json"])
def test_a_file_that_is_not_a_signed_report_gets_one_line(keys: tuple[Path, Path], tmp_path: Path, edit: str) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    grow(url, 1)
    (tmp_path / "r.json").write_text(edit)
    code, output = verify(tmp_path / "r.json", keys[1], url)
    assert code == 1 and output.count("\n") == 1 and output.startswith(f"Error: report: '{tmp_path / 'r.json'}': "), output
