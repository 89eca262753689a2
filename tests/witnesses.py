"""Real C2SP witnesses for the tests: litewitness (filippo.io/torchwood v0.6.1), each with its own key in its own ssh-agent."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools" / "bin"
TORCHWOOD = "filippo.io/torchwood/cmd/{}@v0.6.1"
WAIT = 20.0  # seconds a witness or an agent may take to start before the test fails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tools() -> Path:
    """The folder holding litewitness and witnessctl, built from the Go module proxy if missing (as scripts/test does)."""
    if (TOOLS / "litewitness").exists() and (TOOLS / "witnessctl").exists():
        return TOOLS
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if not go:
        raise RuntimeError("Go is not installed: the witness tests build litewitness with it (scripts/test installs it)")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOBIN": str(TOOLS)}
    built = subprocess.run([go, "install", TORCHWOOD.format("litewitness"), TORCHWOOD.format("witnessctl")],
                           env=env, capture_output=True, text=True, timeout=900)
    if built.returncode != 0:
        raise RuntimeError(f"go install of litewitness failed:\n{built.stderr}")
    return TOOLS


def _until(ready: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {WAIT:g} s")
        time.sleep(0.05)


def _end(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class LiteWitness:
    """One litewitness: its name, database, ssh-agent holding its Ed25519 key, and port on 127.0.0.1."""

    name: str
    folder: Path
    port: int = field(default_factory=free_port)
    agent: subprocess.Popen[bytes] | None = None
    process: subprocess.Popen[bytes] | None = None
    vkey: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.folder / "witness.db"

    def ctl(self, *args: str) -> None:
        done = subprocess.run([str(tools() / "witnessctl"), *args[:1], "-db", str(self.db), *args[1:]], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"witnessctl {' '.join(args)}: {done.stderr}")

    def trust(self, origin: str, verifier_key: str) -> None:
        """What an operator does to witness a ledger: add its origin and its verifier key."""
        self.ctl("add-log", "-origin", origin)
        self.ctl("add-key", "-origin", origin, "-key", verifier_key.strip())

    def start_agent(self) -> None:
        key = self.folder / "ssh-key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f", str(key)], check=True, timeout=60)
        sock = self.folder / "agent.sock"
        self.agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _until(sock.exists, f"ssh-agent of {self.name}")
        subprocess.run(["ssh-add", "-q", str(key)], env={**os.environ, "SSH_AUTH_SOCK": str(sock)}, check=True, timeout=60,
                       capture_output=True)

    def start(self) -> None:
        key = self.folder / "ssh-key.pub"
        fingerprint = subprocess.run(["ssh-keygen", "-lf", str(key), "-E", "sha256"], check=True, capture_output=True, text=True).stdout.split()[1]
        log = self.folder / "litewitness.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(tools() / "litewitness"), "-db", str(self.db), "-name", self.name, "-key", fingerprint,
                 "-ssh-agent", str(self.folder / "agent.sock"), "-listen", f"127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT)
        _until(lambda: self.process is not None and (self.process.poll() is not None or "msg=listening" in log.read_text()),
               f"litewitness {self.name}")
        if self.process.poll() is not None:
            raise RuntimeError(f"litewitness {self.name} exited: {log.read_text()}")
        found = re.search(r"vkey=(\S+)", log.read_text())
        if not found:
            raise RuntimeError(f"litewitness {self.name} logged no verifier key: {log.read_text()}")
        self.vkey = found.group(1)

    def stop(self) -> None:
        _end(self.process)
        self.process = None

    def close(self) -> None:
        self.stop()
        _end(self.agent)
        self.agent = None


@contextmanager
def running(count: int = 2) -> Iterator[list[LiteWitness]]:
    """`count` witnesses named witness.example/w1, w2...; all of them and their agents are ended on the way out."""
    # An ssh-agent socket path must be short: a folder of its own in the system's temporary folder.
    with tempfile.TemporaryDirectory(prefix="lw") as base:
        witnesses = [LiteWitness(f"witness.example/w{i}", Path(base) / f"w{i}") for i in range(1, count + 1)]
        try:
            for w in witnesses:
                w.folder.mkdir()
                w.start_agent()
                w.start()
            yield witnesses
        finally:
            for w in witnesses:
                w.close()


def policy_text(log_key: str, witnesses: list[LiteWitness], quorum: str = "all", urls: bool = True) -> str:
    """A tlog-policy file: the log, each witness (with its URL), and a group `witnesses` of them as the quorum."""
    lines = [f"log {log_key.strip()}"]
    lines += [f"witness w{i} {w.vkey}" + (f" {w.url}" if urls else "") for i, w in enumerate(witnesses, start=1)]
    lines += [f"group witnesses {quorum} {' '.join(f'w{i}' for i in range(1, len(witnesses) + 1))}", "quorum witnesses"]
    return "\n".join(lines) + "\n"

