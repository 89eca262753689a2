// Recomputes an RFC 9162 inclusion proof with the browser's own SHA-256 (WebCrypto): the auditor trusts the browser, not the server.
(function () {
  "use strict";
  const result = document.getElementById("proof-result");
  const button = document.getElementById("check-proof");
  const say = (text, ok) => { result.textContent = text; result.className = ok ? "meets" : "miss"; };
  const bytes = (b64) => Uint8Array.from(atob(b64.trim()), (c) => c.charCodeAt(0));
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
  const join = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let at = 0; for (const p of parts) { out.set(p, at); at += p.length; } return out; };

  if (!(window.crypto && window.crypto.subtle)) {
    button.disabled = true;
    say("This browser offers no WebCrypto here (it needs HTTPS, or localhost); the proof cannot be checked on this page.", false);
    return;
  }
  const sha256 = async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  const leafHash = (leaf) => sha256(join(Uint8Array.of(0), leaf));
  const nodeHash = (left, right) => sha256(join(Uint8Array.of(1), left, right));

  // RFC 9162, section 2.1.3.2: verifying an inclusion proof.
  async function rootFromPath(hash, index, size, path) {
    if (index >= size) throw new Error("leaf index beyond the tree size");
    let fn = BigInt(index), sn = BigInt(size) - 1n, r = hash;
    for (const p of path) {
      if (sn === 0n) throw new Error("the path is longer than the tree allows");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1n) === 0n) { while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; } }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the path is shorter than the tree needs");
    return r;
  }

  button.addEventListener("click", async () => {
    try {
      const data = document.getElementById("proof-data").dataset;
      const leaf = bytes(document.getElementById("proof-leaf").textContent);
      const path = [...document.querySelectorAll("#proof-path code")].map((c) => bytes(c.textContent));
      const shownLeafHash = document.getElementById("proof-leaf-hash").textContent.trim();
      const root = document.getElementById("proof-root").textContent.trim();
      const hash = await leafHash(leaf);
      if (b64(hash) !== shownLeafHash) { say("The proof does not hold: the leaf bytes do not hash to the leaf hash shown.", false); return; }
      const computed = b64(await rootFromPath(hash, Number(data.leafIndex), Number(data.treeSize), path));
      if (computed === root) say("The proof holds: this browser computed root " + computed + ".", true);
      else say("The proof does not hold: this browser computed root " + computed + ", the page shows " + root + ".", false);
    } catch (error) {
      say("The proof does not hold: " + error.message + ".", false);
    }
  });
})();
