"""The search box: a position, a leaf hash, a record reference or an organisation's name, to the pages that hold it."""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from uuid import UUID

from domain.base import ref_id
from domain.errors import InvalidValue
from presentation.text import count
from projections.figures import StoredRows
from transparency import log

if TYPE_CHECKING:
    from web.read import Reader

MATCHES = 50
"""Organisations listed at most for one name; the page says when there are more."""
LEAVES = 10_000
"""Leaves read at a time when a leaf hash is looked for."""


def find(reader: Reader, given: str) -> dict[str, Any]:
    """What `given` names: each match with its kind, label and page; `more` if names matched beyond those listed."""
    q = given.strip()
    if not q:
        raise InvalidValue("q", given, "type a position, a leaf hash (hex or base64), a record reference or an organisation's name")
    matches: list[dict[str, str]] = []
    if re.fullmatch(r"#?[0-9][0-9,]*", q):
        position = int(q.lstrip("#").replace(",", ""))
        size = reader.sources().recorder.max_notification_id() or 0
        if 1 <= position <= size:
            matches.append({"kind": "event", "label": f"the event at position {position:,}", "href": f"/events/{position}"})
    digest = _digest(q)
    if digest is not None:
        position = _leaf_position(reader, digest)
        if position is not None:
            matches.append({"kind": "leaf", "label": f"the event whose leaf hash this is, at position {position:,}", "href": f"/events/{position}"})
    ref = _record(reader, q)
    if ref is not None:
        matches.append({"kind": "record", "label": ref, "href": f"/records/{quote(ref, safe='')}"})
    named, more = _organisations(reader, q)
    matches += [m for m in named if m["href"] not in {found["href"] for found in matches}]
    return {"q": q, "matches": matches, "more": more, "summary": count(len(matches), "match", "matches") + (" (and more organisations)" if more else "")}


def _digest(q: str) -> bytes | None:
    """A SHA-256 hash given as 64 hex digits or as base64 (as the event page shows it); None if `q` is neither."""
    if re.fullmatch(r"[0-9a-fA-F]{64}", q):
        return bytes.fromhex(q)
    if re.fullmatch(r"[A-Za-z0-9+/]{43}=", q):
        try:
            return base64.b64decode(q, validate=True)
        except binascii.Error:
            return None
    return None


def _leaf_position(reader: Reader, digest: bytes) -> int | None:
    """The position of the event whose leaf hash is `digest`, read from the tree (caught up first, as the event page does)."""
    tree = reader.tree()
    log.checkpoint(tree)
    index = -1
    while leaves := tree.leaves_after(index, LEAVES):
        for leaf in leaves:
            if leaf.hash == digest:
                return leaf.position
        index = leaves[-1].index
    return None


def _record(reader: Reader, q: str) -> str | None:
    """The reference of the record `q` names (its reference or its id), if the ledger holds it."""
    try:
        originator_id = UUID(q)
    except ValueError:
        originator_id = ref_id(q)
    if not list(reader.ledger().events.get(originator_id, lte=1)):
        return None
    return reader.ref(originator_id)


def _organisations(reader: Reader, q: str) -> tuple[list[dict[str, str]], bool]:
    """Organisations whose name (any it was registered or updated with) holds `q`, ignoring case; the first MATCHES."""
    rows, _ = reader.rows(None)
    wanted = q.casefold()
    found: list[dict[str, str]] = []
    # A store leaves out the organisations whose row cannot hold the text; the rest are judged here, by every name.
    found_rows = rows(["org"], holding=wanted) if isinstance(rows, StoredRows) else rows(["org"])
    for row in found_rows:
        names = [v.get("name") for v in row.get("versions") or () if isinstance(v, dict) and v.get("name")]
        if any(wanted in str(name).casefold() for name in names):
            if len(found) == MATCHES:
                return found, True
            found.append({"kind": "organisation", "label": f"{names[-1]} ({row['ref']})", "href": f"/records/{quote(row['ref'], safe='')}"})
    return found, False
