"""A record's state and each update's changes as people read them: yes and no, lists and named counts, links to other records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_core import to_jsonable_python

HIDDEN = ("action_keys",)
"""Fields of an aggregate kept for idempotency, not part of what the record says."""

Value = dict[str, Any]
"""One shown value: {"text": …}, {"ref": …} (a link to that record), {"items": [Value…]} or {"fields": [[name, Value]…]}."""


def state_of(aggregate: Any) -> dict[str, Any]:
    """An aggregate's public fields as JSON-ready values (a copy: later changes to the aggregate do not reach it)."""
    return {k: v for k, v in to_jsonable_python(vars(aggregate), fallback=str).items() if not k.startswith("_") and k not in HIDDEN}


def shown(value: Any, is_record: Callable[[str], bool]) -> Value:
    """A stored value as a reader sees it; a text that is another record's reference becomes a link to it."""
    if value is None:
        return {"text": "none"}
    if isinstance(value, bool):
        return {"text": "yes" if value else "no"}
    if isinstance(value, int | float):
        return {"text": str(value)}  # a year or a count, as stored: 2015 is not "2,015"
    if isinstance(value, str):
        return {"ref": value} if is_record(value) else {"text": value}
    if isinstance(value, list | tuple):
        return {"items": [shown(v, is_record) for v in value]} if value else {"text": "none"}
    if isinstance(value, dict):
        return {"fields": [[k.replace("_", " "), shown(v, is_record)] for k, v in value.items()]} if value else {"text": "none"}
    return {"text": str(value)}


def fields(state: dict[str, Any], is_record: Callable[[str], bool]) -> list[list[Any]]:
    """A state's fields in order, each as [name, shown value]."""
    return [[k.replace("_", " "), shown(v, is_record)] for k, v in state.items()]


def changes(before: dict[str, Any] | None, after: dict[str, Any], is_record: Callable[[str], bool]) -> list[dict[str, Any]]:
    """What one event changed: each field whose value differs from the state before it, with both values (None where absent)."""
    earlier = before or {}
    changed = []
    for name in [*after, *(k for k in earlier if k not in after)]:
        old, new = earlier.get(name), after.get(name)
        if name in earlier and name in after and old == new:
            continue
        changed.append({
            "field": name.replace("_", " "),
            "before": shown(old, is_record) if name in earlier else None,
            "after": shown(new, is_record) if name in after else None,
        })
    return changed
