"""Turns validation errors into one line per problem, naming the field (in the user's words) and the value."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args, get_origin

from pydantic import ValidationError

from domain.errors import shown
from service_layer.commands import MODELS, TAGS


def describe(error: ValidationError, prefix: str = "", names: dict[str, str] | None = None) -> list[str]:
    """One readable line per problem in `error`; `names` spells fields as the user gave them (a command line says `at` for
    `occurred_at`, `year-established` for `year_established`; a name spelled "" is left out of the field's path)."""
    lines = []

    def word(name: str) -> str:
        return (names or {}).get(name, name)

    for problem in error.errors(include_url=False):
        kind = problem["type"]
        ctx = problem.get("ctx") or {}
        if kind == "union_tag_invalid":
            lines.append(f"{prefix}action: {shown(ctx.get('tag'))}: unknown action (expected one of: {', '.join(TAGS)})")
            continue
        if kind == "union_tag_not_found":
            lines.append(f"{prefix}action: missing")
            continue
        if kind == "fields_rule":  # a rule across fields: each named as the user knows it
            words = [word(f) for f in ctx["fields"]]
            lines.append(f"{prefix}{words[0]}: {ctx['text'].format(*words)}")
            continue
        location = [w for p in problem["loc"] if p not in TAGS and (w := word(str(p)))]
        # A key from the input may hold anything; it is quoted unless it is a plain name.
        field = ".".join(p if re.fullmatch(r"[\w-]+", p, re.ASCII) else shown(p) for p in location) or "value"
        if kind == "missing":
            choices = _choices(problem["loc"])
            lines.append(f"{prefix}{field}: missing" + (f" (one of: {', '.join(choices)})" if choices else ""))
        else:
            lines.append(f"{prefix}{field}: {shown(problem.get('input'))}: {_message(kind, ctx, problem['msg'])}")
    return lines


def _message(kind: str, ctx: dict[str, Any], text: str) -> str:
    """pydantic's message, said as the ledger says things: choices listed, list sizes in words."""
    if kind == "literal_error":
        return "expected one of: " + ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
    if kind == "too_short":
        return f"needs at least {ctx['min_length']}; {ctx['actual_length']} given"
    if kind == "too_long":
        return f"accepts at most {ctx['max_length']}; {ctx['actual_length']} given"
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"must be at {'least' if kind == 'greater_than_equal' else 'most'} {ctx['ge' if kind == 'greater_than_equal' else 'le']:,}"
    if kind in ("tuple_type", "list_type"):
        return "expected a list"
    return text.removeprefix("Value error, ")


def _choices(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The choices of a closed-set field a command lacks, from its location (the action's tag, then the field)."""
    if len(loc) < 2 or loc[0] not in MODELS:
        return ()
    field = MODELS[loc[0]].model_fields.get(str(loc[1]))
    annotation = field.annotation if field is not None else None
    return tuple(map(str, get_args(annotation))) if get_origin(annotation) is Literal else ()
