"""The `serve` command: the auditor's browser view, served by uvicorn."""

from __future__ import annotations

import click

from cli.context import Settings, db_option, pass_settings, readable


def register(ledger: click.Group) -> None:
    """Add the `serve` command to the `ledger` group."""

    @ledger.command()
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="address to listen on; the default lets only this machine in, another needs --tls-cert/--tls-key and a strong --token, or --behind-proxy")
    @click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True, help="port to listen on (0: any free port, shown at start)")
    @click.option("--token", envvar="LEDGER_WEB_TOKEN",
                  help="require this token on every request (Authorization: Bearer, or the sign-in form); also $LEDGER_WEB_TOKEN; "
                       "at least 128 bits off this machine (22 base64 characters, or 32 hex digits)")
    @click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="serve HTTPS with this PEM certificate (and --tls-key)")
    @click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="the PEM private key of --tls-cert")
    @click.option("--behind-proxy", is_flag=True,
                  help="a reverse proxy on this machine serves HTTPS (and may sign people in): another --host needs no TLS or token here, "
                       "though a token given must still hold 128 bits")
    @click.option("--allowed-host", multiple=True, metavar="NAME[:PORT]",
                  help="also answer requests whose Host header is NAME (any port, or only PORT); repeatable. This machine's names always are")
    @click.option("--session-hours", type=click.FloatRange(min=0, min_open=True, max=24 * 366), default=8, show_default=True,
                  help="a browser's sign-in lasts this long; sign-out ends it sooner")
    @db_option
    @pass_settings
    def serve(settings: Settings, host: str, port: int, token: str | None, tls_cert: str | None, tls_key: str | None, behind_proxy: bool,
              allowed_host: tuple[str, ...], session_hours: float) -> None:
        """Serve a read-only web view and JSON API of the figures, their events, records and the audit log."""
        import bootstrap
        from web import server
        from web.app import create_app
        from web.security import HostCheck, Sessions, is_loopback, require_safe

        token = token or None
        if (tls_cert is None) != (tls_key is None):
            raise click.ClickException("tls-cert: TLS needs both --tls-cert and --tls-key")
        require_safe(host, tls_cert is not None, token, behind_proxy)
        if not is_loopback(host) and behind_proxy and token is None:
            click.echo(f"note: listening on {host} without --token: whoever the proxy lets through can read the ledger", err=True)
        if host in ("0.0.0.0", "::") and not allowed_host:
            click.echo(f"note: listening on {host}, but only requests naming this machine's loopback names in Host are answered; "
                       "give the name clients use with --allowed-host NAME", err=True)
        db = readable(settings.db)
        server.check_database(db)
        listener = server.Listener(host, port, tls_cert, tls_key)
        sock = server.listen(host, port)
        hosts = HostCheck(host, sock.getsockname()[1], allowed_host, tls=listener.tls)
        app = create_app(db, token, hosts=hosts, sessions=Sessions(session_hours), secure=listener.tls or behind_proxy)
        served = server.configured(app, listener, sock, behind_proxy)
        click.echo(f"serving {bootstrap.describe(db)} at {server.url(listener, sock)}" + (" (token required)" if token else ""))
        served.run(sockets=[sock])
