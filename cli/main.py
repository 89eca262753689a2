"""The `ledger` command: thin click commands that parse, call the ledger and render."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import ValidationError

import bootstrap
from cli import configuration, render, written
from cli.files import read_text
from cli.context import Settings, actor_option, db_option, output_option, pass_settings, signing_key_option
from cli.errors import describe
from cli.forms import make_command, option_names
from cli.lazy import LazyGroup
from domain.errors import ConcurrentChange, LedgerError
from domain.values import participation_ref
from presentation.text import count, number
from service_layer import commands as c
from service_layer import importing

if TYPE_CHECKING:
    from service_layer.ledger import Outcome


R = TypeVar("R")


class UsageMistake(click.ClickException):
    """A malformed setting, reported in one line with the exit status of a malformed command line."""

    exit_code = 2


def _loaded(module: str, error: str) -> tuple[type[Exception], ...]:
    """The error class `error` of `module` if the command loaded that module, else none: a module never loaded raised nothing
    (looked up only when an error is raised, so `ledger --help` loads neither the ledger, its store nor PostgreSQL's driver)."""
    loaded = sys.modules.get(module)
    return (getattr(loaded, error),) if loaded is not None else ()


class LedgerGroup(LazyGroup):
    """A group whose commands report user mistakes as one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with configuration.applied() as loaded:  # the one place the configuration file is read
                ctx.ensure_object(Settings).configuration = loaded
                return super().invoke(ctx)
        except _loaded("service_layer.ledger", "BatchFailed") as error:
            raise click.ClickException("\n".join(str(f.error) for f in error.failures)) from None
        except bootstrap.BadSetting as error:
            raise UsageMistake(_named_setting(ctx, str(error))) from None
        except LedgerError as error:
            raise click.ClickException(_named_setting(ctx, str(error))) from None
        except ValidationError as error:
            raise click.ClickException("\n".join(describe(error))) from None
        except (*_loaded("eventsourcing.persistence", "PersistenceError"), *_loaded("psycopg", "Error"), sqlite3.Error) as error:
            detail = " ".join(str(error).split())
            if "database is locked" in detail:  # SQLite's busy timeout ran out: said as PostgreSQL's lock timeout is
                settings = ctx.find_object(Settings) or Settings()
                seconds = bootstrap.persistence_env(bootstrap.database_url(settings.db))["SQLITE_LOCK_TIMEOUT"]
                raise click.ClickException(f"db: another write held the ledger for more than {seconds} s; nothing was written, run the command again") from None
            if "connection" in detail and not detail.startswith("cannot connect"):  # the pool says only that it waited: say where and why
                settings = ctx.find_object(Settings) or Settings()
                detail = bootstrap.diagnose(settings.db) or detail
            # Every write is one transaction, rolled back on any error (a forget that committed says so itself).
            written = "" if "nothing was written" in detail else "; nothing was written"
            raise click.ClickException(f"db: {bootstrap.describe(detail)}{written}") from None


def _named_setting(ctx: click.Context, message: str) -> str:
    """A message about the database URL names where the URL came from when no --db was given: `$LEDGER_DB`, or the
    configuration file's `db`."""
    settings = ctx.find_object(Settings) or Settings()
    if not message.startswith("db: ") or settings.db is not None:
        return message
    loaded = settings.configuration
    if loaded is not None and loaded.path is not None and "LEDGER_DB" in loaded.added:
        return f"{loaded.path}: db: " + message.removeprefix("db: ")
    if os.environ.get("LEDGER_DB"):
        return "$LEDGER_DB: " + message.removeprefix("db: ")
    return message


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@db_option
@actor_option
@signing_key_option
@click.version_option(package_name="cluster-ledger")
def ledger() -> None:
    """Cluster Ledger: every action on the cluster collaboration platform as an immutable event."""
    click.get_current_context().ensure_object(Settings)  # shared by every subcommand, and by error messages


def _run(model: type[c.Command], payload: dict[str, Any]) -> None:
    from service_layer.ledger import utc_now

    settings = click.get_current_context().find_object(Settings) or Settings()
    actor = settings.acting()
    defaulted = payload.get("occurred_at") is None
    if defaulted:
        payload["occurred_at"] = utc_now()
    try:
        command = model.model_validate(payload)
    except ValidationError as error:
        raise click.ClickException("\n".join(describe(error, names=option_names(model)))) from None
    if defaulted and not command.key:
        # Without --at the time is "now" on every run; the key must not change with it.
        command = command.model_copy(update={"key": f"now-{command.content_digest()}"})
    app = settings.writing_ledger()  # opened only for a valid command, so a mistake creates no file
    try:
        outcome = _with_retries(lambda: app.execute([command], actor=actor))
        if settings.output == "json":
            click.echo(json.dumps(written.document(app, outcome), indent=2))
            return
    finally:
        app.close()
    _first_writer(outcome)
    if outcome.events:
        click.echo(f"recorded {count(outcome.events, 'event')} at position {outcome.positions[0]}")
    else:
        click.echo("already recorded; nothing written")


def _first_writer(outcome: Outcome) -> None:
    """Say so when a write authorized its own key, being the first on an empty ledger."""
    if outcome.first_writer:
        where = f" at position {outcome.first_writer_position}" if outcome.first_writer_position else ""
        click.echo(f"first signed write on this ledger: writer {outcome.first_writer!r} authorized{where}")


def _with_retries(write: Callable[[], R], attempts: int = 3) -> R:
    """Run `write` again when another writer changed the same record first (it reloads each time)."""
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except ConcurrentChange:
            if attempt == attempts:
                raise
            click.echo(f"another writer changed the same record; retrying ({attempt}/{attempts - 1})", err=True)
    raise AssertionError("unreachable")


GROUPS: dict[str, tuple[str, dict[str, type[c.Command]]]] = {
    "org": ("Cluster organisation profiles.", {
        "register": c.RegisterOrg, "publish": c.PublishOrg, "update": c.UpdateOrg,
        "label": c.AwardLabel, "archive": c.ArchiveOrg,
    }),
    "activity": ("Activities: matchmaking events, talks, regional events, labs, academies, missions.", {
        "schedule": c.ScheduleActivity, "hold": c.HoldActivity, "cancel": c.CancelActivity,
    }),
    "person": ("People, known to events only by a pseudonymous reference.", {"register": c.RegisterPerson, "forget": c.ForgetPerson}),
    "participant": ("Registrations of organisations and people for activities.", {
        "register": c.RegisterParticipant, "attend": c.AttendActivity, "cancel": c.CancelRegistration,
    }),
    "meeting": ("Bilateral meetings at matchmaking events and missions.", {
        "request": c.RequestMeeting, "accept": c.AcceptMeeting, "decline": c.DeclineMeeting,
        "hold": c.HoldMeeting, "cancel": c.CancelMeeting,
    }),
    "pitch": ("Pitching sessions.", {"deliver": c.DeliverPitch}),
    "case": ("Cooperation cases, from identification to a joint project.", {
        "identify": c.IdentifyCase, "advance": c.AdvanceCase, "abandon": c.AbandonCase,
    }),
    "publication": ("Case studies, guides, country fact sheets and panorama reports.", {
        "publish": c.PublishPublication, "update": c.UpdatePublication,
    }),
}

for _group_name, (_help, _commands) in GROUPS.items():
    _group = click.Group(_group_name, help=_help, short_help=_help)
    for _name, _model in _commands.items():
        _group.add_command(output_option(signing_key_option(actor_option(db_option(make_command(_name, _model, _run))))))
    ledger.add_command(_group)


@ledger.command("import")
@click.argument("file")
@db_option
@actor_option
@signing_key_option
@output_option
@pass_settings
def import_(settings: Settings, file: str) -> None:
    """Import actions from a JSON Lines file: all of them, or none if any line is bad."""
    from service_layer.ledger import BatchFailed, Outcome

    actor = settings.acting()
    path = Path(file)
    if path.is_dir():
        raise click.ClickException(f"file: {file!r}: is a folder; expected a JSON Lines file")
    try:
        with path.open("rb") as stream:
            total = importing.count_lines(stream)
    except OSError as error:
        raise click.ClickException(f"file: {file!r}: {error.strerror or error}") from None

    by_action: Counter[str] = Counter()
    report: dict[str, Any] = {}

    def counted(actions: Iterator[tuple[int, c.Command]]) -> Iterator[tuple[int, c.Command]]:
        for line, command in actions:
            by_action[command.action] += 1  # type: ignore[attr-defined]  # every command model names its action
            yield line, command

    def attempt() -> tuple[Outcome, importing.Problems]:
        # The file is read again on each attempt, line by line.
        problems = importing.Problems()
        by_action.clear()
        with path.open("rb") as stream, render.progress(label="importing", length=total) as bar:
            actions = counted(importing.parse_lines(importing.read_lines(stream, problems, progress=bar.update), describe, problems))
            first = next(actions, None)
            if first is None and not problems:
                raise click.ClickException(f"file: {file!r}: holds no actions (every line is blank)")
            # The database is opened only now, so a file of blank lines creates no ledger. References and rules are checked
            # against the state the lines before would create; nothing is committed unless every line is good.
            app = settings.writing_ledger()
            try:
                outcome = app.execute_in_chunks(
                    itertools.chain([first] if first else [], actions), actor=actor,
                    failed=lambda number, error: problems.add(number, [str(error)]), keep=lambda: not problems,
                )
                if settings.output == "json" and not problems:
                    report.update(written.imported(app, outcome, file, by_action))
                return outcome, problems
            except BatchFailed:
                return Outcome(), problems
            finally:
                app.close()

    outcome, problems = _with_retries(attempt)
    if problems:
        for problem in problems.report():
            click.echo(f"error: {render.printable(problem)}", err=True)
        raise click.ClickException(f"{file}: {count(problems.lines, 'bad line')}; nothing was written")
    if report:
        click.echo(json.dumps(report, indent=2))
        return
    _first_writer(outcome)
    click.echo(f"imported {count(outcome.events + outcome.repeated, 'action')} from {file}: {count(outcome.events, 'event')} written, "
               f"{number(outcome.repeated)} already recorded")


@ledger.command()
@click.option("--seed", type=int, default=2024, show_default=True, help="random seed; the same seed writes the same history")
@click.option("--scale", type=click.FloatRange(min=0.002, max=10), default=1.0, show_default=True, help="size relative to the real platform (1 = about 1,500 clusters)")
@db_option
@signing_key_option
@output_option
@pass_settings
def demo(settings: Settings, seed: int, scale: float) -> None:
    """Write a synthetic 2024-2025 history calibrated on the published ECCP figures."""
    from service_layer.demo import DemoHistory, demo_signer, write_demo

    history = DemoHistory(seed=seed, scale=scale)
    url = bootstrap.database_url(settings.db)
    # The demo signs with the key given, else with a key of its own (demo.key beside a SQLite file, kept for writing more
    # into the demo; else made for this run only); either is authorized by its first write.
    given = settings.signing_key or os.environ.get("LEDGER_SIGNING_KEY")
    signer = None if given else demo_signer(bootstrap.persistence_env(url).get("SQLITE_DBNAME"))
    app = bootstrap.build_ledger(url, clock=history.clock, signing_key=given, signer=signer)
    try:
        if app.recorder.max_notification_id():
            raise click.ClickException(f"db: {url!r} already holds events; the demo needs an empty ledger")
        with render.progress(length=history.days, label="writing demo history", threshold=0) as bar:
            summary = write_demo(app, history, progress=bar.update)
    finally:
        app.close()
    if settings.output == "json":
        click.echo(json.dumps({"db": bootstrap.describe(url), "events": summary["events"],
                               "actions": {k: v for k, v in summary.items() if k != "events"}}, indent=2))
        return
    click.echo(render.demo_summary(summary, bootstrap.describe(url)))


@ledger.group()
def db() -> None:
    """The ledger's database: create its tables and guards."""


@db.command("init")
@click.option("--owner-url", help="PostgreSQL URL of the role that owns the schema; the role in --db then only reads and appends")
@click.option("--root-key", type=click.Path(dir_okay=False, path_type=Path),
              help="verifier key file (NAME.pub from `ledger keygen`) of the first writer, recorded unsigned as the trust anchor")
@db_option
@actor_option
@output_option
@pass_settings
def db_init(settings: Settings, owner_url: str | None, root_key: Path | None) -> None:
    """Create the ledger's tables (if missing) and the guards that keep stored events immutable; record the first writer."""
    url = bootstrap.database_url(settings.db)
    verifier = read_text(root_key, "root-key") if root_key is not None else None
    owner = bootstrap.init_database(url, owner_url)
    role = bootstrap.persistence_env(url).get("POSTGRES_USER") if owner_url else None
    text = settings.output == "text"
    if text:
        click.echo(f"ready: {bootstrap.describe(url)}; stored events refuse UPDATE and DELETE")
        if owner_url:
            click.echo(f"schema owned by {owner}; {role} may read and append, and cannot lift the guards")
    position = None
    if verifier is not None:
        app = settings.ledger()
        try:
            position = app.record_root_writer(verifier, settings.actor)
        finally:
            app.close()
    if not text:
        root = {"position": position, "key": verifier.strip()} if verifier is not None else None
        click.echo(json.dumps({"outcome": "ready", "db": bootstrap.describe(url), "guards": "stored events refuse UPDATE and DELETE",
                               "owner": owner if owner_url else None, "everyday_role": role, "root_writer": root}, indent=2))
    elif verifier is not None:
        click.echo(f"root writer recorded at position {position}: {verifier.strip()}")


@ledger.group()
def writer() -> None:
    """Writers: the keys whose signed writes the ledger accepts."""


@writer.command("authorize")
@click.argument("key_file", metavar="NAME.pub", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@actor_option
@signing_key_option
@output_option
@pass_settings
def writer_authorize(settings: Settings, key_file: Path) -> None:
    """Authorize the writer of a verifier key (from `ledger keygen`); signed by an authorized writer."""
    from service_layer.ledger import utc_now

    text = read_text(key_file, "key").strip()
    name = text.split("+", 1)[0]
    _run_one(settings, c.AuthorizeWriter(name=name, verifier=text, occurred_at=utc_now()), f"writer {name!r} authorized")


@writer.command("revoke")
@click.argument("name")
@click.option("--reason", default="", help="why the key is no longer accepted")
@db_option
@actor_option
@signing_key_option
@output_option
@pass_settings
def writer_revoke(settings: Settings, name: str, reason: str) -> None:
    """Revoke a writer: its key's signatures are refused from here on; signed by an authorized writer."""
    from service_layer.ledger import utc_now

    _run_one(settings, c.RevokeWriter(name=name, reason=reason, occurred_at=utc_now()), f"writer {name!r} revoked")


@writer.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="output format")
@db_option
@pass_settings
def writer_list(settings: Settings, fmt: str) -> None:
    """Every writer ever authorized, with its key and whether it is revoked."""
    app = settings.ledger()
    try:
        writers = app.writers()
    finally:
        app.close()
    if fmt == "json":
        click.echo(json.dumps([{"name": w.name, "status": "revoked" if w.revoked else "active", "key": w.verifier} for w in writers.values()], indent=2))
        return
    click.echo(render.table(("name", "status", "verifier key"), [(w.name, "revoked" if w.revoked else "active", w.verifier) for w in writers.values()]))


def _run_one(settings: Settings, command: c.Command, done: str) -> None:
    app = settings.writing_ledger()
    try:
        outcome = _with_retries(lambda: app.execute([command], actor=settings.actor))
        if settings.output == "json":
            click.echo(json.dumps(written.document(app, outcome), indent=2))
            return
    finally:
        app.close()
    _first_writer(outcome)
    click.echo(f"{done} at position {outcome.positions[-1]}" if outcome.events else "already recorded; nothing written")


@db.command("compact")
@db_option
@output_option
@pass_settings
def db_compact(settings: Settings) -> None:
    """Empty SQLite's write-ahead log into the file, so nothing erased survives there (after a forget that could not)."""
    bootstrap.require_ledger(settings.db)
    app = settings.ledger()
    try:
        compact = getattr(app.recorder, "compact", None)
        if compact is None:
            raise click.ClickException("db: only a SQLite ledger keeps a write-ahead log of its own to compact")
        done = compact()
        click.echo(json.dumps({"outcome": "compacted", "message": done}, indent=2) if settings.output == "json" else done)
    finally:
        app.close()


@db.command("grant-auditor")
@click.argument("role")
@click.option("--owner-url", required=True, help="PostgreSQL URL of the role that owns the schema (it grants)")
@db_option
@output_option
@pass_settings
def db_grant_auditor(settings: Settings, role: str, owner_url: str) -> None:
    """Let ROLE read what reports, traces, histories, audits, verify and serve read, and nothing personal; read-only."""
    granted = bootstrap.grant_auditor(settings.db, owner_url, role)
    if settings.output == "json":
        click.echo(json.dumps({"role": role, "granted": list(granted), "personal_data": "not granted"}, indent=2))
        return
    click.echo(f"read-only access granted on {', '.join(granted)} (and on tables the owner adds later); nothing on personal_data")


@db.command("check")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="output format")
@db_option
@pass_settings
def db_check(settings: Settings, fmt: str) -> None:
    """List the stored event types and versions and whether this code can read each, and fold every event as a rebuild
    would (writing nothing); exit 1 if any cannot be read or replayed."""
    from service_layer import log_check

    app = settings.reader()
    try:
        found = log_check.check(app.recorder)
        problems = log_check.dry_run(app.recorder)
    finally:
        app.close()
    click.echo(render.stored_types(found, fmt))
    for problem in problems:
        click.echo(f"cannot replay ({problem.kind}): {count(problem.count, 'event')}; first: {render.printable(problem.message)}", err=True)
    unreadable = [t for t in found if not t.readable]
    if unreadable:
        first = unreadable[0]
        raise click.ClickException(
            f"{count(len(unreadable), 'stored type')} cannot be read by this code; first: {first.topic} version {first.version} "
            f"at position {first.first_position}: {first.problem}"
        )
    if problems:
        raise click.ClickException(f"{count(sum(p.count for p in problems), 'stored event')} cannot be replayed; first: {render.printable(problems[0].message)}")


@ledger.command()
@click.argument("ref")
@click.option("--activity", help="the activity REF takes part in: REF is then a participant (organisation or person)")
@click.option("--as-of", "as_of", help="show only events recorded by then (ISO timestamp)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="output format")
@db_option
@pass_settings
def history(settings: Settings, ref: str, activity: str | None, as_of: str | None, fmt: str) -> None:
    """Every event of one record (organisation, activity, meeting, case...), oldest first."""
    if activity:
        ref = participation_ref(activity, ref)
    until = render.parse_moment("as-of", as_of, past=True) if as_of else None
    app = settings.reader()
    try:
        events = app.aggregate_events(ref, until=until)
        signed_by = app.recorded_by(ref)
    finally:
        app.close()
    click.echo(render.history(events, fmt, signed_by))


# The commands of cli.audit, cli.configuration, cli.lookup, cli.reporting, cli.streaming, cli.tlog, cli.transparency and
# cli.web are added when named (cli/lazy.py), so a command starts without the libraries of the others.


def main() -> None:
    """Console entry point."""
    ledger(prog_name="ledger")


if __name__ == "__main__":
    sys.exit(main())
