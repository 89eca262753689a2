"""Commands loaded when named: each module that adds commands is imported only when one of its commands runs."""

from __future__ import annotations

import importlib
from typing import Any

import click

LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    # command: (module whose `register(group)` adds it, the first paragraph of its help, as `ledger --help` lists it)
    "project": ("cli.reporting", "Catch every projection up with the ledger (or rebuild it)."),
    "report": ("cli.reporting", "Reports for reporting jobs: impact figures and country fact sheets."),
    "trace": ("cli.reporting", "The events behind one figure, so it can be checked by hand."),
    "list": ("cli.lookup", "The records of one kind (orgs, activities, participants, meetings...) in their current state, filtered."),
    "show": ("cli.lookup", "One record's current state (organisation, activity, participant, meeting, case...), or its state at a moment."),
    "config": ("cli.configuration", "The configuration file (ledger.toml), below the environment and the flags."),
    "audit": ("cli.audit", "Audit trail: what was recorded, when, by whom."),
    "relay": ("cli.streaming", "Create the topic if needed and publish ledger events to it (keyed by aggregate id); runs until stopped."),
    "consume": ("cli.streaming", "Build a PostgreSQL read model from Kafka, offsets stored with each change; waits for the relay to create the topic."),
    "keygen": ("cli.transparency", "Write a new Ed25519 signer key and its verifier key in the signed-note formats."),
    "checkpoint": ("cli.transparency", "Catch the tree up and print its checkpoint: origin, tree size and root hash; --sign signs and publishes it (`tiles`, `serve`), cosigned by witnesses."),
    "prove": ("cli.transparency", "Print an inclusion proof (POSITION --checkpoint) or a consistency proof (--from --to) as JSON; an inclusion proof also as a C2SP tlog-proof."),
    "verify-proof": ("cli.transparency", "Check a proof (JSON, or a C2SP tlog-proof) against checkpoints, with no database at all."),
    "verify": ("cli.transparency", "Re-read and re-hash every stored event; compare with the stored tree and a checkpoint; exit 1 on any divergence."),
    "tiles": ("cli.tlog", "The log as C2SP tlog-tiles files: its latest published checkpoint, hash tiles and entry bundles."),
    "mirror": ("cli.tlog", "Copy a tiled log (PREFIX: http(s)://host/tlog, or an exported folder) into --db, checking every entry against its signed tree."),
    "serve": ("cli.web", "Serve a read-only web view and JSON API of the figures, their events, records and the audit log."),
}
"""Every command added by a module of its own; a test keeps it equal to what the modules add."""


class LazyGroup(click.Group):
    """A group whose commands from `LAZY_COMMANDS` are added by importing their module when one is named: the heavy libraries
    they use (PostgreSQL's driver, Kafka, cryptography, the web server) load only for the commands that use them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()
        self._listing = False

    def load(self, module: str) -> None:
        """Import `module` and add its commands to this group (once)."""
        if module not in self._loaded:
            self._loaded.add(module)
            importlib.import_module(module).register(self)

    def load_all(self) -> None:
        """Add every command of every module."""
        for module, _ in LAZY_COMMANDS.values():
            self.load(module)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            if cmd_name in LAZY_COMMANDS:
                if self._listing:  # the listing shows its help line from the table, so `ledger --help` imports no module
                    return click.Command(cmd_name, help=LAZY_COMMANDS[cmd_name][1])
                self.load(LAZY_COMMANDS[cmd_name][0])
            else:
                self.load_all()  # a command missing from the table still runs
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False
