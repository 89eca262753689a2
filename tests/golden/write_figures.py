"""Writes figures.json for a NEW golden folder: what the current code reports for each ledger in it (never run on an existing folder).

Usage: .venv/bin/python tests/golden/write_figures.py tests/golden/vN
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CREATING = ("Registered", "Scheduled", "Requested", "Delivered", "Identified", "Published")


def ledger(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def figures_of(db: Path, work: Path) -> dict[str, object]:
    copy = work / db.name
    shutil.copyfile(db, copy)  # reports write projection rows: the golden file itself is never opened for writing
    url = f"sqlite:///{copy}"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        types = dict(conn.execute("SELECT topic, COUNT(*) FROM stored_events GROUP BY topic ORDER BY topic").fetchall())
        created = conn.execute("SELECT topic, state FROM stored_events ORDER BY rowid").fetchall()
    records: dict[str, dict[str, object]] = {}
    countries: set[str] = set()
    for topic, state in created:
        aggregate, _, event = topic.split(":")[1].partition(".")
        fields = json.loads(state)
        if aggregate == "ClusterOrganisation" and event == "Registered":
            countries.add(fields["country"])
        if event in CREATING and "ref" in fields and aggregate not in records:
            history = json.loads(ledger("history", fields["ref"], "--format", "json", "--db", url))
            records[aggregate] = {"ref": fields["ref"], "events": len(history)}
    sheets = {}
    for country in sorted(countries):
        sheet = json.loads(ledger("report", "country", country, "--format", "json", "--db", url))
        sheets[country] = {key: sheet[key] for key in ("figures", "cross_border_partners", "regions")}
    impact = json.loads(ledger("report", "impact", "--format", "json", "--db", url))
    return {"events": sum(types.values()), "event_types": types, "records": records,
            "impact_2024_2025": impact["figures"], "country_sheets_2024_2025": sheets}


def main(folder: Path) -> None:
    target = folder / "figures.json"
    if target.exists():
        sys.exit(f"{target} exists: golden figures are written once and never regenerated")
    with tempfile.TemporaryDirectory() as work:
        found = {db.stem: figures_of(db, Path(work)) for db in sorted(folder.glob("*.db"))}
    target.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    print(f"wrote {target}: {', '.join(found)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
