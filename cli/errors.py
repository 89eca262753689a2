"""Turns validation errors into one line per problem, naming the field and the value."""

from __future__ import annotations

import re

from pydantic import ValidationError

from domain.errors import shown
from service_layer.commands import TAGS


def describe(error: ValidationError, prefix: str = "", names: dict[str, str] | None = None) -> list[str]:
    """One readable line per problem in `error`; `names` renames fields (a command line says `at` for `occurred_at`)."""
    lines = []
    for problem in error.errors(include_url=False):
        kind = problem["type"]
        if kind == "union_tag_invalid":
            tag = (problem.get("ctx") or {}).get("tag")
            lines.append(f"{prefix}action: {shown(tag)}: unknown action (expected one of: {', '.join(TAGS)})")
            continue
        if kind == "union_tag_not_found":
            lines.append(f"{prefix}action: missing")
            continue
        location = [(names or {}).get(str(p), str(p)) for p in problem["loc"] if p not in TAGS]
        # A key from the input may hold anything; it is quoted unless it is a plain name.
        field = ".".join(p if re.fullmatch(r"\w+", p, re.ASCII) else shown(p) for p in location) or "value"
        message = problem["msg"].removeprefix("Value error, ")
        if kind == "missing":
            lines.append(f"{prefix}{field}: missing")
        else:
            lines.append(f"{prefix}{field}: {shown(problem.get('input'))}: {message}")
    return lines
