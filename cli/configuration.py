"""The configuration file, ledger.toml: settings that stand below the environment and the flags, and where each came from."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from bootstrap import BadSetting, describe
from cli import render
from cli.context import Settings, actor_option, db_option, pass_settings, signing_key_option

FILE_NAME = "ledger.toml"
SETTINGS = {
    "db": "LEDGER_DB",
    "actor": "LEDGER_ACTOR",
    "signing_key": "LEDGER_SIGNING_KEY",
    "kafka": "LEDGER_KAFKA",
    "topic": "LEDGER_TOPIC",
    "web_token": "LEDGER_WEB_TOKEN",
    "mirror_token": "LEDGER_MIRROR_TOKEN",
    "log_level": "LEDGER_LOG_LEVEL",
}
"""Each key of the file, and the environment variable that overrides it (and that the code reads)."""
FLAGS = {"db": "--db", "actor": "--actor", "signing_key": "--signing-key", "kafka": "--bootstrap", "topic": "--topic",
         "web_token": "--token (serve)", "mirror_token": "--token (mirror)"}
"""The flag that overrides each setting, on the commands that take it."""
DEFAULTS = {"db": "sqlite:///ledger.db", "actor": "the system user", "kafka": "127.0.0.1:9092", "topic": "ledger.events", "log_level": "INFO"}
SECRETS = {"web_token", "mirror_token"}
"""Settings shown masked: whoever sees the output must not learn them."""


class BadConfiguration(BadSetting):
    """A configuration file that cannot be read, or that holds an unknown key or a value of the wrong type."""

    def __init__(self, path: Path, key: str | None, value: object, reason: str) -> None:
        super().__init__(f"{path}: {key}" if key else str(path), value, reason)
        if key is None:
            self.args = (f"{path}: {reason}",)


def find(folder: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The configuration file: ledger.toml in the working folder (named as such), else in the user's configuration folder;
    None if neither."""
    environ = os.environ if env is None else env
    here = Path(FILE_NAME) if folder is None else folder / FILE_NAME
    if here.is_file():
        return here
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    user = base / "ledger" / FILE_NAME
    return user if user.is_file() else None


def read(path: Path) -> dict[str, str]:
    """The settings in the file at `path`; BadConfiguration, naming the file, the key and the value, for anything wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BadConfiguration(path, None, None, f"cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise BadConfiguration(path, None, None, "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise BadConfiguration(path, None, None, f"is not valid TOML ({error})") from None
    found: dict[str, str] = {}
    for key, value in data.items():
        if key not in SETTINGS:
            raise BadConfiguration(path, key, value, f"unknown setting (one of: {', '.join(SETTINGS)})")
        if not isinstance(value, str):
            raise BadConfiguration(path, key, value, "expected a string in quotes")
        found[key] = value
    return found


@dataclass(frozen=True)
class Loaded:
    """The configuration file a command runs with (None if there is none), and the variables it set."""

    path: Path | None = None
    added: frozenset[str] = frozenset()


@contextmanager
def applied(env: MutableMapping[str, str] | None = None) -> Iterator[Loaded]:
    """While a command runs, the file's settings stand where the environment gives none, so flags and the environment win
    everywhere a setting is read; the environment is as it was afterwards."""
    environ = os.environ if env is None else env
    path = find(env=environ)
    settings = read(path) if path is not None else {}
    added = frozenset(SETTINGS[key] for key in settings if SETTINGS[key] not in environ)
    for key, value in settings.items():
        environ.setdefault(SETTINGS[key], value)
    try:
        yield Loaded(path, added)
    finally:
        for name in added:
            environ.pop(name, None)


@dataclass(frozen=True)
class Shown:
    """One setting as `ledger config show` gives it: its value (masked where secret) and where it came from."""

    name: str
    value: str | None
    source: str


def show(flags: Mapping[str, str | None], environment: Mapping[str, str], loaded: Loaded) -> list[Shown]:
    """Each setting's value and source: a flag, the environment (as it was before the file was applied), the file, or the default."""
    path = loaded.path
    in_file = read(path) if path is not None else {}
    environment = {k: v for k, v in environment.items() if k not in loaded.added}
    shown = []
    for key, variable in SETTINGS.items():
        if flags.get(key) is not None:
            value, source = flags[key], f"flag {FLAGS[key]}"
        elif variable in environment:
            value, source = environment[variable], f"environment ${variable}"
        elif key in in_file:
            value, source = in_file[key], f"file {path}"
        else:
            value, source = DEFAULTS.get(key), "default"
        shown.append(Shown(key, _masked(key, value), source))
    return shown


def _masked(key: str, value: str | None) -> str | None:
    if value is None:
        return None
    if key in SECRETS:
        return "***"
    return describe(value) if "://" in value else value


def register(ledger: click.Group) -> None:
    """Add the `config` group to the `ledger` group."""

    @ledger.group()
    def config() -> None:
        """The configuration file (ledger.toml), below the environment and the flags."""

    @config.command("show")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="output format")
    @db_option
    @actor_option
    @signing_key_option
    @pass_settings
    def show_settings(settings: Settings, fmt: str) -> None:
        """Each setting, its value (passwords and tokens masked) and where it came from: flag, environment, file or default."""
        flags = {"db": settings.db, "signing_key": settings.signing_key, "actor": settings.actor if settings.actor_from == "actor" else None}
        loaded = settings.configuration or Loaded()
        found = show(flags, os.environ, loaded)
        if fmt == "json":
            click.echo(json.dumps({"file": str(loaded.path) if loaded.path else None, "settings": [vars(s) for s in found]}, indent=2))
            return
        click.echo(f"file: {loaded.path or f'none ({FILE_NAME} in this folder, else in the user configuration folder)'}")
        click.echo(render.table(("setting", "value", "source"), [(s.name, "-" if s.value is None else s.value, s.source) for s in found]))
