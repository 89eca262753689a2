"""The canonical leaf bytes of a stored event: what the tree commits to, recomputable from an exported event."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from datetime import datetime, timezone

FORMAT = 1


@dataclass(frozen=True)
class StoredRecord:
    """One row of the events table as stored; `state` is None when the stored payload is not a byte string (TEXT, NULL...)."""

    position: int
    aggregate_id: str
    version: int
    topic: str
    state: bytes | None
    note: str = ""
    """Why `state` is None, or what else is odd about the row (e.g. "stored as TEXT")."""
    id_as_written: bool = True
    """Whether the aggregate id is stored as the store writes it (and the application looks it up)."""


def recorded_time(payload: bytes) -> str:
    """The `timestamp` string at the top of the payload's JSON object; empty if there is none."""
    try:
        fields = json.loads(payload)
    except (ValueError, RecursionError):
        return ""
    value = fields.get("timestamp") if isinstance(fields, dict) else None
    return value if isinstance(value, str) else ""


def moment(recorded: str) -> datetime | None:
    """A recorded time as a moment to compare (UTC if it names no zone); None if it is not one."""
    try:
        value = datetime.fromisoformat(recorded)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


MAX_LEAF = 0xFFFF
"""The longest leaf an entry bundle of the published log can hold: each entry has a 2-byte length (C2SP tlog-tiles)."""
_FIXED = 1 + 8 + 2 + 36 + 8 + 2 + 2 + 4
"""Leaf bytes besides the topic, recorded time and payload, for an aggregate id in its 36-character form."""


def leaf_size(topic: str, payload: bytes) -> int:
    """How long the leaf of a new event will be (its position and version have fixed widths)."""
    return _FIXED + len(topic.encode("utf-8", "surrogatepass")) + len(recorded_time(payload).encode("utf-8", "surrogatepass")) + len(payload)


def leaf_size_bound(topic: str, payload: bytes) -> int:
    """At least `leaf_size`, without reading the payload: its recorded time is a string of it, never longer decoded than stored."""
    return _FIXED + len(topic.encode("utf-8", "surrogatepass")) + 2 * len(payload)


def leaf_bytes(position: int, aggregate_id: str, version: int, topic: str, payload: bytes, recorded: str | None = None) -> bytes:
    """u8 format=1, u64 position, u16-length aggregate id, u64 version, u16-length topic, u16-length recorded time, u32-length payload.

    Integers are unsigned big-endian; texts are UTF-8; the payload is the stored bytes, untouched. `recorded`, if given,
    is `recorded_time(payload)` already read.
    """
    parts = [struct.pack(">BQ", FORMAT, position)]
    parts += _text(aggregate_id.encode(), ">H")
    parts.append(struct.pack(">Q", version))
    parts += _text(topic.encode("utf-8", "surrogatepass"), ">H")
    parts += _text((recorded_time(payload) if recorded is None else recorded).encode("utf-8", "surrogatepass"), ">H")
    parts += _text(payload, ">I")
    return b"".join(parts)


def record_leaf(record: StoredRecord, recorded: str | None = None) -> bytes:
    """The leaf bytes of a stored row; a payload that is not a byte string counts as its text's UTF-8 bytes behind a 0xFF marker, which no JSON payload begins with."""
    payload = record.state if record.state is not None else b"\xff" + record.note.encode("utf-8", "surrogatepass")
    return leaf_bytes(record.position % (1 << 64), record.aggregate_id, record.version % (1 << 64), record.topic, payload, recorded)


@dataclass(frozen=True)
class Leaf:
    """The fields of leaf bytes, read back."""

    position: int
    aggregate_id: str
    version: int
    topic: str
    recorded_at: str
    payload: bytes


def parse_leaf(data: bytes) -> Leaf:
    """Read leaf bytes back into their fields; raises ValueError if they are not in the format above."""
    at = 0

    def take(n: int) -> bytes:
        nonlocal at
        if at + n > len(data):
            raise ValueError("leaf bytes end early")
        chunk, at = data[at : at + n], at + n
        return chunk

    fmt, position = struct.unpack(">BQ", take(9))
    if fmt != FORMAT:
        raise ValueError(f"leaf format {fmt} is not {FORMAT}")
    aggregate = take(struct.unpack(">H", take(2))[0]).decode()
    (version,) = struct.unpack(">Q", take(8))
    topic = take(struct.unpack(">H", take(2))[0]).decode()
    recorded = take(struct.unpack(">H", take(2))[0]).decode()
    payload = take(struct.unpack(">I", take(4))[0])
    if at != len(data):
        raise ValueError("leaf bytes go on after the payload")
    return Leaf(position, aggregate, version, topic, recorded, payload)


def _text(data: bytes, length: str) -> list[bytes]:
    limit = (1 << (8 * struct.calcsize(length))) - 1
    data = data[:limit]
    return [struct.pack(length, len(data)), data]
