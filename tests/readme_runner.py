"""Runs the README: every shell block and every `$ command` transcript, in order, in a fresh folder; checks shown output.

Conventions in README.md:
- a ```sh block is run line by line (a trailing backslash continues a line); each line must exit 0;
- a ```text block whose first line starts with `$ ` is a transcript: each `$ command` is run and what it prints
  must match the lines below it, where `...` stands for any number of lines, and times, durations, rates and
  digests may differ; a command whose shown output has an `Error:` line must fail, any other must succeed;
- `<!-- readme: postgres kafka -->` just before a block runs it with LEDGER_DB pointing at a fresh PostgreSQL
  schema and LEDGER_KAFKA at the broker; `<!-- readme: not run (reason) -->` leaves a block out, saying why.

`python -m tests.readme_runner --write` runs it all and rewrites the transcripts' output from the real run.
"""

from __future__ import annotations

import argparse
import os
import uuid
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINKED = ("examples", "tests", "interop")
"""Repository folders the README's commands read from, linked into the fresh folder."""


@dataclass
class Step:
    """One command, where it stands in the README, and the output shown under it (None for a shell block)."""

    command: str
    line: int
    expected: list[str] | None = None
    actual: str = ""
    status: int = 0


@dataclass
class Block:
    """One fenced block that runs: its first line, its steps, the services it needs, or why it is not run."""

    line: int
    fence_end: int
    steps: list[Step] = field(default_factory=list)
    needs: set[str] = field(default_factory=set)
    not_run: str | None = None
    transcript: bool = False


def parse(text: str) -> list[Block]:
    """The runnable blocks of a README, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    directive = ""
    while index < len(lines):
        line = lines[index]
        if line.startswith("<!-- readme:"):
            directive = line.removeprefix("<!-- readme:").removesuffix("-->").strip()
        if not line.startswith("```"):
            if line.strip() and not line.startswith("<!--"):
                directive = ""
            index += 1
            continue
        kind = line[3:].strip()
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        body = lines[index + 1 : end]
        transcript = kind == "text" and bool(body) and body[0].startswith("$ ")
        if kind == "sh" or transcript:
            block = Block(line=index + 1, fence_end=end, transcript=transcript)
            if directive.startswith("not run"):
                block.not_run = directive
            else:
                block.needs = set(directive.split())
            block.steps = _transcript(body, index + 2) if transcript else _shell(body, index + 2)
            blocks.append(block)
        directive = ""
        index = end + 1
    return blocks


def _shell(body: list[str], first: int) -> list[Step]:
    steps: list[Step] = []
    pending = ""
    for offset, line in enumerate(body):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            steps.append(Step(pending, first + offset))
            pending = ""
    return steps


def _transcript(body: list[str], first: int) -> list[Step]:
    steps: list[Step] = []
    for offset, line in enumerate(body):
        if line.startswith("$ "):
            steps.append(Step(line[2:], first + offset, expected=[]))
        elif steps and steps[-1].expected is not None:
            steps[-1].expected.append(line)
    return steps


_VARIABLE = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00| UTC)?"), "<time>"),
    (re.compile(r"/tmp/\S*/"), "<folder>/"),
    (re.compile(r"\b[0-9a-f]{32,}\b"), "<digest>"),
    (re.compile(r"[A-Za-z0-9+/]{40,}={0,2}"), "<base64>"),
    (re.compile(r"\+[0-9a-f]{8}\b"), "+<key hash>"),
    (re.compile(r"\b\d[\d,]*(\.\d+)? (s|events/s|MiB)\b"), r"<n> \2"),
]


def normalise(line: str) -> str:
    """A line with what differs from run to run (times, durations, rates, digests) replaced; trailing spaces dropped."""
    for pattern, replacement in _VARIABLE:
        line = pattern.sub(replacement, line)
    return re.sub(r" {2,}", "  ", line.rstrip())


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether output matches what is shown, `...` standing for any lines."""
    want = [normalise(line) for line in expected]
    have = [normalise(line) for line in actual]

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(have)
        if want[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(have) + 1))
        return j < len(have) and want[i] == have[j] and match(i + 1, j + 1)

    return match(0, 0)


def expects_failure(step: Step) -> bool:
    return any(line.startswith(("Error:", "error:")) for line in step.expected or [])


def run(blocks: list[Block], folder: Path, services: Callable[[set[str]], dict[str, str]], timeout: float = 600) -> list[str]:
    """Run every block in `folder`; return one line per failure (empty when the README holds)."""
    for name in LINKED:
        if not (folder / name).exists():
            (folder / name).symlink_to(ROOT / name)
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    # The ledger of this checkout, then the witness tools scripts/test builds (litewitness, witnessctl).
    base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(ROOT / ".tools" / "bin"), base.get("PATH", "")])
    base["COLUMNS"] = "200"
    failures: list[str] = []
    for block in blocks:
        if block.not_run:
            continue
        env = {**base, **services(block.needs)} if block.needs else base
        for step in block.steps:
            exported = re.fullmatch(r"export (\w+)=(.*?)(\s+#.*)?", step.command)
            if exported:  # a variable set for the rest of the README, as in the reader's shell
                value = subprocess.run(["bash", "-c", f"printf %s {exported.group(2)}"], env=env, capture_output=True, text=True, check=True).stdout
                base[exported.group(1)] = env[exported.group(1)] = value
                continue
            result = subprocess.run(["bash", "-c", step.command], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
            step.actual, step.status = (result.stdout + result.stderr).rstrip("\n"), result.returncode
            where = f"README.md:{step.line}: {step.command}"
            if step.expected is None or not expects_failure(step):
                if step.status != 0:
                    failures.append(f"{where}: exit {step.status}: {step.actual[-800:]}")
                    continue
            elif step.status == 0:
                failures.append(f"{where}: shown failing, but it succeeded")
            if step.expected is not None and not matches(step.expected, step.actual.splitlines()):
                failures.append(f"{where}: output differs from the README:\n{step.actual}")
    return failures


def rewrite(text: str, blocks: list[Block]) -> str:
    """The README with every transcript's output replaced by the real run's (keeping where it elides with `...`)."""
    lines = text.splitlines()
    for block in reversed([b for b in blocks if b.transcript and not b.not_run]):
        body: list[str] = []
        for step in block.steps:
            body.append(f"$ {step.command}")
            body += _elide(step.expected or [], step.actual.splitlines())
        lines[block.line : block.fence_end] = body
    return "\n".join(lines) + "\n"


def _elide(expected: list[str], actual: list[str]) -> list[str]:
    if "..." not in expected or expected == ["..."]:  # a lone `...` is a placeholder: show everything
        return actual
    head = expected.index("...")
    tail = len(expected) - head - 1
    if head + tail >= len(actual):
        return actual
    return [*actual[:head], "...", *(actual[len(actual) - tail :] if tail else [])]


def services_from(environ: dict[str, str], made: list[str]) -> Callable[[set[str]], dict[str, str]]:
    """What a block that needs services gets: a fresh PostgreSQL schema (and one for a read model), the broker, a topic."""

    def provide(needs: set[str]) -> dict[str, str]:
        env: dict[str, str] = {}
        if "postgres" in needs:
            url = environ.get("LEDGER_TEST_PG_URL")
            if not url:
                raise RuntimeError("README block needs PostgreSQL: LEDGER_TEST_PG_URL is not set (run scripts/services start)")
            name = f"readme_{uuid.uuid4().hex[:8]}"
            env["LEDGER_DB"] = f"{url}?schema={name}"
            env["LEDGER_READ_MODEL_DB"] = f"{url}?schema={name}_readmodel"
            # For the blocks that show the production roles: the owner's and a superuser's URLs, and a new role's name.
            owner, admin = environ.get("LEDGER_TEST_PG_OWNER_URL", ""), environ.get("LEDGER_TEST_PG_ADMIN_URL", "")
            env["LEDGER_OWNER_URL"] = f"{owner}?schema={name}"
            env["LEDGER_ADMIN_URL"] = admin.rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1] if admin else ""
            env["AUDITOR"] = f"auditor_{name.removeprefix('readme_')}"
            made.extend([env["LEDGER_DB"], env["LEDGER_READ_MODEL_DB"]])
        if "kafka" in needs:
            server = environ.get("LEDGER_TEST_KAFKA")
            if not server:
                raise RuntimeError("README block needs Kafka: LEDGER_TEST_KAFKA is not set (run scripts/services start)")
            env["LEDGER_KAFKA"] = server
            env["LEDGER_TOPIC"] = f"readme.{uuid.uuid4().hex[:8]}"
        return env

    return provide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the transcripts' output from this run")
    args = parser.parse_args()
    text = README.read_text()
    blocks = parse(text)
    made: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        failures = run(blocks, Path(folder), services_from(dict(os.environ), made))
    if args.write:
        README.write_text(rewrite(text, blocks))
        print(f"rewrote the transcripts of {README}")
    for failure in failures:
        print(failure)
    sys.exit(1 if failures and not args.write else 0)


if __name__ == "__main__":
    main()
