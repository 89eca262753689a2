"""Events as readable fields and one-line summaries, and moments as people type them: shared by the command line and the browser view."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from domain.errors import InvalidValue
from domain.values import MOMENT_FORMS, TypedMoment

_MOMENT: TypeAdapter[datetime] = TypeAdapter(TypedMoment, config=ConfigDict(defer_build=True))  # built when first used
_COMMON = {"originator_id", "originator_version", "timestamp", "occurred_at", "actor", "action_key", "action_digest", "originator_topic"}


def parse_moment(field: str, text: str, *, past: bool = False) -> datetime:
    """A UTC timestamp from a user's date or ISO timestamp in a documented form; with `past`, a moment after now is
    refused (what the ledger held then is not known yet)."""
    try:
        parsed = _MOMENT.validate_python(text)
    except ValidationError:
        raise InvalidValue(field, text, MOMENT_FORMS) from None
    now = datetime.now(timezone.utc)
    if past and parsed > now:
        raise InvalidValue(field, text, f"is in the future (now: {moment(now)}); leave it out for the ledger as it is now")
    return parsed


def printable(text: str) -> str:
    """Text that cannot act on a terminal: control, format and line-break characters shown as escapes (one row stays one line)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def event_details(event: BaseModel) -> dict[str, Any]:
    """The fields particular to one event, as JSON-ready values."""
    data = event.model_dump(mode="json", exclude=_COMMON)
    return {k: v for k, v in data.items() if v not in (None, (), [])}


def summary(event: BaseModel) -> str:
    """One readable line of an event's own fields."""
    return ", ".join(f"{k}={_short(v)}" for k, v in event_details(event).items())


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "/".join(map(str, value))
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{v}" for k, v in value.items() if v) + "}"
    return str(value)


def event_type(event: Any) -> str:
    """`ClusterOrganisation.Registered` for an event of that class."""
    return type(event).__qualname__


def number(value: int) -> str:
    """A count as every output writes it: thousands separated by commas (62,527)."""
    return f"{value:,}"


def count(value: int, noun: str, plural: str | None = None) -> str:
    """`1 event`, `2,000 events`: a count with its noun in the right number."""
    return f"{number(value)} {noun if value == 1 else plural or noun + 's'}"


def moment(value: datetime) -> str:
    """A moment as every text output writes it: UTC, to the second, with its offset (2025-06-01T12:00:00+00:00)."""
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")
