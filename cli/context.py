"""What every command shares: the database URL, the acting user and the signing key, and the options that set them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click

import bootstrap
from domain.errors import SigningRefused
from service_layer.ledger import NO_SIGNING_KEY, Ledger


@dataclass
class Settings:
    """The database URL, the acting user and the signing key file of this invocation."""

    db: str | None = None
    actor: str | None = None
    signing_key: str | None = None

    def ledger(self) -> Ledger:
        return bootstrap.build_ledger(self.db, signing_key=self.signing_key)

    def writing_ledger(self) -> Ledger:
        """The ledger, for a write: refused before the database is opened (or created) when no signing key is given."""
        if not (self.signing_key or os.environ.get("LEDGER_SIGNING_KEY")):
            raise SigningRefused(NO_SIGNING_KEY)
        return self.ledger()


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


def actor_option(f: Any) -> Any:
    """`--actor NAME`, accepted before or after the command name."""
    return click.option(
        "--actor",
        expose_value=False,
        callback=_remember("actor"),
        help="who records this (default: $LEDGER_ACTOR or the system user)",
        envvar="LEDGER_ACTOR",
    )(f)


def signing_key_option(f: Any) -> Any:
    """`--signing-key FILE`, accepted before or after the command name."""
    return click.option(
        "--signing-key",
        expose_value=False,
        callback=_remember("signing_key"),
        help="signer key file of an authorized writer, from `ledger keygen` (default: $LEDGER_SIGNING_KEY)",
    )(f)
