"""Publishing witnessed checkpoints: once, or on a schedule as a long-lived process that stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import bootstrap
from domain.errors import LedgerError
from transparency import log, witness
from transparency.note import Checkpoint, Signer, sign_note
from transparency.policy import Policy
from transparency.store import TreeStore

RETRIES = 3  # a scheduled publication tries an unreachable witness again after 1, 2 and 4 seconds


@dataclass(frozen=True)
class Rules:
    """How checkpoints are published: the log's key and origin, the witnesses asked, and what makes enough cosignatures."""

    signer: Signer
    origin: str
    witnesses: tuple[witness.Witness, ...]
    policy: Policy | None
    quorum: int | None
    timeout: float


@dataclass(frozen=True)
class Published:
    note: str
    checkpoint: Checkpoint
    cosigned_by: tuple[str, ...]


def witnesses(policy: Policy | None, urls: Sequence[str]) -> list[witness.Witness]:
    """The witnesses to ask: the policy's that have a URL, with their keys, then the --witness URLs not among them."""
    chosen = [witness.Witness(w.url, w.key, w.name) for w in (policy.witnesses if policy else ()) if w.url]
    for url in urls:
        if url.rstrip("/") not in {w.url.rstrip("/") for w in chosen}:
            chosen.append(witness.Witness(url))
    return chosen


def publish(store: TreeStore, rules: Rules, sizes: dict[str, int], *, echo: Callable[[str], None], retries: int = 0,
            wait: Callable[[float], bool] = lambda seconds: False) -> Published:
    """Sign the caught-up tree's checkpoint and gather cosignatures; raises PolicyFailed when too few to publish."""
    cp = log.checkpoint(store, rules.origin)
    note = sign_note(cp.body(), rules.signer)

    def prove(old: int) -> tuple[str, ...]:
        return log.prove_consistency(store, Checkpoint(cp.origin, old, b""), cp).path

    collected = witness.collect(rules.witnesses, note, cp, prove, witness.http_post, sizes,
                                timeout=rules.timeout, retries=retries, wait=wait)
    for refusal in collected.refusals:
        echo(refusal)
    published = witness.cosigned(note, collected, quorum=rules.quorum, policy=rules.policy, log=rules.signer.verifier)
    # Recorded before it is shown: whatever serves the log (`serve`, `tiles export`) serves it without the signer key.
    store.publish(cp.size, published, datetime.now(UTC).isoformat(timespec="seconds"))
    return Published(published, cp, tuple(collected.cosigned_by))


def cosigned_line(rules: Rules, published: Published) -> str:
    """`cosigned by 2 of 2 witnesses: w1, w2`."""
    return (f"cosigned by {len(published.cosigned_by)} of {len(rules.witnesses)} witnesses"
            + (f": {', '.join(published.cosigned_by)}" if published.cosigned_by else ""))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _replace(out: Path, text: str) -> None:
    """Write the published file whole or not at all: readers never see half a checkpoint."""
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, out)


def run_schedule(db: str, rules: Rules, out: Path, every: float, *, echo: Callable[[str], None]) -> None:
    """Publish to `out` whenever the log has grown, checking every `every` seconds, until SIGTERM or SIGINT."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    sizes: dict[str, int] = {}
    published_size: int | None = None
    echo(f"{_now()} publishing checkpoints of {rules.origin} to {out} every {every:g} s; {len(rules.witnesses)} witness(es)")
    try:
        while not stop.is_set():
            store = bootstrap.build_tree_store(db)
            try:
                log.catch_up(store)
                if store.size() != published_size:
                    published = publish(store, rules, sizes, echo=lambda line: echo(f"{_now()} {line}"), retries=RETRIES, wait=stop.wait)
                    _replace(out, published.note)
                    published_size = published.checkpoint.size
                    echo(f"{_now()} published tree size {published_size} to {out}, {cosigned_line(rules, published)}")
            except LedgerError as error:
                # Too few cosignatures, a refusal, a tree to repair: said once, tried again at the next check.
                echo(f"{_now()} not published: {error}")
            finally:
                store.close()
            stop.wait(every)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    echo(f"{_now()} stopped")
