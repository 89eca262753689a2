"""Which checkpoint the event page proves an event in: the latest published, one chosen by number or one pasted (CRLF line
ends and all), and the unsigned whole tree for an event no published checkpoint covers; each proof is `ledger prove`'s."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import InvalidValue
from tests.integration.test_tiles_mirror import grow, keys, publish  # noqa: F401 - fixture
from transparency.errors import ProofFailed
from transparency.note import parse_checkpoint, parse_verifier, read_checkpoint
from transparency.proofs import InclusionProof, check_inclusion
from web.read import NotFound, Reader, event_page


def test_an_event_is_proven_in_the_checkpoint_asked_for(db_url: str, keys: tuple[Path, Path]) -> None:  # noqa: F811
    verifier = parse_verifier(keys[1].read_text())
    grow(db_url, 1)
    publish(db_url, keys[0])
    grow(db_url, 1)
    publish(db_url, keys[0])
    grow(db_url, 1)
    reader = Reader(db_url)
    try:
        latest, first = event_page(reader, 3), event_page(reader, 3, published=1)
        assert [p["number"] for p in latest["published"]] == [2, 1]
        for page, number in ((latest, 2), (first, 1)):
            shown = page["checkpoint"]
            assert (shown["number"], shown["signed"], shown["pasted"]) == (number, True, False)
            check_inclusion(InclusionProof(**page["proof"]), read_checkpoint(shown["note"], verifier))
        assert first["checkpoint"]["tree_size"] < latest["checkpoint"]["tree_size"]
        # Pasted from a form (CRLF line ends, no last newline): the same checkpoint, the same proof.
        pasted = event_page(reader, 3, pasted=first["checkpoint"]["note"].replace("\n", "\r\n").rstrip())
        assert pasted["proof"] == first["proof"] and pasted["checkpoint"]["pasted"] and pasted["checkpoint"]["number"] is None
        # An event after the last published checkpoint: proven in the unsigned tree, which the page's check refuses.
        size = latest["checkpoint"]["tree_size"]
        late = event_page(reader, size + 1)
        assert late["checkpoint"]["signed"] is False and late["checkpoint"]["tree_size"] == size + 6
        check_inclusion(InclusionProof(**late["proof"]), parse_checkpoint(late["checkpoint"]["note"]))
        # A checkpoint of another root is proven in this ledger's tree of its size: the proof does not lead to its root.
        body = first["checkpoint"]["note"].split("\n\n")[0].split("\n")
        forked = "\n".join([body[0], body[1], "A" * 43 + "=", ""])
        other = event_page(reader, 3, pasted=forked)
        assert other["proof"] == first["proof"]
        with pytest.raises(ProofFailed):
            check_inclusion(InclusionProof(**other["proof"]), parse_checkpoint(forked))
        with pytest.raises(NotFound, match="published: 99: no published checkpoint has this number"):
            event_page(reader, 3, published=99)
        with pytest.raises(NotFound, match="the event was added after the checkpoint"):
            event_page(reader, size + 1, published=2)
        with pytest.raises(InvalidValue, match=f"checkpoint: 'tree size 999': this ledger's tree has only {size + 6} leaves"):
            event_page(reader, 3, pasted="\n".join([body[0], "999", body[2], ""]))
    finally:
        reader.close()
