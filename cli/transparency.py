"""Commands of the transparency log: keys, signed checkpoints, proofs and full verification."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click
from click.core import ParameterSource

import bootstrap
from cli import publishing, render
from cli.context import Settings, db_option, output_option, pass_settings, readable, wants_json
from cli.files import write_whole, read_text
from presentation.text import count
from transparency import audit, log
from transparency.errors import TransparencyError
from transparency.leaf import parse_leaf
from transparency.note import Checkpoint, Signer, Verifier, parse_signer, parse_verifier, read_checkpoint, split_note
from transparency.policy import Policy, parse_policy
from transparency.policy import check as check_policy
from transparency.proofs import ConsistencyProof, InclusionProof, check_consistency, check_inclusion, parse_proof
from transparency.store import TreeStore
from transparency.tlogproof import from_inclusion, is_tlog_proof, parse_tlog_proof, to_inclusion


LISTED = 50
"""How many published checkpoints `checkpoint --list` shows."""


def _policy(path: Path | None) -> Policy | None:
    return None if path is None else parse_policy(read_text(path, "policy"))


def _verifier(path: Path | None) -> Verifier | None:
    return None if path is None else parse_verifier(read_text(path, "verifier-key"))


def _checkpoint(path: Path, verifier: Verifier | None, what: str = "checkpoint", policy: Policy | None = None,
                err: bool = False) -> Checkpoint:
    """A checkpoint from a file, its signature checked with `verifier`, or its signatures and quorum with `policy`."""
    return _checkpoint_in(read_text(path, what), str(path), verifier, what, policy, err)


def _checkpoint_in(text: str, where: str, verifier: Verifier | None, what: str = "checkpoint", policy: Policy | None = None,
                   err: bool = False) -> Checkpoint:
    """`_checkpoint` of a checkpoint's text, read from `where` (a file, or the proof that carries it)."""
    try:
        if policy is None:
            return read_checkpoint(text, verifier)
        witnessed = check_policy(policy, text, verifier)
    except TransparencyError as error:
        raise click.ClickException(f"{what}: {where!r}: {error}") from None
    for line in witnessed.lines():
        click.echo(f"{what}: {line}", err=err)
    problem = witnessed.problem()
    if problem is not None:
        raise click.ClickException(f"{what}: {where!r}: {problem}")
    return witnessed.checkpoint


def _write(text: str, out: Path | None, json_asked: bool = False) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    write_whole(out, text, what="out")
    click.echo(f"wrote {out}", err=json_asked or wants_json())  # where JSON is asked for, stdout holds nothing else


def _note_json(note: str) -> str:
    """A checkpoint as a JSON document: origin, tree size, root, signers and the note itself, as signed."""
    cp = read_checkpoint(note)
    signers = [s.name for s in split_note(note)[1]] if "\n\n" in note else []
    return json.dumps({"origin": cp.origin, "tree_size": cp.size, "root": base64.b64encode(cp.root).decode(), "signed_by": signers,
                       "note": note}, indent=2) + "\n"


def _tree_store(db: str | None) -> TreeStore:
    """The tree beside an existing ledger; a database that holds no ledger is refused, never created."""
    return bootstrap.build_tree_store(readable(db))


def _caught_up(store: TreeStore) -> None:
    """Add the events the tree lacks, with a progress bar when they are many (a ledger's first use)."""
    last = store.last_leaf()
    behind = store.last_position() - (last.position if last else 0)
    with render.catching_up("adding events to the tree", max(behind, 0), label="adding events to the tree", threshold=20_000) as bar:
        log.catch_up(store, progress=bar.update)
    if store.size() == 0:
        # A Kafka read model's schema, or a ledger before its first event: an empty tree proves nothing.
        click.echo("note: this database holds no stored events (an empty ledger, or a read model built by Kafka consumers); "
                   "the tree is empty", err=True)


def _list_published(settings: Settings) -> None:
    store = _tree_store(settings.db)
    try:
        published = store.published(LISTED)
    finally:
        store.close()
    if wants_json():
        click.echo(json.dumps([{"number": p.number, "published_at": str(p.published_at), **json.loads(_note_json(p.note))} for p in published], indent=2))
        return
    if not published:
        click.echo("no checkpoint published yet: `ledger checkpoint --sign KEY` publishes one")
        return
    for p in published:
        cp = read_checkpoint(p.note)
        signers = ", ".join(s.name for s in split_note(p.note)[1])
        click.echo(f"#{p.number}  {p.published_at}  {cp.origin}  tree size {cp.size}  root {base64.b64encode(cp.root).decode()}  signed by {signers}")


def register(ledger: click.Group) -> None:
    """Add keygen, checkpoint, prove, verify-proof and verify to the `ledger` group."""

    @ledger.command()
    @click.argument("name")
    @click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True,
                  help="folder to write NAME.key (signer) and NAME.pub (verifier) into")
    @output_option
    def keygen(name: str, folder: Path) -> None:
        """Write a new Ed25519 signer key and its verifier key in the signed-note formats."""
        signer = Signer.generate(name)
        safe = name.replace("/", "_")
        private, public = folder / f"{safe}.key", folder / f"{safe}.pub"
        if not folder.is_dir():
            raise click.ClickException(f"dir: {str(folder)!r}: no such folder; nothing was written")
        if private.exists():
            raise click.ClickException(f"name: {str(private)!r} already exists; keys are never overwritten")
        write_whole(private, signer.encode() + "\n", what="name", mode=0o600, exclusive=True)
        try:
            write_whole(public, signer.verifier.encode() + "\n", what="name")
        except click.ClickException:
            private.unlink()  # a signer key without its verifier key is of no use: neither is left
            raise
        if wants_json():
            click.echo(json.dumps({"name": name, "signer_key_file": str(private), "verifier_key_file": str(public),
                                   "verifier_key": signer.verifier.encode()}, indent=2))
            return
        click.echo(f"signer key (keep secret): {private}\nverifier key (publish): {public}\n{signer.verifier.encode()}")

    @ledger.command("checkpoint")
    @click.option("--sign", "key", type=click.Path(dir_okay=False, path_type=Path), help="signer key file from `ledger keygen`; its name is the origin")
    @click.option("--origin", help=f"origin line (default: the signer key's name, or {log.DEFAULT_ORIGIN} unsigned)")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the checkpoint to this file instead of printing it")
    @click.option("--witness", "urls", multiple=True, help="a C2SP tlog-witness submission URL to cosign the checkpoint (repeatable)")
    @click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="C2SP tlog-policy file: its witnesses with URLs are asked, their keys checked and its quorum required")
    @click.option("--quorum", type=click.IntRange(min=0), help="publish only with at least this many (valid) cosignatures")
    @click.option("--every", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                  help="keep running: publish to --out whenever the log has grown, checking every SECONDS; stop on SIGTERM")
    @click.option("--witness-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
                  metavar="SECONDS", help="how long to wait for each witness's answer")
    @click.option("--list", "listing", is_flag=True, help="list the signed checkpoints this ledger has published, the newest first, and stop")
    @db_option
    @output_option
    @pass_settings
    def checkpoint(settings: Settings, key: Path | None, origin: str | None, out: Path | None, urls: tuple[str, ...],
                   policy_file: Path | None, quorum: int | None, every: float | None, witness_timeout: float, listing: bool) -> None:
        """Catch the tree up and print its checkpoint: origin, tree size and root hash; --sign signs and publishes it (`tiles`,
        `serve`), cosigned by witnesses."""
        if listing:
            _list_published(settings)
            return
        signer = parse_signer(read_text(key, "sign")) if key else None
        policy = _policy(policy_file)
        witnesses = publishing.witnesses(policy, urls)
        if (witnesses or quorum is not None or every is not None) and signer is None:
            raise click.UsageError("witnesses, --quorum and --every publish signed checkpoints: give --sign KEY")
        if policy is not None and not witnesses:
            raise click.UsageError("--policy: no witness in it has a URL; give --witness URL")
        if every is not None and out is None:
            raise click.UsageError("--every publishes to a file: give --out FILE")
        if every is not None and wants_json():
            raise click.UsageError("--every keeps running and says what it publishes line by line: --format json is for one checkpoint")
        if every is not None and out is not None and not out.resolve().parent.is_dir():
            raise click.UsageError(f"--out: {str(out)!r}: its folder does not exist")
        if signer is None:
            store = _tree_store(settings.db)
            try:
                _caught_up(store)
                cp = log.checkpoint(store, origin or log.DEFAULT_ORIGIN)
            finally:
                store.close()
            _write(_note_json(cp.body()) if wants_json() else cp.body(), out)
            return
        rules = publishing.Rules(signer, origin or signer.name, tuple(witnesses), policy, quorum, witness_timeout)
        if every is not None and out is not None:
            publishing.run_schedule(settings.db, rules, out, every, echo=lambda line: click.echo(line))
            return
        store = _tree_store(settings.db)
        try:
            source = store.mirror_source()
            if signer is not None and source is not None:
                raise click.ClickException(f"db: this ledger is a read-only mirror of {source[0]}; it serves the checkpoints that log signed")
            _caught_up(store)
            published = publishing.publish(store, rules, {}, echo=lambda line: click.echo(line, err=True))
        finally:
            store.close()
        _write(_note_json(published.note) if wants_json() else published.note, out)
        if witnesses:
            click.echo(publishing.cosigned_line(rules, published), err=True)

    @ledger.command()
    @click.argument("position", type=int, required=False)
    @click.option("--checkpoint", "cp_file", type=click.Path(dir_okay=False, path_type=Path), help="the checkpoint whose tree the event is proven in")
    @click.option("--from", "old_file", type=click.Path(dir_okay=False, path_type=Path), help="the older checkpoint of a consistency proof")
    @click.option("--to", "new_file", type=click.Path(dir_okay=False, path_type=Path), help="the newer checkpoint of a consistency proof")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the proof to this file instead of printing it")
    @click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="C2SP tlog-policy file: prove only from checkpoints signed by its logs and cosigned by its quorum")
    @click.option("--format", "fmt", type=click.Choice(["json", "tlog-proof"]), default="json", show_default=True,
                  help="an inclusion proof as JSON, or as a C2SP tlog-proof carrying its signed checkpoint")
    @db_option
    @pass_settings
    def prove(settings: Settings, position: int | None, cp_file: Path | None, old_file: Path | None, new_file: Path | None,
              out: Path | None, policy_file: Path | None, fmt: str) -> None:
        """Print an inclusion proof (POSITION --checkpoint) or a consistency proof (--from --to) as JSON; an inclusion proof
        also as a C2SP tlog-proof."""
        policy = _policy(policy_file)
        if fmt == "tlog-proof" and (position is None or cp_file is None):
            raise click.UsageError("--format tlog-proof writes inclusion proofs: give POSITION --checkpoint FILE")
        if position is not None and cp_file is not None and old_file is None and new_file is None:
            cp = _checkpoint(cp_file, None, policy=policy, err=True)
            store = _tree_store(settings.db)
            try:
                proof = log.prove_inclusion(store, position, cp)
            finally:
                store.close()
        elif position is None and cp_file is None and old_file is not None and new_file is not None:
            old, new = _checkpoint(old_file, None, "from", policy, err=True), _checkpoint(new_file, None, "to", policy, err=True)
            store = _tree_store(settings.db)
            try:
                proof = log.prove_consistency(store, old, new)
            finally:
                store.close()
        else:
            raise click.UsageError("give POSITION --checkpoint FILE for an inclusion proof, or --from FILE --to FILE for a consistency proof")
        if fmt == "tlog-proof" and cp_file is not None and isinstance(proof, InclusionProof):
            _write(from_inclusion(proof, read_text(cp_file, "checkpoint")).text(), out)
            return
        asked = click.get_current_context().get_parameter_source("fmt") is ParameterSource.COMMANDLINE
        _write(proof.model_dump_json(indent=2) + "\n", out, json_asked=asked)

    @ledger.command("verify-proof")
    @click.argument("proof_file", metavar="PROOF", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--checkpoint", "cp_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="the checkpoint the proof leads to (the newer one for a consistency proof); a tlog-proof carries its own, "
                       "which must then be this one")
    @click.option("--old-checkpoint", "old_file", type=click.Path(dir_okay=False, path_type=Path), help="the older checkpoint of a consistency proof")
    @click.option("--verifier-key", "key", type=click.Path(dir_okay=False, path_type=Path), help="check the checkpoints' signatures with this verifier key")
    @click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="C2SP tlog-policy file: the checkpoints must be signed by its logs and cosigned by its quorum")
    @output_option
    def verify_proof(proof_file: Path, cp_file: Path | None, old_file: Path | None, key: Path | None, policy_file: Path | None) -> None:
        """Check a proof (JSON, or a C2SP tlog-proof) against checkpoints, with no database at all."""
        verifier = _verifier(key)
        policy = _policy(policy_file)
        text = read_text(proof_file, "proof")
        if is_tlog_proof(text):
            tlog_proof = parse_tlog_proof(text)
            proof, carried = to_inclusion(tlog_proof)
            if cp_file is not None and read_checkpoint(read_text(cp_file, "checkpoint")) != carried:
                raise click.ClickException(f"checkpoint: {str(cp_file)!r}: not the checkpoint the tlog-proof carries "
                                           f"(tree size {carried.size}, root {base64.b64encode(carried.root).decode()})")
            cp = _checkpoint_in(tlog_proof.checkpoint, str(proof_file), verifier, policy=policy)
        else:
            if cp_file is None:
                raise click.UsageError("a JSON proof needs --checkpoint FILE (a tlog-proof carries its own)")
            proof = parse_proof(text)
            cp = _checkpoint(cp_file, verifier, policy=policy)
        if isinstance(proof, ConsistencyProof):
            if old_file is None:
                raise click.UsageError("a consistency proof needs --old-checkpoint")
            check_consistency(proof, _checkpoint(old_file, verifier, "old-checkpoint", policy), cp)
            if wants_json():
                click.echo(json.dumps({"verified": True, "proof": "consistency", "old_size": proof.old_size, "new_size": proof.new_size,
                                       "signatures_checked": verifier is not None or policy is not None}, indent=2))
            else:
                click.echo(f"verified: the tree of {count(proof.old_size, 'event')} is a prefix of the tree of {count(proof.new_size, 'event')}")
        else:
            check_inclusion(proof, cp)
            leaf = parse_leaf(base64.b64decode(proof.leaf))
            if wants_json():
                click.echo(json.dumps({"verified": True, "proof": "inclusion", "position": proof.position, "leaf_index": proof.leaf_index,
                                       "tree_size": proof.tree_size, "topic": leaf.topic, "aggregate_id": str(leaf.aggregate_id),
                                       "version": leaf.version, "recorded_at": leaf.recorded_at or None, "payload_bytes": len(leaf.payload),
                                       "signatures_checked": verifier is not None or policy is not None}, indent=2))
            else:
                click.echo(f"verified: the event at position {proof.position} is leaf {proof.leaf_index} of the tree of {count(proof.tree_size, 'event')}")
                click.echo(f"  {leaf.topic} of {leaf.aggregate_id} version {leaf.version}, recorded {leaf.recorded_at or '?'}, "
                           f"{len(leaf.payload)} payload bytes")
        if verifier is None and policy is None:
            click.echo("note: no --verifier-key given; the checkpoints' signatures were not checked", err=True)

    @ledger.command("verify")
    @click.option("--checkpoint", "cp_file", type=click.Path(dir_okay=False, path_type=Path), help="a checkpoint the stored history must still match")
    @click.option("--verifier-key", "key", type=click.Path(dir_okay=False, path_type=Path), help="check the checkpoint's signature with this verifier key")
    @click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="C2SP tlog-policy file: the checkpoint must be signed by its logs and cosigned by its quorum")
    @db_option
    @output_option
    @pass_settings
    def verify(settings: Settings, cp_file: Path | None, key: Path | None, policy_file: Path | None) -> None:
        """Re-read and re-hash every stored event; compare with the stored tree and a checkpoint; exit 1 on any divergence."""
        if (key is not None or policy_file is not None) and cp_file is None:
            raise click.UsageError("--verifier-key and --policy check a checkpoint's signatures: give --checkpoint too")
        verifier = _verifier(key)
        policy = _policy(policy_file)
        findings: list[str] = []
        cp = None
        if cp_file is not None and policy is not None:
            try:
                witnessed = check_policy(policy, read_text(cp_file, "checkpoint"), verifier)
            except TransparencyError as error:
                raise click.ClickException(f"checkpoint: {str(cp_file)!r}: {error}") from None
            for line in witnessed.lines():
                click.echo(line, err=wants_json())
            cp = witnessed.checkpoint
            problem = witnessed.problem()
            if problem is not None:
                findings.append(f"checkpoint: policy: {problem}")
        elif cp_file is not None:
            text = read_text(cp_file, "checkpoint")
            try:
                cp = read_checkpoint(text, verifier)
            except TransparencyError as error:
                findings.append(f"checkpoint: {error}")
                try:
                    cp = read_checkpoint(text)
                except TransparencyError:
                    cp = None
        store = _tree_store(settings.db)
        try:
            _caught_up(store)
            with render.progress(length=store.size(), label="verifying", threshold=20_000) as bar:
                report = audit.verify(store, cp, progress=bar.update)
        finally:
            store.close()
        findings += [f.line() for f in report.findings]
        if wants_json():
            click.echo(json.dumps({
                "verified": not findings, "events": report.events, "tree_size": report.tree_size,
                "checkpoint": {"origin": cp.origin, "tree_size": cp.size} if cp else None,
                "signatures_checked": bool(cp and (verifier or policy)), "findings": findings,
                "predating_signed_writes": {"events": report.predating, "upto": report.predating_upto} if report.predating else None,
            }, indent=2))
            if findings:
                raise click.ClickException(f"history diverges: {len(findings)} finding(s) over {report.events} stored events")
            return
        if findings:
            for line in findings:
                click.echo(line)
            _predating(report)
            raise click.ClickException(f"history diverges: {count(len(findings), 'finding')} over {count(report.events, 'stored event')}")
        against = f"; matches checkpoint {cp.origin} at tree size {cp.size}" if cp else ""
        signed = " (signature valid)" if cp and verifier and not policy else " (signatures and quorum valid)" if cp and policy else ""
        click.echo(f"verified: {count(report.events, 'stored event')} match the tree of {count(report.tree_size, 'leaf', 'leaves')}{against}{signed}")
        _predating(report)


def _predating(report: audit.Report) -> None:
    """The events stored before signed writes began: told once, as a fact of the ledger's history, not as a finding."""
    if report.predating:
        click.echo(f"positions 1\u2013{report.predating_upto} predate signed writes ({count(report.predating, 'event')})")
