"""Commands of the log as tiles: `tiles export` for a static host, and `mirror`, a verified copy fetched from one."""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

import bootstrap
from cli import render
from cli.context import Settings, db_option, output_option, pass_settings
from presentation.text import count, number
from transparency import mirror as mirroring
from transparency import tiles
from transparency.errors import TransparencyError
from transparency.note import parse_verifier, read_checkpoint
from transparency.tiles import TileNotFound

TIMEOUT = 30
"""Seconds a fetch from the source may take."""


def http_fetcher(prefix: str, token: str | None) -> mirroring.Fetch:
    """Reads `PREFIX/path` over HTTP(S), with the bearer token when one is given; 404 is TileNotFound."""
    base = prefix.rstrip("/") + "/"

    def fetch(path: str) -> bytes:
        request = urllib.request.Request(base + path, headers={"Accept-Encoding": "identity", "User-Agent": "cluster-ledger-mirror"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise TileNotFound(f"source: {base + path}: not found (404)") from None
            raise TransparencyError(f"source: {base + path}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TransparencyError(f"source: {base + path}: cannot be fetched ({reason})") from None

    return fetch


def folder_fetcher(folder: Path) -> mirroring.Fetch:
    """Reads the files of an exported folder, as a static host would serve them."""

    def fetch(path: str) -> bytes:
        try:
            return (folder / path).read_bytes()
        except FileNotFoundError:
            raise TileNotFound(f"source: {str(folder / path)!r}: no such file") from None
        except OSError as error:
            raise TransparencyError(f"source: {str(folder / path)!r}: {error.strerror or error}") from None

    return fetch


def register(ledger: click.Group) -> None:
    """Add `tiles export` and `mirror` to the `ledger` group."""

    @ledger.group("tiles")
    def tiles_group() -> None:
        """The log as C2SP tlog-tiles files: its latest published checkpoint, hash tiles and entry bundles."""

    @tiles_group.command("export")
    @click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
    @db_option
    @output_option
    @pass_settings
    def export(settings: Settings, folder: Path) -> None:
        """Write the latest published checkpoint and its tiles into FOLDER, for any static web host; run again, it writes only what changed."""
        store = bootstrap.build_tree_store(settings.db)
        try:
            latest = store.published(1)
            if not latest:
                raise click.ClickException("checkpoint: this ledger has published no checkpoint; run `ledger checkpoint --sign KEY` first")
            size = read_checkpoint(latest[0].note).size
            tiles_total = sum(1 for _ in tiles.tiles_for(size))
            with render.progress(length=tiles_total, label="writing tiles", threshold=2_000) as bar:
                done = tiles.export(store, latest[0].note, size, folder, progress=bar.update)
        finally:
            store.close()
        if settings.output == "json":
            click.echo(json.dumps({"tree_size": size, "folder": str(folder), "written": done.written, "kept": done.kept,
                                   "checkpoint_written": done.checkpoint_written}, indent=2))
            return
        checkpoint = "checkpoint written" if done.checkpoint_written else "checkpoint unchanged"
        click.echo(f"exported the log at tree size {size} to {folder}: {count(done.written, 'file')} written, {number(done.kept)} already there, {checkpoint}")

    @ledger.command("mirror")
    @click.argument("prefix")
    @click.option("--verifier-key", "key", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="the source log's verifier key: its checkpoint must carry a valid signature by it")
    @click.option("--token", envvar="LEDGER_MIRROR_TOKEN", help="bearer token for a source served with `serve --token`; also $LEDGER_MIRROR_TOKEN")
    @db_option
    @output_option
    @pass_settings
    def mirror(settings: Settings, prefix: str, key: Path, token: str | None) -> None:
        """Copy a tiled log (PREFIX: http(s)://host/tlog, or an exported folder) into --db, checking every entry against its signed tree."""
        from cli.files import read_text

        verifier = parse_verifier(read_text(key, "verifier-key"))
        if prefix.startswith(("http://", "https://")):
            fetch = http_fetcher(prefix, token)
        elif Path(prefix).is_dir():
            prefix = str(Path(prefix).resolve())  # the mirror remembers its source wherever the next run starts
            fetch = folder_fetcher(Path(prefix))
        else:
            raise click.UsageError(f"PREFIX {prefix!r}: expected an http:// or https:// address, or an exported folder")
        store = bootstrap.build_tree_store(settings.db)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with contextlib.ExitStack() as stack:
            stack.callback(store.close)
            bar: list[Any] = []

            def started(was: int, size: int) -> None:
                # The bar appears once the checkpoint says how many entries are to come.
                bar.append(stack.enter_context(render.progress(length=size - was, label="mirroring", threshold=5_000)))

            done = mirroring.update(store, fetch, verifier, prefix, now=now, started=started, progress=lambda n: bar[0].update(n))
        cp, root = done.checkpoint, base64.b64encode(done.checkpoint.root).decode()
        if settings.output == "json":
            click.echo(json.dumps({"source": prefix, "fetched": done.fetched, "tree_size": cp.size, "root": root, "signed_by": verifier.name}, indent=2))
            return
        what = f"mirrored {count(done.fetched, 'new event')} from" if done.fetched else "up to date with"
        click.echo(f"{what} {prefix}: {count(cp.size, 'event')}, root {root}, checkpoint signed by {verifier.name}")


