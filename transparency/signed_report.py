"""Signed reports: a JSON report carrying the signed checkpoint of the tree it was made from, itself signed as a note.

The signed bytes are the report's canonical JSON (every field but `signature`, keys sorted, no spaces, ASCII) followed by
a newline: the text of a signed note whose signature line is the report's `signature` field. A report in an HTML page
carries the same JSON in a `<script type="application/json" id="signed-report">` element.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from transparency.errors import BadNote, BadReport
from transparency.note import SIGNATURE_PREFIX, Signer, Verifier, open_note, sign_note

CHECKPOINT = "checkpoint"
SIGNATURE = "signature"
NOT_DERIVED = (CHECKPOINT, SIGNATURE)
"""The fields a report's re-derivation does not give: what it carries as evidence of itself."""
MISSING: Any = object()
"""Stands for a field one side has and the other lacks."""
EMBEDDED = re.compile(r'<script type="application/json" id="signed-report">(.*?)</script>', re.DOTALL)


def canonical(report: dict[str, Any]) -> str:
    """The text a report's signature covers: its canonical JSON, without the signature, and a newline."""
    fields = {k: v for k, v in report.items() if k != SIGNATURE}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False) + "\n"


def sign_report(report: dict[str, Any], checkpoint_note: str, signer: Signer) -> dict[str, Any]:
    """The report with the signed checkpoint of its tree and its own signature line (`— NAME base64(key hash ‖ signature)`)."""
    carried = {**{k: v for k, v in report.items() if k not in NOT_DERIVED}, CHECKPOINT: checkpoint_note}
    note = sign_note(canonical(carried), signer)
    return {**carried, SIGNATURE: note.rsplit("\n\n", 1)[1].removesuffix("\n")}


def embed(signed: dict[str, Any]) -> str:
    """The signed report as an HTML element (a `</` inside it escaped, so the page's parser never ends it early)."""
    text = json.dumps(signed, indent=2).replace("</", "<\\/")
    return f'<script type="application/json" id="signed-report">{text}</script>'


def parse_signed_report(text: str) -> dict[str, Any]:
    """A signed report from its JSON, or from the HTML page that carries it; raises BadReport if it is neither."""
    found = EMBEDDED.search(text) if text.lstrip().startswith("<") else None
    if text.lstrip().startswith("<") and found is None:
        raise BadReport("an HTML page without a signed report in it (write it with --sign KEY)")
    try:
        report = json.loads(found.group(1) if found else text)
    except (ValueError, RecursionError) as error:
        raise BadReport(f"not JSON: {error}") from None
    if not isinstance(report, dict):
        raise BadReport("not a JSON object")
    for field, kind in ((CHECKPOINT, str), (SIGNATURE, str), ("as_of_position", int), ("figures", dict), ("period", dict)):
        if not isinstance(report.get(field), kind) or isinstance(report.get(field), bool):
            raise BadReport(f"{field}: missing or not a {kind.__name__} (write the report with --sign KEY)")
    return report


def check_signature(report: dict[str, Any], verifier: Verifier) -> None:
    """Raise BadReport unless the report's signature is `verifier`'s over its canonical text."""
    signature = str(report[SIGNATURE])
    if not signature.startswith(SIGNATURE_PREFIX) or "\n" in signature:
        raise BadReport("signature: not one signature line ('\u2014 name base64')")
    try:
        open_note(f"{canonical(report)}\n{signature}\n", verifier)
    except BadNote as error:
        raise BadReport(str(error).replace("the checkpoint", "the report")) from None


@dataclass(frozen=True)
class Difference:
    """A figure (or other derived field) whose value in the report is not what the ledger gives."""

    field: str
    reported: Any
    derived: Any

    def line(self) -> str:
        return f"{self.field}: the report says {_shown(self.reported)}, the ledger gives {_shown(self.derived)}"


def differences(reported: dict[str, Any], derived: dict[str, Any]) -> list[Difference]:
    """Every field, by its dotted name, that differs between a report and its re-derivation (evidence fields left out)."""
    left = _flat({k: v for k, v in reported.items() if k not in NOT_DERIVED})
    right = _flat({k: v for k, v in derived.items() if k not in NOT_DERIVED})
    found = []
    for name in sorted(set(left) | set(right), key=_order(left, right)):
        a, b = left.get(name, MISSING), right.get(name, MISSING)
        if type(a) is not type(b) or a != b:
            found.append(Difference(name, a, b))
    return found


def _order(left: dict[str, Any], right: dict[str, Any]) -> Any:
    # The figures first, in the report's own order, then everything else by name.
    keys = list(left) + [k for k in right if k not in left]
    return lambda name: (not name.startswith("figures."), keys.index(name))


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and (value or not prefix):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flat(inner, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def _shown(value: Any) -> str:
    return "no such field" if value is MISSING else json.dumps(value)
