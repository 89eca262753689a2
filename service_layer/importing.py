"""Reads a JSON Lines import file, line by line, into commands, naming every bad line; nothing here writes."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from pydantic import ValidationError

from service_layer import commands as c

MAX_DEPTH = 16
"""The deepest nesting of arrays and objects a line may have."""
MAX_DIGITS = 30
"""The most characters a number may have."""
MAX_REPORTED = 50
"""At most this many problems are listed; the rest are counted."""
MAX_LINE = 1 << 20
"""The most bytes a line may have, its LF not counted: far more than any valid action takes (its event is at most 65,535
bytes), so a line is refused after reading at most this many bytes and one, whatever the file holds."""
SKIP_BLOCK = 1 << 20
"""Bytes read at a time while the rest of a line over MAX_LINE is passed over."""


class Problems:
    """The bad lines of a file as they are found, in any order: the first MAX_REPORTED in line order are kept, the rest
    only counted, so a file of a million bad lines needs no more memory than one of fifty."""

    def __init__(self) -> None:
        self.kept: list[tuple[int, str]] = []
        self.count = 0
        self.lines = 0

    def add(self, number: int, problems: list[str]) -> None:
        """The problems of line `number` (each line's problems are found all at once)."""
        self.lines += 1
        self.count += len(problems)
        self.kept += [(number, problem) for problem in problems]
        if len(self.kept) > 4 * MAX_REPORTED:
            self.kept.sort(key=lambda p: p[0])
            del self.kept[MAX_REPORTED:]

    def __bool__(self) -> bool:
        return self.count > 0

    def report(self) -> list[str]:
        """Problems in line order, at most MAX_REPORTED of them, then how many more there are."""
        ordered = [f"line {number}: {problem}" for number, problem in sorted(self.kept, key=lambda p: p[0])[:MAX_REPORTED]]
        if self.count > MAX_REPORTED:
            ordered.append(f"... and {self.count - MAX_REPORTED:,} more problem(s)")
        return ordered


class _LineError(ValueError):
    """A line that is not one JSON object within the limits."""


def count_lines(stream: BinaryIO) -> int:
    """How many lines a file has (a last line without LF counts), read in blocks; for a progress bar."""
    count, last = 0, b"\n"
    while block := stream.read(1 << 20):
        count += block.count(b"\n")
        last = block[-1:]
    return count + (last != b"\n")


PROGRESS_STEP = 1_000
"""Lines read between two moves of a progress bar."""


def read_lines(stream: BinaryIO, problems: Problems, progress: Callable[[int], None] = lambda n: None) -> Iterator[tuple[int, str]]:
    """The numbered lines of a file, one at a time: split on LF only (U+2028, U+0085 and friends are text), a leading BOM
    and a CR before each LF dropped. A line that is not UTF-8, or longer than MAX_LINE bytes, goes to `problems` instead
    (the rest of a long line is passed over in blocks, never held); the numbers stay right.
    `progress(n)` hears of every PROGRESS_STEP lines read, and of the rest at the end."""
    number = 0
    while raw := stream.readline(MAX_LINE + 1):  # a binary file splits on b"\n" only
        number += 1
        if number % PROGRESS_STEP == 0:
            progress(PROGRESS_STEP)
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            problems.add(number, [f"longer than {MAX_LINE:,} bytes, the most a line may have; not read further"])
            while (rest := stream.readline(SKIP_BLOCK)) and not rest.endswith(b"\n"):
                pass
            continue
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            yield number, raw.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8")
        except UnicodeDecodeError as error:
            problems.add(number, [f"not UTF-8 text (byte {error.start + 1}: {error.reason})"])
    progress(number % PROGRESS_STEP)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _LineError(f"{key}: appears twice in one object; each key once")
        seen[key] = value
    return seen


def _number(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_DIGITS:
            raise _LineError(f"a number of {len(text):,} characters; at most {MAX_DIGITS} are accepted")
        return kind(text)

    return parse


def _float(text: str) -> float:
    """A JSON number with a fraction or an exponent; one that overflows or underflows is refused, never rounded."""
    value = float(text)
    if math.isinf(value):
        raise _LineError(f"the number {text} is too large to be read exactly")
    if value == 0 and any(digit in "123456789" for digit in text.lower().partition("e")[0]):
        raise _LineError(f"the number {text} is too small to be read exactly (it would be read as 0)")
    return value


def _constant(name: str) -> Any:
    raise _LineError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_int=_number(int), parse_float=_number(_float), parse_constant=_constant)
"""Built once: json.loads with hooks builds a decoder for every line."""


def _depth(line: str) -> int:
    """The deepest nesting of arrays and objects on a line, outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in line:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_line(line: str) -> dict[str, Any]:
    """One line as a JSON object; raises ValueError with one readable sentence."""
    if line.count("[") + line.count("{") > MAX_DEPTH and _depth(line) > MAX_DEPTH:
        raise _LineError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        if line.startswith("\ufeff"):  # which _DECODER alone does not check; only a file's first line may start with one
            raise _LineError("starts with a byte order mark (U+FEFF), which only the first line of a file may; save the file as UTF-8 without one")
        value = _DECODER.decode(line)
    except json.JSONDecodeError as error:
        raise _LineError(f"malformed JSON at column {error.colno}: {error.msg}") from None
    if not isinstance(value, dict):
        raise _LineError(f"expected one JSON object per line, found {type(value).__name__}")
    return value


def parse_lines(
    lines: Iterator[tuple[int, str]], describe: Callable[[ValidationError], list[str]], problems: Problems
) -> Iterator[tuple[int, c.Command]]:
    """Each line checked alone (JSON syntax, limits and field values) and yielded as a command with its number; a bad
    line goes to `problems` instead. Blank lines are skipped."""
    for number, line in lines:
        if not line.strip():
            continue
        try:
            command = c.COMMAND.validate_python(parse_line(line))
        except _LineError as error:
            problems.add(number, [str(error)])
        except ValidationError as error:
            problems.add(number, describe(error))
        else:
            yield number, command
