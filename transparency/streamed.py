"""A signature checker for events that arrive one at a time: each proven batch tree is remembered, node by node, so the next event of the batch is walked only up to a node already proven."""

from __future__ import annotations

import base64
import binascii

from transparency import merkle
from transparency.note import Verifier
from transparency.signing import SignatureChecker, SignedEvent

Node = tuple[int, int]
"""A node of a batch tree as the RFC 9162 §2.1.3.2 walk reaches it: (fn, sn) before a step."""


class StreamChecker(SignatureChecker):
    """`SignatureChecker.check_event` with the same answers, each event's audit path walked only until it meets a proven node.

    A node is proven when a path through it led to a root whose signature held: its hash and the siblings from it to
    the root are kept. An event whose walk reaches a proven node with the same hash, and whose remaining path is the
    same siblings, leads to that root; any other event is checked by the clear path, which gives the answer.
    What it proves says which key signed which root, not whether that key is trusted: the caller decides that.
    """

    def __init__(self, remember: int = 4096, trees: int = 16) -> None:
        super().__init__(remember)
        self._trees: dict[tuple[str, bytes, int, str], dict[Node, tuple[bytes, tuple[str, ...]]]] = {}
        self._keep = trees
        """How many batch trees are kept (the oldest go first): at most two nodes per leaf of each."""

    def check_event(self, event: SignedEvent, verifier: Verifier) -> str | None:
        block = event.block
        tree = (verifier.name, verifier.public, block.n, block.sig)  # the key as its parts: encoding it costs a hash per event
        canonical = not event.stored_block or event.stored_block == block.encode()
        if canonical and block.by == verifier.name and 0 <= block.i < block.n:
            nodes = self._trees.get(tree)
            leaf = merkle.leaf_hash(event.entry())
            if nodes is not None and _meets_proven(nodes, leaf, block.i, block.n, block.path):
                return None
            why = super().check_event(event, verifier)
            if why is None:
                self._prove(tree, leaf, block.i, block.n, block.path)
            return why
        return super().check_event(event, verifier)

    def _prove(self, tree: tuple[str, bytes, int, str], leaf: bytes, index: int, size: int, path: tuple[str, ...]) -> None:
        """Keep every node of a path that led to a signed root, with the siblings that lead from it to the root."""
        nodes = self._trees.get(tree)
        if nodes is None:
            if len(self._trees) >= self._keep:
                del self._trees[next(iter(self._trees))]
            nodes = self._trees[tree] = {}
        fn, sn, r = index, size - 1, leaf
        for k, p in enumerate(path):
            nodes[(fn, sn)] = (r, path[k:])
            r, fn, sn = _step(r, base64.b64decode(p), fn, sn)


def _step(r: bytes, sibling: bytes, fn: int, sn: int) -> tuple[bytes, int, int]:
    """One step of merkle.root_from_inclusion: the parent's hash and the walk's next (fn, sn)."""
    if fn & 1 or fn == sn:
        r = merkle.node_hash(sibling, r)
        if not fn & 1:
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
    else:
        r = merkle.node_hash(r, sibling)
    return r, fn >> 1, sn >> 1


def _meets_proven(nodes: dict[Node, tuple[bytes, tuple[str, ...]]], leaf: bytes, index: int, size: int, path: tuple[str, ...]) -> bool:
    """Whether this path reaches a proven node with its hash, and joins the same siblings from there to the root; if so,
    the nodes it walked to get there are proven too."""
    fn, sn, r = index, size - 1, leaf
    walked: list[tuple[Node, tuple[bytes, tuple[str, ...]]]] = []
    for k, p in enumerate(path):
        if sn == 0:
            return False
        proven = nodes.get((fn, sn))
        if proven is not None:
            # The same node and the same siblings above it: the walk from here is the proven one, to the same root.
            if proven[0] != r or proven[1] != path[k:]:
                return False
            nodes.update(walked)
            return True
        try:
            sibling = base64.b64decode(p, validate=True)
        except binascii.Error:
            return False
        walked.append(((fn, sn), (r, path[k:])))
        r, fn, sn = _step(r, sibling, fn, sn)
    return False
