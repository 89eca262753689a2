"""No contact detail reaches an event through free text, a reference or the actor, whichever command or action carries it;
real titles with numbers still pass. Numbers that would overflow or underflow are refused, not rounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cli.errors import describe
from domain.inputs import personal_data_in
from service_layer import commands as c
from service_layer import importing

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform-actions.jsonl"
ACTIONS = [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
NOT_TEXT = {"action", "occurred_at", "key"}  # the tag, a timestamp, and a key stored only as its digest

words = st.text(alphabet=st.sampled_from("abcdefghij XYZ-,."), max_size=12)
email = st.builds(lambda user, host: f"{user}@{host}.org", st.from_regex(r"[a-z][a-z.]{0,8}[a-z]", fullmatch=True),
                  st.from_regex(r"[a-z]{2,10}", fullmatch=True))
mailto = st.builds(lambda user: f"mailto:{user}", st.from_regex(r"[a-z][a-z.]{0,10}", fullmatch=True))
phone = st.builds(lambda digits, sep: "+" + sep.join(digits), st.lists(st.from_regex(r"[0-9]{2,4}", fullmatch=True), min_size=4, max_size=5),
                  st.sampled_from([" ", "", "-", "."]))
contact = st.one_of(email, mailto, phone)


@pytest.mark.parametrize("text", ["giulia.rossi@example.org", "Contact giulia.rossi@example.org today", "mailto:giulia.rossi",
                                  "MAILTO:x", "+39 06 1234 5678", "call +44 20 7946 0958", "+33612345678", "+1 (202) 555-0143"])
def test_contact_details_are_found(text: str) -> None:
    assert personal_data_in(text)


@pytest.mark.parametrize("text", ["Horizon Europe 101057", "H2 2025", "Clusters meet Regions: Milan 2025", "C++ and AI cluster",
                                  "Budget +15% in 2025", "ISO 9001:2015 audit", "Meeting at 10:30 (+1 day)", "EU+UK 2024-2025",
                                  "Grant 101057 / 2024 / 003", "Hydrogen for hospital energy resilience", "R&D @ the lab"])
def test_real_titles_pass(text: str) -> None:
    assert personal_data_in(text) == ""


def refusals(action: dict[str, Any]) -> list[str]:
    try:
        c.COMMAND.validate_python(importing.parse_line(json.dumps(action)))
    except ValidationError as error:
        return describe(error)
    return []


def text_fields(action: dict[str, Any]) -> list[tuple[str, ...]]:
    """Paths to every string of an action (in nested objects and lists too), but its tag, time and key."""
    found: list[tuple[str, ...]] = []

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, str) and path[0] not in NOT_TEXT:
            found.append(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for n, item in enumerate(value):
                walk(item, (*path, str(n)))

    walk(action, ())
    return found


def replaced(action: dict[str, Any], path: tuple[str, ...], text: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(action))
    holder: Any = copy
    for step in path[:-1]:
        holder = holder[int(step)] if isinstance(holder, list) else holder[step]
    if isinstance(holder, list):
        holder[int(path[-1])] = text
    else:
        holder[path[-1]] = text
    return copy


def test_every_example_action_is_accepted_as_it_is() -> None:
    assert [refusals(a) for a in ACTIONS] == [[] for _ in ACTIONS]


@settings(max_examples=60, deadline=None)
@given(index=st.integers(min_value=0, max_value=len(ACTIONS) - 1), before=words, detail=contact, after=words, pick=st.integers(min_value=0))
def test_a_contact_detail_in_any_string_of_any_action_is_refused_naming_the_field(index: int, before: str, detail: str, after: str, pick: int) -> None:
    action = {**ACTIONS[index], "actor": ACTIONS[index].get("actor", "admin.anna")}
    paths = text_fields(action)
    path = paths[pick % len(paths)]
    problems = refusals(replaced(action, path, f"{before} {detail} {after}".strip()))
    assert problems, (path, detail)
    assert any(p.startswith(path[0]) for p in problems), problems


@pytest.mark.parametrize(("number", "why"), [("1e-400", "too small"), ("1e400", "too large"), ("-1e-400", "too small")])
def test_a_number_that_would_be_rounded_is_refused(number: str, why: str) -> None:
    line = '{"action": "org.update", "org": "ORG-IT-0001", "members": {"smes": ' + number + "}}"
    with pytest.raises(ValueError, match=why):
        importing.parse_line(line)
