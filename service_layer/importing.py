"""Reads a JSON Lines import file into commands, naming every bad line; nothing here writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from service_layer import commands as c

MAX_DEPTH = 16
"""The deepest nesting of arrays and objects a line may have."""
MAX_DIGITS = 30
"""The most characters a number may have."""
MAX_REPORTED = 50
"""At most this many problems are listed; the rest are counted."""


@dataclass
class ParsedFile:
    """The commands of an import file, the line of each, and one line per problem."""

    commands: list[c.Command] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)


class _LineError(ValueError):
    """A line that is not one JSON object within the limits."""


def split_lines(data: bytes) -> tuple[list[str], list[tuple[int, str]]]:
    """The lines of a file and the lines that are not UTF-8: split on LF only (U+2028, U+0085 and friends are text),
    a leading BOM and a CR before each LF dropped. An undecodable line is kept as a blank one, so numbers stay right."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    lines: list[str] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(raw, start=1):
        try:
            lines.append(line.removesuffix(b"\r").decode("utf-8"))
        except UnicodeDecodeError as error:
            lines.append("")
            problems.append((number, f"not UTF-8 text (byte {error.start + 1}: {error.reason})"))
    return lines, problems


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


def _constant(name: str) -> Any:
    raise _LineError(f"{name} is not a JSON number")


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
        value = json.loads(line, object_pairs_hook=_no_duplicates, parse_int=_number(int), parse_float=_number(float), parse_constant=_constant)
    except json.JSONDecodeError as error:
        raise _LineError(f"malformed JSON at column {error.colno}: {error.msg}") from None
    if not isinstance(value, dict):
        raise _LineError(f"expected one JSON object per line, found {type(value).__name__}")
    return value


def parse_file(lines: Iterable[str], describe: Callable[[ValidationError], list[str]]) -> ParsedFile:
    """Every line checked alone: JSON syntax, limits and field values. Blank lines are skipped."""
    parsed = ParsedFile()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            command = c.COMMAND.validate_python(parse_line(line))
        except _LineError as error:
            parsed.problems.append((number, str(error)))
        except ValidationError as error:
            parsed.problems += [(number, problem) for problem in describe(error)]
        else:
            parsed.commands.append(command)
            parsed.lines.append(number)
    return parsed


def report(problems: list[tuple[int, str]]) -> list[str]:
    """Problems in line order, at most MAX_REPORTED of them, then how many more there are."""
    ordered = [f"line {number}: {problem}" for number, problem in sorted(problems, key=lambda p: p[0])]
    if len(ordered) > MAX_REPORTED:
        return [*ordered[:MAX_REPORTED], f"... and {len(ordered) - MAX_REPORTED:,} more problem(s)"]
    return ordered

