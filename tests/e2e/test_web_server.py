"""`ledger serve` as a server: it says where it serves, fails at start in one line, serves TLS, and outlives its database's restarts and running out of file descriptors."""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import json
import os
import re
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page
from click.testing import CliRunner

from cli.main import ledger
from tests.e2e.web import FIRST, ROOT, cli, free_port, write_lines

PG_BIN = Path("/usr/lib/postgresql/15/bin")
STRONG_TOKEN = "Zm9yLXRoZS1hdWRpdG9ycy1leWVz"  # 28 base64 characters: 168 bits


@contextmanager
def serving(*args: str, log: Path, limits: int | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`ledger serve ARGS --port 0` in its own process, once it has said where it serves: (its URL, the process)."""
    def limited() -> None:
        if limits is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits, limits))

    with log.open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", "0", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=err, preexec_fn=limited)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        found = re.search(r" at (https?://\S+/)", line)
        assert found, (line, log.read_text())
        yield found.group(1), process
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def get(url: str, path: str, host: str | None = None, token: str | None = None, context: ssl.SSLContext | None = None,
        method: str = "GET", body: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request, over HTTPS if the URL says so, with the Host header given (else the URL's)."""
    scheme, _, rest = url.partition("://")
    address = rest.strip("/")
    name, _, port = address.rpartition(":")
    connection = (http.client.HTTPSConnection(name, int(port), context=context, timeout=30) if scheme == "https"
                  else http.client.HTTPConnection(name, int(port), timeout=30))
    headers = {"Host": host or address}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def small_ledger(folder: Path) -> str:
    db = f"sqlite:///{folder / 'served.db'}"
    cli("import", str(ROOT / "examples" / "platform-actions.jsonl"), "--db", db)
    return db


def test_start_up_says_where_and_what_it_serves_and_logs_each_request(tmp_path: Path) -> None:
    db = small_ledger(tmp_path)
    with serving("--db", db, log=tmp_path / "serve.log") as (url, _):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        assert get(url, "/api/figures")[0] == 200
        assert get(url, "/events/abc")[0] == 400
    lines = (tmp_path / "serve.log").read_text().splitlines()
    assert [re.sub(r"^\S+ \S+ 127\.0\.0\.1:\d+ ", "", line) for line in lines] == [
        '"GET /api/figures HTTP/1.1" 200 OK', '"GET /events/abc HTTP/1.1" 400 Bad Request']


def test_a_busy_port_or_a_broken_database_fails_at_start_in_one_line(tmp_path: Path) -> None:
    db = small_ledger(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        busy = CliRunner().invoke(ledger, ["serve", "--db", db, "--port", str(port)])
    assert (busy.exit_code, busy.output) == (1, f"Error: port: {port}: already in use on 127.0.0.1; stop what listens there, or choose another --port\n")
    for broken, said in [("memory://", "Error: db: 'memory://': projections need a sqlite:/// or postgresql:// database\n"),
                         (f"postgresql://auditor:secret@127.0.0.1:{free_port()}/ledger", "Error: db: cannot connect to PostgreSQL at 127.0.0.1:")]:
        result = CliRunner().invoke(ledger, ["serve", "--db", broken, "--port", "0"])
        assert result.exit_code == 1 and result.output.startswith(said) and result.output.count("\n") == 1, result.output
        assert "secret" not in result.output


def test_other_machines_get_the_view_only_over_tls_with_a_strong_token(tmp_path: Path) -> None:
    db = small_ledger(tmp_path)
    refused = {
        ("--host", "0.0.0.0"): "Error: host: '0.0.0.0': other machines may reach it: serve HTTPS (--tls-cert, --tls-key), or name --behind-proxy\n",
        ("--host", "0.0.0.0", "--token", "abc"): "Error: host: '0.0.0.0': other machines may reach it: serve HTTPS (--tls-cert, --tls-key), or name --behind-proxy\n",
    }
    for args, said in refused.items():
        result = CliRunner().invoke(ledger, ["serve", "--db", db, "--port", "0", *args])
        assert (result.exit_code, result.output) == (1, said)
    cert, key = certificate(tmp_path)
    weak = CliRunner().invoke(ledger, ["serve", "--db", db, "--port", "0", "--host", "0.0.0.0", "--tls-cert", cert, "--tls-key", key, "--token", "s3cret-auditor-token"])
    assert (weak.exit_code, weak.output) == (1, "Error: token: 20 characters hold about 120 bits, fewer than 128: use 22 base64 characters "
                                                "(openssl rand -base64 18) or 32 hex digits (openssl rand -hex 16)\n")
    context = ssl.create_default_context(cafile=cert)
    with serving("--db", db, "--host", "0.0.0.0", "--tls-cert", cert, "--tls-key", key, "--token", STRONG_TOKEN, log=tmp_path / "tls.log") as (url, _):
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+/", url)
        assert get(url, "/api/figures", context=context)[0] == 401
        assert get(url, "/api/figures", context=context, token=STRONG_TOKEN)[0] == 200
        status, headers, _ = get(url, "/sign-in", context=context, method="POST", body=f"token={STRONG_TOKEN}&next=/audit")
        assert status == 303 and headers["location"] == "/audit"
        assert re.fullmatch(r"ledger_session=[\w.-]+; HttpOnly; Max-Age=28800; Path=/; SameSite=strict; Secure", headers["set-cookie"])
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            get(url.replace("https://", "http://"), "/api/figures")


def certificate(folder: Path) -> tuple[str, str]:
    """A throw-away self-signed certificate for 127.0.0.1 and localhost: (its PEM file, its key's PEM file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(folder / "cert.pem"), str(folder / "key.pem")


def test_a_request_with_another_host_header_is_refused(tmp_path: Path) -> None:
    db = small_ledger(tmp_path)
    with serving("--db", db, "--allowed-host", "ledger.example", log=tmp_path / "serve.log") as (url, _):
        port = url.rstrip("/").rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "ledger.example", "ledger.example:8443"):
            assert get(url, "/api/figures", host=host)[0] == 200, host
        for host in (f"attacker.example:{port}", "attacker.example", f"localhost:{int(port) + 1}", f"127.0.0.1.attacker.example:{port}"):
            status, headers, body = get(url, "/", host=host)
            assert status == 400 and b"not a name of this server" in body and "content-security-policy" in headers, host
            assert get(url, "/api/figures", host=host)[0] == 400, host


@contextmanager
def own_postgres() -> Iterator[tuple[str, list[str]]]:
    """A throw-away PostgreSQL cluster on a free port (never the shared one): its URL and the pg_ctl command that controls it."""
    folder = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    folder.chmod(0o755)
    shutil.chown(folder, "postgres")
    data = folder / "data"

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, cwd="/", timeout=120)

    port = free_port()
    pg_ctl = ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60"]
    try:
        as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-N")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{folder}'\nfsync = off\nshared_buffers = 16MB\n")
        subprocess.run([*pg_ctl, "start"], check=True, capture_output=True, cwd="/", timeout=120)
        yield f"postgresql://postgres:unused@127.0.0.1:{port}/postgres", pg_ctl
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, cwd="/", timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_pages_survive_a_restart_of_postgresql_and_say_503_while_it_is_down(tmp_path: Path) -> None:
    pages = ["/events/3", "/api/events/3", "/api/figures", "/countries/IT", "/records/ORG-IT-0001", "/audit"]
    with own_postgres() as (db, pg_ctl):
        cli("import", str(ROOT / "examples" / "platform-actions.jsonl"), "--db", db)
        with serving("--db", db, log=tmp_path / "serve.log") as (url, _):
            assert [get(url, page)[0] for page in pages] == [200] * len(pages)
            subprocess.run([*pg_ctl, "-m", "fast", "restart"], check=True, capture_output=True, cwd="/", timeout=120)
            assert [get(url, page)[0] for page in pages] == [200] * len(pages)

            subprocess.run([*pg_ctl, "-m", "fast", "stop"], check=True, capture_output=True, cwd="/", timeout=120)
            started = time.monotonic()
            down = [get(url, page) for page in pages]
            assert time.monotonic() - started < 10  # each answers at once, not after a pool's wait
            assert [status for status, _, _ in down] == [503] * len(pages)
            status, headers, body = down[0]
            assert headers["retry-after"] == headers["refresh"] == "5" and "content-security-policy" in headers
            assert "the ledger&#39;s database is unavailable; retrying" in body.decode()
            assert json.loads(down[1][2])["error"].startswith("the ledger's database is unavailable; retrying")

            subprocess.run([*pg_ctl, "start"], check=True, capture_output=True, cwd="/", timeout=120)
            cli("import", str(write_lines(tmp_path / "more.jsonl", FIRST)), "--db", db)
            assert [get(url, page)[0] for page in pages] == [200] * len(pages)
            figures = json.loads(get(url, "/api/figures")[2])
            assert figures["as_of_position"] == json.loads(get(url, "/api/audit?after=25")[2])["events"][-1]["position"]
        assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_out_of_file_descriptors_it_answers_503_or_waits_logs_little_and_recovers(tmp_path: Path) -> None:
    db = small_ledger(tmp_path)
    log = tmp_path / "serve.log"
    with serving("--db", db, log=log, limits=20) as (url, _):
        assert get(url, "/api/figures")[0] == 200
        statuses: list[int | str] = []

        def one() -> None:
            try:
                statuses.append(get(url, "/api/records/ORG-IT-0001")[0])
            except OSError as error:
                statuses.append(type(error).__name__)

        threads = [threading.Thread(target=one) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(statuses) == 50 and set(statuses) <= {200, 503}, statuses
        assert get(url, "/api/figures")[0] == 200
    assert os.path.getsize(log) < 20_000, log.read_text()[-2000:]


def test_sign_out_in_the_browser_ends_the_session(page: Page) -> None:
    kept = next(c for c in page.context.cookies() if c["name"] == "ledger_session")
    page.click("#sign-out")
    page.wait_for_selector("#token")
    assert page.locator("#sign-out").count() == 0
    assert not [c for c in page.context.cookies() if c["name"] == "ledger_session"]
    page.context.add_cookies([kept])  # a copy kept of the ended session's cookie
    response = page.goto("/")
    assert response is not None and response.status == 401 and page.locator("#token").count() == 1
