"""C2SP tlog-policy: which logs and witnesses a checkpoint is checked against, and the quorum of cosignatures it needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from transparency.cosignature import CosignerKey, parse_cosigner
from transparency.errors import BadKey, BadNote, BadPolicy, PolicyFailed
from transparency.note import Checkpoint, Verifier, parse_checkpoint, parse_verifier, split_note

NONE = "none"


@dataclass(frozen=True)
class PolicyWitness:
    """A `witness <name> <vkey> [<url>]` line."""

    name: str
    key: CosignerKey
    url: str | None = None


@dataclass(frozen=True)
class Group:
    """A `group <name> <k|all|any> <member>...` line: witnessed when at least `threshold` of its members are."""

    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """Logs, witnesses, groups and the quorum of one policy file."""

    logs: tuple[tuple[Verifier, str | None], ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[Group, ...]
    quorum: str

    def describe(self, name: str) -> str:
        """A name of the quorum with what it requires, e.g. `both (2 of w1, w2)`."""
        group = next((g for g in self.groups if g.name == name), None)
        if group is None:
            return name
        return f"{name} ({group.threshold} of {', '.join(group.members)})"


def _fields(line: str) -> list[str]:
    return line.replace("\t", " ").split()


def parse_policy(text: str) -> Policy:
    """A policy from its file's text; raises BadPolicy naming the line of the first problem."""
    logs: list[tuple[Verifier, str | None]] = []
    witnesses: list[PolicyWitness] = []
    groups: list[Group] = []
    quorum: str | None = None
    names: set[str] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        where = f"policy line {number}"
        bad = next((ch for ch in line if ord(ch) < 0x20 and ch != "\t" or ord(ch) == 0x7F), None)
        if bad is not None:
            raise BadPolicy(f"{where}: control character {bad!r} is not allowed")
        fields = _fields(line)
        if not fields or fields[0].startswith("#"):
            continue
        keyword, args = fields[0], fields[1:]
        try:
            if keyword == "log" and len(args) in (1, 2):
                verifier = parse_verifier(args[0])
                if any(v.public == verifier.public for v, _ in logs):
                    raise BadPolicy(f"{where}: log {verifier.name}: the same key is listed twice")
                logs.append((verifier, args[1] if len(args) == 2 else None))
            elif keyword == "witness" and len(args) in (2, 3):
                name, key = args[0], parse_cosigner(args[1])
                if name in names or name == NONE:
                    raise BadPolicy(f"{where}: name {name!r} is already defined")
                if any(w.key.public == key.public for w in witnesses):
                    raise BadPolicy(f"{where}: witness {name}: the same key is listed twice")
                names.add(name)
                witnesses.append(PolicyWitness(name, key, args[2] if len(args) == 3 else None))
            elif keyword == "group" and len(args) >= 3:
                groups.append(_group(args, names, where))
                names.add(args[0])
            elif keyword == "quorum" and len(args) == 1:
                if quorum is not None:
                    raise BadPolicy(f"{where}: a second quorum line; a policy has exactly one")
                if args[0] != NONE and args[0] not in names:
                    raise BadPolicy(f"{where}: quorum {args[0]!r} is not a witness or group defined above")
                quorum = args[0]
            else:
                raise BadPolicy(f"{where}: {keyword!r} with {len(args)} item(s): expected `log <vkey> [<url>]`, "
                                "`witness <name> <vkey> [<url>]`, `group <name> <k|all|any> <name>...` or `quorum <name>`")
        except BadKey as error:
            raise BadPolicy(f"{where}: {error}") from None
    if quorum is None:
        raise BadPolicy("policy: no quorum line (use `quorum none` to require no cosignatures)")
    return Policy(tuple(logs), tuple(witnesses), tuple(groups), quorum)


def _group(args: list[str], names: set[str], where: str) -> Group:
    name, threshold, members = args[0], args[1], args[2:]
    if name in names or name == NONE:
        raise BadPolicy(f"{where}: name {name!r} is already defined")
    for member in members:
        if member not in names:
            raise BadPolicy(f"{where}: group {name}: member {member!r} is not a witness or group defined above")
    if len(set(members)) != len(members):
        raise BadPolicy(f"{where}: group {name}: a member is listed twice")
    if threshold == "all":
        k = len(members)
    elif threshold == "any":
        k = 1
    elif threshold.isdigit() and not threshold.startswith("0") and int(threshold) <= len(members):
        k = int(threshold)
    else:
        raise BadPolicy(f"{where}: group {name}: threshold {threshold!r} must be all, any or a number from 1 to {len(members)}")
    return Group(name, k, tuple(members))


@dataclass(frozen=True)
class Cosigned:
    """What one witness of the policy did for a checkpoint: `valid` (with its time), `missing` or `invalid` (with why)."""

    witness: PolicyWitness
    status: str
    timestamp: int | None = None
    reason: str = ""

    def line(self) -> str:
        label = f"witness {self.witness.name} ({self.witness.key.label()})"
        if self.status == "valid":
            when = datetime.fromtimestamp(self.timestamp or 0, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            return f"{label}: cosignature valid, {when}"
        if self.status == "missing":
            return f"{label}: cosignature missing"
        return f"{label}: cosignature invalid: {self.reason}"


@dataclass(frozen=True)
class Witnessed:
    """A checkpoint checked against a policy: the log key that signed it, each witness's cosignature and the quorum."""

    checkpoint: Checkpoint
    log: Verifier | None
    cosigned: tuple[Cosigned, ...]
    quorum: str
    held: bool

    def lines(self) -> list[str]:
        """One line per witness of the policy, then one for the quorum."""
        valid = sum(c.status == "valid" for c in self.cosigned)
        return [c.line() for c in self.cosigned] + [f"quorum {self.quorum}: {'held' if self.held else 'not held'} "
                                                    f"({valid} valid cosignature{'s' if valid != 1 else ''})"]

    def problem(self) -> str | None:
        """One line saying why the checkpoint fails the policy, naming the log or the witnesses; None if it passes."""
        if self.log is None:
            return f"no valid signature by a log of the policy for origin {self.checkpoint.origin!r}"
        if self.held:
            return None
        lacking = [f"{c.witness.name} {c.status}" for c in self.cosigned if c.status != "valid"]
        return f"quorum {self.quorum} not held: cosignature of {', '.join(lacking) or 'no witness'}"


def _holds(policy: Policy, name: str, valid: set[str]) -> bool:
    if name == NONE:
        return True
    group = next((g for g in policy.groups if g.name == name), None)
    if group is None:
        return name in valid
    return sum(_holds(policy, member, valid) for member in group.members) >= group.threshold


def check(policy: Policy, note: str, log: Verifier | None = None) -> Witnessed:
    """Check a signed checkpoint against the policy (and `log`, for a policy that lists no logs); raises BadNote if malformed.

    Signature lines from keys the policy does not list are ignored, never counted.
    """
    body, signatures = split_note(note)
    checkpoint = parse_checkpoint(body)
    logs = [v for v, _ in policy.logs] + ([log] if log is not None else [])
    signer = next((v for v in logs if v.name == checkpoint.origin and any(
        s.name == v.name and s.hash == v.hash and v.verify(body.encode(), s.signature) for s in signatures)), None)
    cosigned = []
    for witness in policy.witnesses:
        lines = [s for s in signatures if witness.key.matches(s)]
        reasons, times = [], []
        for s in lines:
            try:
                times.append(witness.key.timestamp(body, s))
            except BadNote as error:
                reasons.append(str(error))
        if times:
            cosigned.append(Cosigned(witness, "valid", max(times)))
        elif reasons:
            cosigned.append(Cosigned(witness, "invalid", reason=reasons[0]))
        else:
            cosigned.append(Cosigned(witness, "missing"))
    valid = {c.witness.name for c in cosigned if c.status == "valid"}
    return Witnessed(checkpoint, signer, tuple(cosigned), policy.describe(policy.quorum), _holds(policy, policy.quorum, valid))


def require(policy: Policy, note: str, log: Verifier | None = None) -> Witnessed:
    """A checkpoint checked against the policy; raises PolicyFailed (or BadNote) unless a listed log signed it and the quorum holds.

    The one call for every reader of checkpoints (verify, proofs, mirrors, report checks).
    """
    witnessed = check(policy, note, log)
    problem = witnessed.problem()
    if problem is not None:
        raise PolicyFailed(problem)
    return witnessed
