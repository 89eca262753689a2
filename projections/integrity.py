"""A hash chain over the notification log: a digest at a position proves nothing before it was altered, removed or reordered."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from eventsourcing.persistence import ApplicationRecorder

from projections.runner import notifications

GENESIS = hashlib.sha256(b"cluster-ledger").hexdigest()


def chain(recorder: ApplicationRecorder, until: int | None = None, progress: Callable[[int], None] = lambda n: None) -> tuple[int, str, int]:
    """(last position, digest, events) of the chain over every stored event up to position `until`."""
    digest, position, count = GENESIS, 0, 0
    for page in notifications(recorder, 0):
        for n in page:
            if until is not None and n.id > until:
                return position, digest, count
            link = hashlib.sha256()
            link.update(bytes.fromhex(digest))
            link.update(f"{n.id}|{n.originator_id}|{n.originator_version}|{n.topic}|".encode())
            link.update(bytes(n.state))
            digest, position, count = link.hexdigest(), n.id, count + 1
        progress(len(page))
    return position, digest, count
