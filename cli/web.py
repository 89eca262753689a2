"""The `serve` command: the auditor's browser view, served by uvicorn."""

from __future__ import annotations

import click

from cli.context import Settings, db_option, pass_settings, readable


def register(ledger: click.Group) -> None:
    """Add the `serve` command to the `ledger` group."""

    @ledger.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on (the default lets only this machine in)")
    @click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True, help="port to listen on")
    @click.option("--token", envvar="LEDGER_WEB_TOKEN", help="require this token on every request (Authorization: Bearer, or the sign-in form); also $LEDGER_WEB_TOKEN")
    @db_option
    @pass_settings
    def serve(settings: Settings, host: str, port: int, token: str | None) -> None:
        """Serve a read-only web view and JSON API of the figures, their events, records and the audit log."""
        import uvicorn

        from web.app import create_app

        db = readable(settings.db)
        if host not in ("127.0.0.1", "localhost", "::1") and not token:
            click.echo(f"warning: listening on {host} without --token: anyone who can reach it can read the ledger", err=True)
        uvicorn.run(create_app(db, token or None), host=host, port=port, log_level="warning", server_header=False)
