"""The event page's proof check in Debian's Chromium: bound to the event shown, anchored in a published checkpoint signed by the
key the auditor pinned (and cosigned as the auditor's witness policy asks), and the API's proof verified offline as given."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.web import ROOT, TOKEN, Served, api, call, cli
from transparency.cosignature import Cosigner
from transparency.note import Signer, sign_note, split_note
from transparency.proofs import b64

POSITION = 5  # ORG-IT-0001's label, in examples/platform-actions.jsonl after the first writer's authorization
GREEN = "rgb(23, 102, 58)"  # `.ok` in web/templates/ledger.css (#17663a)


@dataclass(frozen=True)
class Log:
    """The served ledger's log key, and its published checkpoint as `/api/events/N` names it."""

    signer: Signer
    public: Path
    checkpoint: dict[str, object]


@pytest.fixture(scope="module")
def published(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Log:
    folder = tmp_path_factory.mktemp("log-key")
    signer = Signer.generate("ledger.example/audit-log")
    (folder / "log.key").write_text(signer.encode() + "\n")
    (folder / "log.pub").write_text(signer.verifier.encode() + "\n")
    # Published as an operator does, from another process than the server's and this one.
    subprocess.run([sys.executable, "-m", "cli.main", "checkpoint", "--sign", str(folder / "log.key"), "--db", served.db],
                   cwd=ROOT, check=True, capture_output=True)
    checkpoint = api(served, f"/api/events/{POSITION}")["checkpoint"]
    assert checkpoint["signed"] and checkpoint["number"] == 1, checkpoint
    return Log(signer, folder / "log.pub", checkpoint)


def pin(page: Page, key: str, policy: str = "") -> None:
    """Pin the key and the policy as an auditor does, on an event page; they stay in this browser's storage."""
    if "/events/" not in page.url:
        page.goto(f"/events/{POSITION}")
    page.fill("#verifier-key", key)
    page.click("#pin-key")
    page.fill("#witness-policy", policy)
    page.click("#pin-policy")


def named(signer: Signer) -> str:
    """A key as signed notes name it: name+hash."""
    return f"{signer.name}+{signer.verifier.hash:08x}"


def verdict(page: Page) -> str:
    """Click the check and read its verdict (cleared first, so an earlier one is never read)."""
    page.evaluate("document.getElementById('proof-result').textContent = ''")
    page.click("#check-proof")
    page.wait_for_function("document.getElementById('proof-result').textContent.length > 0")
    return page.locator("#proof-result").inner_text()


def colour(page: Page) -> str:
    return str(page.evaluate("getComputedStyle(document.getElementById('proof-result')).color"))


def test_an_untouched_page_shows_green_with_the_signer_named(page: Page, published: Log) -> None:
    page.goto(f"/events/{POSITION}")
    assert verdict(page).startswith("The proof does not hold: no verifier key is pinned")
    pin(page, published.signer.verifier.encode())
    page.reload()  # the key is kept in the browser, not in the page
    assert page.locator("#pinned").inner_text().startswith(f"Pinned key: {named(published.signer)}.")
    size = published.checkpoint["tree_size"]
    assert verdict(page) == (f"The proof holds: event {POSITION} is leaf {POSITION - 1} of the checkpoint of {size} events of "
                             f"{published.signer.name} signed by {named(published.signer)}, published on {published.checkpoint['published_at']}.")
    assert colour(page) == GREEN
    # What is shown as proven is read from the verified leaf, and is what the server rendered.
    fields = dict(zip(page.locator("#leaf-fields dt").all_inner_texts(), page.locator("#leaf-fields dd").all_inner_texts()))
    assert fields["position"] == str(POSITION) and fields["version"] == page.locator("#event-version").inner_text()
    assert fields["record id"].replace("-", "") == page.locator("#event-aggregate").inner_text()
    assert fields["type"].startswith(page.locator("#event-type").inner_text() + " (")
    assert fields["payload"] == page.locator("#payload").inner_text()


def test_every_event_of_the_ledger_is_proven_in_this_browser(page: Page, published: Log) -> None:
    """Every leaf index of the tree, every kind of record (the first writer's included), every event type the ledger holds."""
    pin(page, published.signer.verifier.encode())
    size = int(str(published.checkpoint["tree_size"]))
    for position in range(1, size + 1):
        page.goto(f"/events/{position}")
        assert verdict(page).startswith(f"The proof holds: event {position} is leaf {position - 1} of the checkpoint of {size} events"), position


def test_a_page_whose_proof_section_belongs_to_another_event_shows_red(page: Page, published: Log) -> None:
    pin(page, published.signer.verifier.encode())
    page.goto("/events/3")
    other = page.locator("#proof-data").evaluate("e => e.outerHTML")
    page.goto(f"/events/{POSITION}")
    page.locator("#proof-data").evaluate("(e, html) => { e.outerHTML = html; }", other)
    # Event 3's proof holds in the same checkpoint: only its binding to the page's event can fail.
    assert verdict(page) == f"The proof does not hold: position: the proof's leaf is the event at position 3, this page shows position {POSITION}."
    assert colour(page) != GREEN and page.locator("#verified").is_hidden()


@pytest.mark.parametrize(("selector", "edit", "field"), [
    ("#payload", "e => { e.textContent = e.textContent.replace('silver', 'gold'); }", "payload: "),
    ("#event-recorded", "e => { e.setAttribute('datetime', '2020-01-01T00:00:00+00:00'); }", "recorded time: "),
    ("#event-ref", "e => { e.textContent = 'ORG-IT-0002'; }", "record: "),
    ("#event-type", "e => { e.textContent = 'ClusterOrganisation.Archived'; }", "type: "),
    ("#event-version", "e => { e.textContent = '3'; }", "version: "),
    ("#proof-path code", "e => { e.textContent = (e.textContent[0] === 'A' ? 'B' : 'A') + e.textContent.slice(1); }", "the path leads to root "),
])
def test_a_field_or_path_edited_in_the_dom_shows_red_naming_it(page: Page, published: Log, selector: str, edit: str, field: str) -> None:
    pin(page, published.signer.verifier.encode())
    page.goto(f"/events/{POSITION}")
    page.locator(selector).first.evaluate(edit)
    result = verdict(page)
    assert result.startswith(f"The proof does not hold: {field}"), result
    assert colour(page) != GREEN


def test_a_checkpoint_signed_by_a_key_other_than_the_pinned_one_shows_red(page: Page, published: Log) -> None:
    stranger = Signer.generate(published.signer.name)  # the same name, another key
    body, _ = split_note(str(published.checkpoint["note"]))
    pin(page, published.signer.verifier.encode())
    page.fill("#paste-checkpoint textarea", sign_note(body, stranger))  # pasted as an auditor does
    page.click("#paste-checkpoint button")
    page.wait_for_url("**checkpoint=**")
    assert verdict(page) == (f"The proof does not hold: the checkpoint is not signed by the pinned key {named(published.signer)} "
                             f"(it is signed by {published.signer.name}).")
    # A stranger's signature under the pinned key's name and hash.
    signature = split_note(sign_note(body, stranger))[1][0].signature
    forged = f"{body}\n\u2014 {published.signer.name} {b64(struct.pack('>I', published.signer.verifier.hash) + signature)}\n"
    page.goto(f"/events/{POSITION}?checkpoint={quote(forged)}")
    assert verdict(page) == f"The proof does not hold: the signature by the pinned key {named(published.signer)} does not match the checkpoint."
    # The published checkpoint, untouched, with a stranger's key pinned.
    pin(page, stranger.verifier.encode())
    page.goto(f"/events/{POSITION}")
    assert verdict(page).startswith(f"The proof does not hold: the checkpoint is not signed by the pinned key {named(stranger)}")
    assert colour(page) != GREEN


def test_the_signature_check_holds_for_the_signed_note_specs_own_example(page: Page) -> None:
    """golang.org/x/mod/sumdb/note's example note and key: the key's hash is recomputed when pinned, the signature holds (and
    the check then stops at the note, which is no checkpoint), and one changed word breaks it."""
    pin(page, "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert page.locator("#pinned").inner_text().startswith("Pinned key: PeterNeumann+c74f20a3.")
    note = ("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
            "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
    for given, expected in ((note, "the checkpoint needs origin, tree size and root hash lines"),
                            (note.replace("answer", "solution"), "the signature by the pinned key PeterNeumann+c74f20a3 does not match the checkpoint")):
        page.locator("#proof-checkpoint").evaluate("(e, text) => { e.textContent = text; }", given)
        assert verdict(page) == f"The proof does not hold: {expected}."
    page.fill("#verifier-key", "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    page.click("#pin-key")
    assert page.locator("#pinned").inner_text() == "Not pinned: verifier key PeterNeumann: hash c74f20a4 does not match the key (c74f20a3)."


def test_the_witness_policy_shows_each_cosignature_and_whether_the_quorum_is_met(page: Page, published: Log) -> None:
    note = str(published.checkpoint["note"])
    body, _ = split_note(note)
    w1, w2, w3 = (Cosigner.generate(f"witness.example/{n}") for n in ("one", "two", "three"))
    by_w1 = w1.cosign(body, 1_767_225_600)  # 2026-01-01T00:00:00Z
    # w1's signature under w2's name and key hash: a cosignature line of w2's that does not hold.
    raw = base64.b64decode(by_w1.split(" ")[2])
    not_by_w2 = f"\u2014 {w2.name} {b64(struct.pack('>I', w2.key.hash) + raw[4:])}\n"
    cosigned = note + by_w1 + not_by_w2
    policy = f"witness w1 {w1.key.encode()}\nwitness w2 {w2.key.encode()}\nwitness w3 {w3.key.encode()}\ngroup both all w1 w2\ngroup either any w1 w2 w3\n"
    pin(page, published.signer.verifier.encode(), policy + "quorum either\n")
    page.goto(f"/events/{POSITION}?checkpoint={quote(cosigned)}")
    assert verdict(page).endswith(f"signed by {named(published.signer)}, witness quorum either met (w1).")
    assert page.locator("#cosignatures li").all_inner_texts() == [
        f"witness w1 ({w1.key.label()}): cosignature valid, 2026-01-01T00:00:00+00:00",
        f"witness w2 ({w2.key.label()}): cosignature invalid",
        f"witness w3 ({w3.key.label()}): cosignature missing",
    ]
    pin(page, published.signer.verifier.encode(), policy + "quorum both\n")
    page.goto(f"/events/{POSITION}?checkpoint={quote(cosigned)}")
    assert verdict(page) == (f"The proof does not hold: the checkpoint is signed by {named(published.signer)}, "
                             "but the witness quorum both is not met (valid cosignatures: w1).")
    assert [c.split(": ")[1] for c in page.locator("#cosignatures li").all_inner_texts()] == [
        "cosignature valid, 2026-01-01T00:00:00+00:00", "cosignature invalid", "cosignature missing"]


def test_without_javascript_the_page_says_the_check_needs_it_and_how_to_verify_offline(browser: Browser, served: Served, published: Log) -> None:
    context = browser.new_context(base_url=served.base, java_script_enabled=False)
    try:
        tab = context.new_page()
        tab.goto("/")
        tab.fill("#token", TOKEN)
        tab.click("#sign-in")
        tab.goto(f"/events/{POSITION}")
        assert tab.locator("#proof-noscript").inner_text().startswith("The check needs JavaScript")
        offline = tab.locator("#proof-offline").inner_text()
        assert f"ledger verify-proof proof-{POSITION}.tlog-proof --verifier-key log.pub" in offline
        number = published.checkpoint["number"]
        assert tab.locator("#proof-downloads a").evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
            f"/events/{POSITION}/proof.tlog-proof?published={number}", f"/events/{POSITION}/proof.json?published={number}"]
    finally:
        context.close()


def test_the_api_proof_is_ledger_proves_output_and_verifies_offline_as_given(served: Served, published: Log, tmp_path: Path) -> None:
    stored = api(served, f"/api/events/{POSITION}")
    (tmp_path / "proof.json").write_text(json.dumps(stored["proof"]))
    (tmp_path / "checkpoint.txt").write_text(stored["checkpoint"]["note"])
    proved = cli("prove", str(POSITION), "--checkpoint", str(tmp_path / "checkpoint.txt"), "--db", served.db)
    assert json.loads(proved) == stored["proof"]
    verified = cli("verify-proof", str(tmp_path / "proof.json"), "--checkpoint", str(tmp_path / "checkpoint.txt"), "--verifier-key", str(published.public))
    assert verified.startswith(f"verified: the event at position {POSITION} is leaf {POSITION - 1} of the tree of {stored['checkpoint']['tree_size']} events")
    # The published checkpoint asked for by its number is the same; one that is not, or a malformed one, is refused in one line.
    assert api(served, f"/api/events/{POSITION}?published={stored['checkpoint']['number']}") == stored
    assert call(served, f"/api/events/{POSITION}?published=99") == (404, b'{"error":"published: 99: no published checkpoint has this number (see `ledger checkpoint --list`)"}')
    status, page = call(served, f"/events/{POSITION}?checkpoint=not%20a%20checkpoint")
    assert status == 400 and b"checkpoint: &#39;not a checkpoint&#39;: a checkpoint needs an origin line" in page, page
