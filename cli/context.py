"""What every command shares: the database URL, the acting user and the signing key, and the options that set them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

import bootstrap
from domain.errors import SigningRefused
from domain.inputs import checked_actor

if TYPE_CHECKING:
    from service_layer.ledger import Ledger

if TYPE_CHECKING:
    from cli.configuration import Loaded


@dataclass
class Settings:
    """The database URL, the acting user and the signing key file of this invocation."""

    db: str | None = None
    actor: str | None = None
    actor_from: str = "actor"
    """Where the actor was given, as its errors name it: `actor` (the option) or `$LEDGER_ACTOR`."""
    signing_key: str | None = None
    output: str = "text"
    """How a write (or a check) says what it did: `text` (lines) or `json` (one document on stdout)."""
    configuration: Loaded | None = None
    """The configuration file this invocation runs with, and the environment variables it set."""

    def ledger(self) -> Ledger:
        bootstrap.reach(self.db, notice)
        return bootstrap.build_ledger(self.db, signing_key=self.signing_key)

    def writing_ledger(self) -> Ledger:
        """The ledger, for a write: refused before the database is opened (or created) when no signing key is given."""
        from service_layer.ledger import NO_SIGNING_KEY

        if not (self.signing_key or os.environ.get("LEDGER_SIGNING_KEY")):
            raise SigningRefused(NO_SIGNING_KEY)
        return self.ledger()

    def acting(self) -> str | None:
        """The actor given, held to the rules an import line's actor gets (InvalidValue if it breaks one); None if none was given."""
        return None if self.actor is None else checked_actor(self.actor, self.actor_from)

    def reader(self) -> Ledger:
        """The ledger of a command that only reads: refused in one line, never created, where none is stored."""
        return bootstrap.build_ledger(readable(self.db))


def readable(db: str | None) -> str:
    """The URL a command that only reads uses: the ledger's, or a temporary copy's (said in one line); NoLedger if none."""
    target = bootstrap.require_ledger(db, notice)
    if target.note:
        click.echo(target.note, err=True)
    return target.url


def notice(line: str) -> None:
    """A line on stderr about what is being done, while the user waits."""
    click.echo(line, err=True)


pass_settings = click.make_pass_decorator(Settings, ensure=True)


def _remember(field: str) -> Any:
    def callback(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
        if value is not None:
            setattr(ctx.ensure_object(Settings), field, value)

    return callback


def db_option(f: Any) -> Any:
    """`--db URL`, accepted before or after the command name."""
    return click.option(
        "--db",
        expose_value=False,
        callback=_remember("db"),
        help="database URL, e.g. sqlite:///ledger.db (default: $LEDGER_DB or ./ledger.db)",
    )(f)


def _remember_actor(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    settings = ctx.ensure_object(Settings)
    from_env = ctx.get_parameter_source("actor") is ParameterSource.ENVIRONMENT
    if value is None and settings.actor is None and os.environ.get("LEDGER_ACTOR") == "":
        # click reads an empty variable as unset; an empty actor is refused, never taken as the system user.
        value, from_env = "", True
    if value is not None:
        settings.actor, settings.actor_from = value, "$LEDGER_ACTOR" if from_env else "actor"
        loaded = settings.configuration
        if from_env and loaded is not None and "LEDGER_ACTOR" in loaded.added:  # the file's value, not the environment's
            settings.actor_from = f"{loaded.path}: actor"


def actor_option(f: Any) -> Any:
    """`--actor NAME`, accepted before or after the command name."""
    return click.option(
        "--actor",
        expose_value=False,
        callback=_remember_actor,
        help="who records this (default: $LEDGER_ACTOR or the system user)",
        envvar="LEDGER_ACTOR",
    )(f)


def output_option(f: Any) -> Any:
    """`--format text|json` of a command that writes or checks: lines of text, or one JSON document of what it did."""
    return click.option(
        "--format",
        expose_value=False,
        type=click.Choice(["text", "json"]),
        callback=_remember("output"),
        help="output format: lines of text, or one JSON document (a write's: outcome, positions, events, writer key)  [default: text]",
    )(f)


def wants_json() -> bool:
    """Whether this invocation asked for `--format json` through `output_option`."""
    settings = click.get_current_context().find_object(Settings)
    return settings is not None and settings.output == "json"


def signing_key_option(f: Any) -> Any:
    """`--signing-key FILE`, accepted before or after the command name."""
    return click.option(
        "--signing-key",
        expose_value=False,
        callback=_remember("signing_key"),
        help="signer key file of an authorized writer, from `ledger keygen` (default: $LEDGER_SIGNING_KEY)",
    )(f)
