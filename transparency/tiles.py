"""The log as C2SP tlog-tiles: tile paths, hash tiles and entry bundles read from the stored tree, and their export to a folder."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from transparency.errors import TransparencyError
from transparency.leaf import record_leaf
from transparency.store import TreeStore

HEIGHT = 8
WIDTH = 1 << HEIGHT
"""A full tile holds 256 hashes (a subtree of height 8), a full entry bundle 256 entries."""
MAX_ENTRY = 0xFFFF
"""An entry bundle prefixes each entry with a 2-byte length: no leaf may be longer."""
HASH_SIZE = 32
_PATH = re.compile(r"tile/(?:(?P<level>0|[1-9][0-9]?)|(?P<entries>entries))/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})(?:\.p/(?P<width>[1-9][0-9]{0,2}))?")


class TileNotFound(TransparencyError):
    """A tile or entry bundle the log does not hold (yet), or a path that names none."""


@dataclass(frozen=True)
class Tile:
    """A hash tile (level >= 0) or an entry bundle (level None): its index and its width (256 for a full one)."""

    level: int | None
    index: int
    width: int = WIDTH

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)

    @property
    def full(self) -> bool:
        return self.width == WIDTH


def encode_index(n: int) -> str:
    """N in 3-digit path elements, all but the last prefixed with `x` (1234067 -> x001/x234/067)."""
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level: int | None, index: int, width: int = WIDTH) -> str:
    """`tile/<L>/<N>[.p/<W>]`, or `tile/entries/<N>[.p/<W>]` when level is None."""
    where = "entries" if level is None else str(level)
    return f"tile/{where}/{encode_index(index)}" + ("" if width == WIDTH else f".p/{width}")


def parse_path(path: str) -> Tile:
    """The tile a path names; raises TileNotFound for anything that is not a tile path in its one spelling."""
    match = _PATH.fullmatch(path)
    level = None if match is None or match["entries"] else int(match["level"])
    width = int(match["width"]) if match is not None and match["width"] else WIDTH
    if match is None or (match["width"] and width >= WIDTH) or (level is not None and level > 63):
        raise TileNotFound(f"tile: {path!r} is not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])")
    index = int("".join(part.removeprefix("x") for part in match["index"].split("/")))
    return Tile(level, index, width)


def tiles_for(size: int) -> Iterator[Tile]:
    """Every tile and entry bundle of a tree of `size` leaves: the full ones, then the partial one, level by level."""
    level = 0
    while level == 0 or size >> (HEIGHT * level):
        hashes = size >> (HEIGHT * level)
        for index in range(hashes // WIDTH):
            if level == 0:
                yield Tile(None, index)
            yield Tile(level, index)
        if hashes % WIDTH:
            if level == 0:
                yield Tile(None, hashes // WIDTH, hashes % WIDTH)
            yield Tile(level, hashes // WIDTH, hashes % WIDTH)
        level += 1


def read_tile(store: TreeStore, tile: Tile) -> bytes:
    """The bytes of a tile or entry bundle, from the stored tree and events; TileNotFound if the tree does not hold all of it yet."""
    first = tile.index * WIDTH
    if tile.level is None:
        return b"".join(_bundle_entries(store, first, tile))
    hashes = store.nodes_at(HEIGHT * tile.level, first, tile.width)
    if len(hashes) < tile.width:
        raise TileNotFound(f"tile: {tile.path}: the tree does not hold it")
    return b"".join(hashes[first + i] for i in range(tile.width))


def _bundle_entries(store: TreeStore, first: int, tile: Tile) -> Iterator[bytes]:
    leaves = store.leaves_after(first - 1, tile.width)
    if len(leaves) < tile.width or leaves[0].index != first:
        raise TileNotFound(f"tile: {tile.path}: the tree does not hold it")
    records = store.records(leaves[0].position - 1, tile.width)
    if [r.position for r in records] != [leaf.position for leaf in leaves]:
        raise TransparencyError(f"tile: {tile.path}: the log no longer holds the events of these leaves; run `ledger verify`")
    for record in records:
        entry = record_leaf(record)
        if len(entry) > MAX_ENTRY:
            raise TransparencyError(f"tile: {tile.path}: the event at position {record.position} is {len(entry):,} bytes as a log entry, "
                                    f"more than an entry bundle holds ({MAX_ENTRY:,})")
        yield struct.pack(">H", len(entry)) + entry


def split_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle; raises TransparencyError if it is not a sequence of length-prefixed entries."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise TransparencyError("entry bundle: ends inside a length prefix")
        (n,) = struct.unpack(">H", data[at : at + 2])
        if at + 2 + n > len(data):
            raise TransparencyError("entry bundle: an entry runs past the end")
        entries.append(data[at + 2 : at + 2 + n])
        at += 2 + n
    return entries


def split_hashes(data: bytes, width: int) -> list[bytes]:
    """The hashes of a tile of `width`; raises TransparencyError if it does not hold exactly that many."""
    if len(data) != width * HASH_SIZE:
        raise TransparencyError(f"tile: holds {len(data)} bytes, not {width} hashes")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


@dataclass
class Exported:
    """What an export wrote and what it found already there."""

    written: int = 0
    kept: int = 0
    checkpoint_written: bool = False


def export(store: TreeStore, note: str, size: int, folder: Path, progress: Callable[[int], None] = lambda n: None) -> Exported:
    """Write the checkpoint and every tile and entry bundle of its tree into `folder`; files already there are kept, as tiles never change."""
    done = Exported()
    for tile in tiles_for(size):
        target = folder / tile.path
        if target.exists():
            done.kept += 1
        else:
            _write_atomically(target, read_tile(store, tile))
            done.written += 1
        progress(1)
    checkpoint = folder / "checkpoint"
    # The checkpoint goes last: a reader who sees it finds every tile it needs.
    if not checkpoint.exists() or checkpoint.read_bytes() != note.encode():
        _write_atomically(checkpoint, note.encode())
        done.checkpoint_written = True
    return done


def _write_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary file beside the target, then rename: a reader never sees half a tile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial")
    temporary.write_bytes(data)
    os.replace(temporary, target)
