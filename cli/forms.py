"""Builds one click command per ledger command model, with an option per field."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import click
from pydantic import BaseModel

from domain.inputs import MemberChanges, MemberCounts
from service_layer import commands as c

FIELD_HELP = {
    "org": "reference of the cluster organisation, e.g. ORG-0042",
    "name": "name",
    "country": "ISO 3166 alpha-2 country code, e.g. IT",
    "region": "NUTS region code of that country, e.g. ITC4",
    "nuts_version": "NUTS classification of the region code: 2024, or 2021 for facts effective before 2024-01-01 (default: the one the code belongs to)",
    "sectors": "a sector (repeat for several; a sector's name may hold a comma, so one per option)",
    "ecosystems": "one of the 14 EU industrial ecosystems (repeat, or separate with commas)",
    "year_established": "year the cluster organisation was established",
    "level": "label level",
    "valid_until": "last day the label is valid (YYYY-MM-DD)",
    "reason": "why",
    "activity": "reference of the activity, e.g. MM-2024-03",
    "kind": "kind",
    "title": "title",
    "starts_on": "first day (YYYY-MM-DD)",
    "ends_on": "last day (YYYY-MM-DD)",
    "place": "city or venue (omit for online activities)",
    "online": "the activity takes place online",
    "target_countries": "a target country code (repeat, or separate with commas)",
    "person": "pseudonymous reference of a person, e.g. P-7f3a (never a name or e-mail)",
    "email": "e-mail address (kept in the erasable personal-data table, never in an event)",
    "meeting": "reference of the bilateral meeting",
    "requester": "organisation that asked for the meeting",
    "partner": "organisation asked to meet",
    "outcome": "how the meeting ended without being held",
    "pitch": "reference of the pitch",
    "case": "reference of the cooperation case",
    "orgs": "an organisation of the case (two or more: repeat, or separate with commas)",
    "source_kind": "where the case was identified",
    "source": "reference of the meeting or activity the case came from",
    "stage": "stage the case reached",
    "project": "joint project, e.g. a Horizon Europe project name",
    "publication": "reference of the publication",
    "note": "what changed",
}
MEMBER_OPTIONS = {
    "smes": "member SMEs",
    "large_enterprises": "member large enterprises",
    "research_organisations": "member research organisations",
    "universities": "member universities",
    "other": "other members",
}
FIXED = {"action", "actor", "key", "occurred_at"}
FREE_TEXT_LISTS = {"sectors"}
"""List fields whose items are free text, which may hold a comma: given one item per option, never split."""


class CommaList(click.ParamType):
    """Items separated by commas (`--ecosystems health,digital`), each checked as `item` checks one; a tuple of them."""

    def __init__(self, item: click.ParamType) -> None:
        self.item = item
        self.name = item.name

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return f"{self.item.get_metavar(param, ctx) or self.item.name.upper()}[,...]"

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        done, _, last = incomplete.rpartition(",")
        prefix = f"{done}," if done else ""
        return [type(c)(prefix + c.value) for c in self.item.shell_complete(ctx, param, last)]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[Any, ...]:
        if isinstance(value, tuple):
            return value
        return tuple(self.item.convert(part.strip(), param, ctx) for part in str(value).split(","))


def _flatten(ctx: click.Context, param: click.Parameter, value: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    """Repeated options and comma-separated items, as one tuple in the order given."""
    return tuple(item for items in value for item in items)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without `| None` and its constraints, and whether None was allowed."""
    allowed = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation, allowed = args[0], len(args) < len(get_args(annotation))
    # An optional list keeps its constraints inside the union (`Annotated[tuple[...], Field(...)] | None`).
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, allowed


def _option(name: str, annotation: Any, required: bool) -> click.Option:
    inner, _ = _unwrap(annotation)
    flag = "--" + name.replace("_", "-")
    help_text = FIELD_HELP.get(name, name.replace("_", " "))
    multiple = get_origin(inner) is tuple
    if multiple:
        inner = get_args(inner)[0]
    if get_origin(inner) is Literal:
        kind: Any = click.Choice([str(v) for v in get_args(inner)])
    elif inner is int:
        kind = int
    else:
        kind = str
    if inner is bool:
        return click.Option([flag], is_flag=True, default=False, help=help_text)
    if multiple and name not in FREE_TEXT_LISTS:
        return click.Option([flag], type=CommaList(click.types.convert_type(kind)), multiple=True, required=required, help=help_text, callback=_flatten)
    return click.Option([flag], type=kind, multiple=multiple, required=required, help=help_text)


def command_options(model: type[c.Command]) -> list[click.Option]:
    """Click options for every field of `model`."""
    options: list[click.Option] = []
    for name, field in model.model_fields.items():
        if name in FIXED:
            continue
        if _unwrap(field.annotation)[0] in (MemberCounts, MemberChanges):
            options += [
                click.Option(["--" + ("other-members" if n == "other" else n.replace("_", "-"))], type=int, help=h)
                for n, h in MEMBER_OPTIONS.items()
            ]
            continue
        options.append(_option(name, field.annotation, field.is_required()))
    options.append(
        click.Option(["--at", "occurred_at"], help="when it happened (YYYY-MM-DD or ISO timestamp); default: now")
    )
    options.append(click.Option(["--key"], help="idempotency key; default: derived from the command's content"))
    return options


def to_payload(model: type[BaseModel], params: dict[str, Any]) -> dict[str, Any]:
    """The dict a command model validates, from click's parameters."""
    payload: dict[str, Any] = {}
    members = {}
    for name, value in params.items():
        if name in MEMBER_OPTIONS or name == "other_members":
            if value is not None:
                members["other" if name == "other_members" else name] = value
        elif value is None or (value == () and name in model.model_fields and not model.model_fields[name].is_required()):
            continue
        else:
            payload[name] = value
    if members:
        payload["members"] = members
    return payload


def option_names(model: type[BaseModel]) -> dict[str, str]:
    """Each field of `model` as its option is spelled (without the dashes), for messages: `year-established`, `at`."""
    names = {name: name.replace("_", "-") for name in model.model_fields}
    return names | {"occurred_at": "at", "members": "", "other": "other-members"}


def make_command(name: str, model: type[c.Command], run: Callable[[type[c.Command], dict[str, Any]], None]) -> click.Command:
    """A click command that validates its options as `model` and hands the payload to `run`."""
    summary = (model.__doc__ or "").strip().splitlines()[0]

    def callback(**params: Any) -> None:
        run(model, to_payload(model, params))

    return click.Command(name, callback=callback, params=list(command_options(model)), help=summary, short_help=summary)
