// Checks an event's inclusion proof in this browser (WebCrypto), against a signed checkpoint and the log key the auditor pinned: the auditor trusts the browser, not the server.
(function () {
  "use strict";
  const KEY_STORE = "cluster-ledger:verifier-key";
  const POLICY_STORE = "cluster-ledger:witness-policy";
  const SIGNATURE_PREFIX = "\u2014 ";
  const ALG_ED25519 = 1;  // a note signer's key (golang.org/x/mod/sumdb/note)
  const ALG_COSIGNATURE_V1 = 4;  // a witness's key (C2SP tlog-cosignature)
  const MAX_TIMESTAMP = (1n << 63n) - 1n;
  const REF_NAMESPACE = "44f25c1a7fe154f9ab7afabff3e47f97";  // domain.base: uuid5(NAMESPACE_URL, "https://cluster-ledger.eu/ref")
  const $ = (id) => document.getElementById(id);
  const utf8 = new TextEncoder();
  const text = (data) => new TextDecoder().decode(data);

  class Failure extends Error {}
  const fail = (message) => { throw new Failure(message); };

  function say(message, ok) {
    const result = $("proof-result");
    result.textContent = message;
    result.className = ok ? "ok" : "miss";
  }

  function bytes(b64, what) {
    try {
      return Uint8Array.from(atob(b64.trim()), (c) => c.charCodeAt(0));
    } catch (error) {
      return fail(what + " is not base64");
    }
  }
  const b64 = (data) => btoa(String.fromCharCode(...data));
  const hex = (data) => [...data].map((b) => b.toString(16).padStart(2, "0")).join("");
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const join = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let at = 0; for (const p of parts) { out.set(p, at); at += p.length; } return out; };
  const number = (n) => BigInt(n).toLocaleString("en-US");

  const secure = Boolean(window.crypto && window.crypto.subtle);
  const digest = async (algorithm, data) => new Uint8Array(await crypto.subtle.digest(algorithm, data));
  const leafHash = (leaf) => digest("SHA-256", join(Uint8Array.of(0), leaf));
  const nodeHash = (left, right) => digest("SHA-256", join(Uint8Array.of(1), left, right));

  async function ed25519(publicKey, signature, message) {
    try {
      const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
    } catch (error) {
      return false;
    }
  }

  // Signed notes: a key's hash is the first 4 bytes of SHA-256(name, "\n", algorithm byte, public key).
  async function keyHash(name, algorithm, publicKey) {
    const h = await digest("SHA-256", join(utf8.encode(name + "\n"), Uint8Array.of(algorithm), publicKey));
    return new DataView(h.buffer).getUint32(0);
  }
  const label = (key) => key.name + "+" + key.hash.toString(16).padStart(8, "0");

  async function parseKey(given, algorithm, what) {
    const parts = given.trim().split("+");
    if (parts.length < 3) fail(what + ": expected name+hash+base64");
    const name = parts[0], declared = parts[1], encoded = parts.slice(2).join("+");
    if (!name || /\s/.test(name)) fail(what + ": the name must be non-empty, without spaces");
    if (!/^[0-9a-f]{8}$/i.test(declared)) fail(what + ": the hash must be 8 hex digits");
    const raw = bytes(encoded, what);
    if (raw.length !== 33 || raw[0] !== algorithm) fail(what + ": not an Ed25519 key of type 0x0" + algorithm + " (33 bytes)");
    const key = { name: name, hash: await keyHash(name, algorithm, raw.slice(1)), publicKey: raw.slice(1) };
    if (key.hash !== parseInt(declared, 16)) fail(what + " " + name + ": hash " + declared + " does not match the key (" + label(key).split("+")[1] + ")");
    return key;
  }

  // A signed note: its text, a blank line, and lines "— name base64(key hash ‖ signature)".
  function parseNote(note) {
    const at = note.lastIndexOf("\n\n");
    if (at < 0) fail("the checkpoint carries no signature: nothing anchors its root (publish a signed one: ledger checkpoint --sign KEY)");
    const block = note.slice(at + 2);
    if (!block.endsWith("\n")) fail("the checkpoint's signature lines must end with a newline");
    const signatures = block.slice(0, -1).split("\n").map((line) => {
      if (!line.startsWith(SIGNATURE_PREFIX)) fail("the checkpoint has a signature line that is not '\u2014 name base64'");
      const rest = line.slice(SIGNATURE_PREFIX.length), space = rest.indexOf(" ");
      if (space < 1) fail("the checkpoint has a signature line without a name and a signature");
      const name = rest.slice(0, space), raw = bytes(rest.slice(space + 1), "the signature by " + name);
      if (raw.length < 5) fail("the signature by " + name + " is too short");
      return { name: name, hash: new DataView(raw.buffer).getUint32(0), signature: raw.slice(4) };
    });
    return { body: note.slice(0, at + 1), signatures: signatures };
  }

  // C2SP tlog-checkpoint: origin, tree size and root hash lines, then extension lines.
  function parseCheckpoint(body) {
    const lines = body.split("\n");
    if (lines.length < 4 || lines[lines.length - 1] !== "") fail("the checkpoint needs origin, tree size and root hash lines");
    if (!lines[0]) fail("the checkpoint's origin line is empty");
    if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) fail("the checkpoint's tree size " + JSON.stringify(lines[1]) + " is not a decimal number");
    const root = bytes(lines[2], "the checkpoint's root hash");
    if (root.length !== 32) fail("the checkpoint's root hash has " + root.length + " bytes, not 32");
    return { origin: lines[0], size: BigInt(lines[1]), root: root };
  }

  // C2SP tlog-policy: witness, group and quorum lines (the log's key is the one pinned, so log lines are not needed).
  async function parsePolicy(given) {
    const witnesses = [], groups = new Map(), names = new Set();
    let quorum = null;
    for (const [n, line] of given.split("\n").entries()) {
      const where = "policy line " + (n + 1), fields = line.replace(/\t/g, " ").split(" ").filter(Boolean);
      if (!fields.length || fields[0].startsWith("#")) continue;
      const [keyword, ...args] = fields;
      if (keyword === "log" && (args.length === 1 || args.length === 2)) {
        await parseKey(args[0], ALG_ED25519, where + ": log key");
      } else if (keyword === "witness" && (args.length === 2 || args.length === 3)) {
        if (names.has(args[0]) || args[0] === "none") fail(where + ": name " + args[0] + " is already defined");
        witnesses.push({ name: args[0], key: await parseKey(args[1], ALG_COSIGNATURE_V1, where + ": witness key") });
        names.add(args[0]);
      } else if (keyword === "group" && args.length >= 3) {
        const [name, threshold, ...members] = args;
        if (names.has(name) || name === "none") fail(where + ": name " + name + " is already defined");
        for (const m of members) if (!names.has(m)) fail(where + ": group " + name + ": member " + m + " is not defined above");
        const k = threshold === "all" ? members.length : threshold === "any" ? 1 : /^[1-9][0-9]*$/.test(threshold) ? Number(threshold) : 0;
        if (k < 1 || k > members.length) fail(where + ": group " + name + ": threshold " + threshold + " must be all, any or 1 to " + members.length);
        groups.set(name, { k: k, members: members });
        names.add(name);
      } else if (keyword === "quorum" && args.length === 1) {
        if (quorum !== null) fail(where + ": a second quorum line");
        if (args[0] !== "none" && !names.has(args[0])) fail(where + ": quorum " + args[0] + " is not defined above");
        quorum = args[0];
      } else {
        fail(where + ": expected witness, group, quorum or log, with their items");
      }
    }
    if (quorum === null) fail("policy: no quorum line (use `quorum none` to require no cosignatures)");
    return { witnesses: witnesses, groups: groups, quorum: quorum };
  }

  function holds(policy, name, valid) {
    if (name === "none") return true;
    const group = policy.groups.get(name);
    if (!group) return valid.has(name);
    return group.members.filter((m) => holds(policy, m, valid)).length >= group.k;
  }

  // C2SP tlog-cosignature: key hash ‖ u64 timestamp ‖ Ed25519 signature of "cosignature/v1\ntime T\n" + the checkpoint body.
  async function cosignatures(policy, note) {
    const seen = [];
    for (const w of policy.witnesses) {
      let status = "missing", time = null;
      for (const s of note.signatures.filter((s) => s.name === w.key.name && s.hash === w.key.hash)) {
        if (s.signature.length !== 72) { status = "invalid"; continue; }
        const stamp = new DataView(s.signature.buffer, s.signature.byteOffset).getBigUint64(0);
        if (stamp > MAX_TIMESTAMP) { status = "invalid"; continue; }
        const message = utf8.encode("cosignature/v1\ntime " + stamp + "\n" + note.body);
        if (await ed25519(w.key.publicKey, s.signature.slice(8), message)) { status = "valid"; time = stamp; break; }
        status = "invalid";
      }
      seen.push({ witness: w, status: status, time: time });
    }
    return seen;
  }

  // The leaf format of transparency/leaf.py: u8 format 1, u64 position, u16 id, u64 version, u16 topic, u16 recorded time, u32 payload.
  function parseLeaf(leaf) {
    const view = new DataView(leaf.buffer, leaf.byteOffset, leaf.byteLength);
    let at = 0;
    const need = (n) => { if (at + n > leaf.length) fail("the leaf bytes end early"); const from = at; at += n; return from; };
    const u = (size) => { const from = need(size); return size === 8 ? view.getBigUint64(from) : size === 4 ? view.getUint32(from) : size === 2 ? view.getUint16(from) : view.getUint8(from); };
    const field = (size) => { const n = u(size); const from = need(n); return leaf.slice(from, from + n); };
    if (u(1) !== 1) fail("the leaf bytes are not of leaf format 1");
    const fields = { position: u(8), aggregate: text(field(2)), version: u(8), topic: text(field(2)), recorded: text(field(2)), payload: field(4) };
    if (at !== leaf.length) fail("the leaf bytes go on after the payload");
    return fields;
  }

  // RFC 9162, section 2.1.3.2: verifying an inclusion proof.
  async function rootFromPath(hash, index, size, path) {
    if (index >= size) fail("leaf " + index + " is beyond the checkpoint's tree of " + size);
    let fn = index, sn = size - 1n, r = hash;
    for (const p of path) {
      if (sn === 0n) fail("the path is longer than the tree allows");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) fail("the path is shorter than the tree needs");
    return r;
  }

  // The aggregate id of a platform reference, as domain.base.ref_id computes it (UUID version 5).
  async function refId(ref) {
    const h = (await digest("SHA-1", join(Uint8Array.from(REF_NAMESPACE.match(/../g), (x) => parseInt(x, 16)), utf8.encode(ref)))).slice(0, 16);
    h[6] = (h[6] & 0x0f) | 0x50;
    h[8] = (h[8] & 0x3f) | 0x80;
    return hex(h);
  }

  // An ISO 8601 moment as one comparable string: seconds since 1970 and the fraction to the nanosecond.
  function instant(given) {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(given.trim());
    const ms = m ? Date.parse(m[1] + m[3]) : NaN;
    return Number.isNaN(ms) ? null : ms / 1000 + "." + (m[2] || "").padEnd(9, "0");
  }

  // Each field the server rendered must be the verified leaf's; an unreadable event shows fewer fields, each still compared.
  async function compare(leaf) {
    const shown = (id) => { const e = $(id); return e ? e.textContent.trim() : null; };
    const aggregate = leaf.aggregate.replace(/-/g, "").toLowerCase();
    if (shown("event-position") !== String(leaf.position)) fail("position: the proof's leaf is the event at position " + leaf.position + ", this page shows position " + shown("event-position"));
    if ((shown("event-aggregate") || "").replace(/-/g, "").toLowerCase() !== aggregate) fail("record id: the page shows " + shown("event-aggregate") + ", the leaf holds " + leaf.aggregate);
    if (shown("event-version") !== String(leaf.version)) fail("version: the page shows " + shown("event-version") + ", the leaf holds " + leaf.version);
    if (shown("event-topic") !== leaf.topic) fail("type: the page shows topic " + shown("event-topic") + ", the leaf holds " + leaf.topic);
    const type = $("event-type");
    if (type) {
      const topics = [leaf.topic, type.dataset.currentTopic || leaf.topic];
      if (!topics.some((t) => t.split(":").pop() === type.textContent.trim())) fail("type: the page shows " + type.textContent.trim() + ", the leaf holds " + leaf.topic);
    }
    const ref = $("event-ref");
    if (ref) {
      const given = ref.textContent.trim();
      if (given.toLowerCase() !== aggregate && (await refId(given)) !== aggregate) fail("record: the page shows " + given + ", whose id is not the leaf's " + leaf.aggregate);
    }
    const recorded = $("event-recorded");
    if (recorded && instant(recorded.getAttribute("datetime") || "") !== instant(leaf.recorded)) fail("recorded time: the page shows " + recorded.getAttribute("datetime") + ", the leaf holds " + (leaf.recorded || "none"));
    if ($("payload").textContent !== text(leaf.payload)) fail("payload: the page shows a payload other than the leaf's");
  }

  function showLeaf(leaf) {
    const list = $("leaf-fields");
    list.replaceChildren();
    const add = (name, value, pre) => {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = name;
      dd.className = "wrap";
      const holder = pre ? dd.appendChild(document.createElement("pre")) : dd;
      holder.textContent = value;
      list.append(dt, dd);
    };
    add("position", number(leaf.position));
    add("record id", leaf.aggregate);
    add("version", String(leaf.version));
    add("type", leaf.topic.split(":").pop() + " (" + leaf.topic + ")");
    add("recorded", leaf.recorded || "none in the payload");
    add("payload", text(leaf.payload), true);
    $("verified").hidden = false;
  }

  // Each witness of the pinned policy, whatever the verdict: which cosignatures hold is what a failed quorum is about.
  function showCosignatures(seen) {
    $("cosignatures").replaceChildren(...seen.map((c) => {
      const item = document.createElement("li");
      const when = c.time === null ? "" : ", " + new Date(Number(c.time) * 1000).toISOString().replace(".000Z", "+00:00");
      item.textContent = "witness " + c.witness.name + " (" + label(c.witness.key) + "): cosignature " + c.status + when;
      item.className = c.status === "valid" ? "ok" : "miss";
      return item;
    }));
  }

  async function check() {
    $("verified").hidden = true;
    showCosignatures([]);
    const pinned = localStorage.getItem(KEY_STORE);
    if (!pinned) fail("no verifier key is pinned: enter the log's key above (from the log's operator, never from this server) and pin it");
    const key = await parseKey(pinned, ALG_ED25519, "the pinned key");
    const note = parseNote($("proof-checkpoint").textContent);
    const mine = note.signatures.filter((s) => s.name === key.name && s.hash === key.hash);
    if (!mine.length) fail("the checkpoint is not signed by the pinned key " + label(key) + " (it is signed by " + (note.signatures.map((s) => s.name).join(", ") || "no one") + ")");
    let signed = false;
    for (const s of mine) signed = signed || await ed25519(key.publicKey, s.signature, utf8.encode(note.body));
    if (!signed) fail("the signature by the pinned key " + label(key) + " does not match the checkpoint");
    const checkpoint = parseCheckpoint(note.body);
    const policyText = localStorage.getItem(POLICY_STORE);
    const policy = policyText ? await parsePolicy(policyText) : null;
    const seen = policy ? await cosignatures(policy, note) : [];
    showCosignatures(seen);
    const leafBytes = bytes($("proof-leaf").textContent, "the leaf");
    const hash = await leafHash(leafBytes);
    if (b64(hash) !== $("proof-leaf-hash").textContent.trim()) fail("the leaf bytes do not hash to the leaf hash shown");
    const leaf = parseLeaf(leafBytes);
    await compare(leaf);
    const path = [...document.querySelectorAll("#proof-path code")].map((c) => bytes(c.textContent, "a path hash"));
    const index = BigInt($("proof-data").dataset.leafIndex);
    const root = await rootFromPath(hash, index, checkpoint.size, path);
    if (!same(root, checkpoint.root)) fail("the path leads to root " + b64(root) + ", the checkpoint's root is " + b64(checkpoint.root));
    showLeaf(leaf);
    const valid = new Set(seen.filter((c) => c.status === "valid").map((c) => c.witness.name));
    const when = $("proof-data").dataset.publishedAt;
    let verdict = "The proof holds: event " + number(leaf.position) + " is leaf " + number(index) + " of the checkpoint of " + number(checkpoint.size)
      + " events of " + checkpoint.origin + " signed by " + label(key) + (when ? ", published on " + when : "");
    if (policy) {
      if (!holds(policy, policy.quorum, valid)) fail("the checkpoint is signed by " + label(key) + ", but the witness quorum " + policy.quorum + " is not met (valid cosignatures: " + ([...valid].join(", ") || "none") + ")");
      verdict += ", witness quorum " + policy.quorum + " met" + (valid.size ? " (" + [...valid].join(", ") + ")" : "");
    }
    say(verdict + ".", true);
  }

  function showPins() {
    const key = localStorage.getItem(KEY_STORE), policy = localStorage.getItem(POLICY_STORE);
    $("verifier-key").value = key || "";
    $("witness-policy").value = policy || "";
    const pinned = $("pinned");
    pinned.className = "caption";
    pinned.textContent = (key ? "Pinned key: " + key.split("+").slice(0, 2).join("+") + "." : "No key pinned yet.")
      + (policy ? " A witness policy is pinned." : " No witness policy pinned.") + " Both are kept in this browser's storage only.";
  }

  async function pin(input, store, parse) {
    const value = $(input).value.trim();
    try {
      if (!secure) fail("this browser offers no WebCrypto here (it needs HTTPS, or localhost) to check the key with");
      if (value) await parse(value);
      if (value) localStorage.setItem(store, value); else localStorage.removeItem(store);
      showPins();
    } catch (error) {
      $("pinned").textContent = "Not pinned: " + error.message + ".";
      $("pinned").className = "miss";
    }
  }

  // Listened for on the document, so a proof section replaced in the page is still checked as it then stands.
  document.addEventListener("click", async (event) => {
    const id = event.target && event.target.id;
    if (id === "pin-key") await pin("verifier-key", KEY_STORE, (v) => parseKey(v, ALG_ED25519, "verifier key"));
    if (id === "pin-policy") await pin("witness-policy", POLICY_STORE, parsePolicy);
    if (id !== "check-proof") return;
    if (!secure) { say("This browser offers no WebCrypto here (it needs HTTPS, or localhost): the proof cannot be checked on this page.", false); return; }
    try {
      await check();
    } catch (error) {
      say("The proof does not hold: " + error.message + ".", false);
    }
  });
  showPins();
})();
