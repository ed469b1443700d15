// Ferry receipts, checked in the browser with WebCrypto only (SHA-256 and
// Ed25519), as docs/receipts.md specifies them: the verifier key (§3), signed
// notes and checkpoints (§3), leaves and the RFC 9162 tree (§1, §2), and
// receipts, which carry a signed checkpoint and the leaf's inclusion proof in
// it (§4, §7 steps 1 to 6); optionally an inclusion proof against a later
// checkpoint (§5). Nothing here talks to the server: the page fetches, this
// checks. `window.ferryVerifyReceipt(receipt, keyText, inclusion?)` is the one
// entry point the page (and its tests) use.
"use strict";

const FerryVerify = (() => {
  const utf8 = new TextEncoder();
  const EM_DASH = "\u2014";
  // A note, a leaf or a checkpoint holds no control character but "\n".
  const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
  const DECIMAL = /^(0|[1-9][0-9]*)$/;
  const LEAF_FIELDS = {
    stored: ["sha256", "size", "kind", "format"],
    deleted: ["credential", "address"],
    expired: ["rule"],
    aborted: [],
    read: ["what", "credential", "address"],
    hold: ["credential", "address"],
    release: ["credential", "address"],
  };
  const RECEIPT_MEMBERS = { log: "string", index: "number", id: "string", sha256: "string", size: "number", received_at: "string", leaf: "string", checkpoint: "string", proof: "array" };

  /** A check that did not hold; its message says which, for people. */
  class VerifyFailure extends Error {}
  const fail = (message) => { throw new VerifyFailure(message); };

  // ---- bytes -------------------------------------------------------------------

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) { out.set(part, at); at += part.length; }
    return out;
  }

  function equalBytes(a, b) {
    return a.length === b.length && a.every((byte, i) => byte === b[i]);
  }

  function toBase64(bytes) {
    return btoa(String.fromCharCode(...bytes));
  }

  /** Standard, padded, canonical base64 (RFC 4648 §4), or a failure naming `what`. */
  function fromBase64(text, what) {
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) fail(what + " is not base64");
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    if (toBase64(bytes) !== text) fail(what + " is not canonical base64");
    return bytes;
  }

  function toHex(bytes) {
    return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function sha256(...parts) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
  }

  // ---- keys and signed notes (§3) --------------------------------------------

  /** The first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key). */
  async function keyHash(name, publicKey) {
    return (await sha256(utf8.encode(name), Uint8Array.of(0x0a, 0x01), publicKey)).slice(0, 4);
  }

  /** Verifier key text `<name>+<8 hex key hash>+<base64(0x01 || key)>`, checked and imported. */
  async function parseKey(text) {
    const line = text.endsWith("\n") ? text.slice(0, -1) : text;
    const first = line.indexOf("+");
    const second = line.indexOf("+", first + 1);
    if (first <= 0 || second < 0) fail("the log's key is not verifier key text");
    const name = line.slice(0, first);
    const hashHex = line.slice(first + 1, second);
    if (/\s/.test(name)) fail("the log's key name holds white space");
    if (!/^[0-9a-f]{8}$/.test(hashHex)) fail("the log's key hash is not 8 hex digits");
    const raw = fromBase64(line.slice(second + 1), "the log's key");
    if (raw.length !== 33 || raw[0] !== 0x01) fail("the log's key is not an Ed25519 key");
    const publicKey = raw.slice(1);
    const hash = await keyHash(name, publicKey);
    if (toHex(hash) !== hashHex) fail("the log's key hash does not match its name and key");
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return { name, hash, key, text: line };
  }

  /** A signed note's body (its final "\n" included) and signature lines. */
  function parseNote(text) {
    if (CONTROL.test(text)) fail("the note holds a control character");
    const split = text.lastIndexOf("\n\n");
    if (split < 0 || !text.endsWith("\n")) fail("the note has no signatures");
    const body = text.slice(0, split + 1);
    if (body.slice(0, -1).split("\n").some((line) => line === "")) fail("the note's body has an empty line");
    const signatures = text.slice(split + 2, -1).split("\n").map((line) => {
      if (!line.startsWith(EM_DASH + " ")) fail("a signature line does not start with an em dash");
      const rest = line.slice(2);
      const space = rest.indexOf(" ");
      if (space <= 0) fail("a signature line has no key name");
      const raw = fromBase64(rest.slice(space + 1), "a signature");
      if (raw.length < 5) fail("a signature is too short");
      return { name: rest.slice(0, space), hash: raw.slice(0, 4), signature: raw.slice(4) };
    });
    return { body, signatures };
  }

  /** Opens a note with `key`: its body, if a line by that key verifies. */
  async function verifyNote(text, key, what) {
    const note = parseNote(text);
    const ours = note.signatures.filter((s) => s.name === key.name && equalBytes(s.hash, key.hash));
    if (!ours.length) fail(what + " carries no signature by " + key.name);
    const body = utf8.encode(note.body);
    for (const s of ours) {
      if (s.signature.length === 64 && await crypto.subtle.verify({ name: "Ed25519" }, key.key, s.signature, body)) return note.body;
    }
    fail(what + ": signature does not verify");
  }

  // ---- leaves and the tree (§1, §2) ---------------------------------------------

  /** A leaf's fields, refusing any other layout than §1's. */
  function parseLeaf(text) {
    if (CONTROL.test(text) || !text.endsWith("\n")) fail("the leaf is not a Ferry leaf");
    const [magic, ...lines] = text.slice(0, -1).split("\n");
    if (magic !== "ferry-leaf/v1") fail("the leaf is not a ferry-leaf/v1 leaf");
    const pairs = lines.map((line) => {
      const space = line.indexOf(" ");
      if (space <= 0 || space === line.length - 1) fail("a leaf line is not `key value`");
      return [line.slice(0, space), line.slice(space + 1)];
    });
    const event = pairs.length && pairs[0][0] === "event" ? pairs[0][1] : "";
    const fields = LEAF_FIELDS[event];
    if (!fields) fail("the leaf's event is unknown");
    const keys = ["event", "id", ...fields, "time"];
    if (pairs.length !== keys.length || pairs.some(([key], i) => key !== keys[i])) fail("the leaf's lines are not those of a " + event + " leaf");
    return Object.fromEntries(pairs);
  }

  /** SHA-256(0x00 || leaf bytes). */
  async function leafHash(text) {
    return sha256(Uint8Array.of(0x00), utf8.encode(text));
  }

  async function nodeHash(left, right) {
    return sha256(Uint8Array.of(0x01), left, right);
  }

  /** RFC 9162 §2.1.3.2: does `proof` lead from leaf `index`'s hash to `root` of `size` leaves? */
  async function verifyInclusion(index, size, hash, proof, root) {
    if (index >= size) return false;
    // Numbers, not 32-bit integers: halve by division.
    const half = (n) => Math.floor(n / 2);
    let fn = index, sn = size - 1, r = hash;
    for (const p of proof) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) { fn = half(fn); sn = half(sn); }
      } else {
        r = await nodeHash(r, p);
      }
      fn = half(fn); sn = half(sn);
    }
    return sn === 0 && equalBytes(r, root);
  }

  /** A checkpoint's body: origin, size, root (further lines ignored). */
  function parseCheckpoint(body) {
    const [origin, size, root] = body.split("\n");
    if (!origin || !DECIMAL.test(size || "")) fail("the checkpoint is not a checkpoint");
    const hash = fromBase64(root || "", "the checkpoint's root");
    if (hash.length !== 32) fail("the checkpoint's root is not a SHA-256 hash");
    return { origin, size: Number(size), root: hash };
  }

  // ---- receipts and proofs (§4, §5, §7) ------------------------------------------

  /** A proof's hashes: each 32 bytes in canonical base64. */
  function proofHashes(list, what) {
    if (!Array.isArray(list)) fail(what + " is not a list of hashes");
    return list.map((p) => {
      const bytes = fromBase64(String(p), "a hash of " + what);
      if (bytes.length !== 32) fail("a hash of " + what + " is not 32 bytes");
      return bytes;
    });
  }

  /** Steps 2 and 3: the receipt's members, and its checkpoint, signed by the key, of the receipt's log. */
  async function checkSignature(receipt, key) {
    if (receipt === null || typeof receipt !== "object") fail("the receipt is not a JSON object");
    const members = Object.keys(receipt).sort().join();
    if (members !== Object.keys(RECEIPT_MEMBERS).sort().join()) fail("the receipt's members are not " + Object.keys(RECEIPT_MEMBERS).join(", "));
    for (const [name, type] of Object.entries(RECEIPT_MEMBERS)) {
      const value = receipt[name];
      const ok = type === "array" ? Array.isArray(value) : typeof value === type && (type !== "number" || Number.isSafeInteger(value));
      if (!ok) fail("the receipt's " + name + " is not " + { array: "a list", number: "an integer", string: "a string" }[type]);
    }
    const checkpoint = parseCheckpoint(await verifyNote(receipt.checkpoint, key, "the receipt's checkpoint"));
    if (receipt.log !== key.name || checkpoint.origin !== key.name) fail("the receipt's log, its checkpoint's origin and the key's name are not the same");
    return checkpoint;
  }

  /** Steps 4 to 6: the leaf, the members that repeat it, and its inclusion in the receipt's checkpoint. */
  async function checkLeaf(receipt, checkpoint) {
    const leaf = parseLeaf(receipt.leaf);
    if (leaf.event !== "stored") fail("the receipt's leaf is not a stored leaf");
    const readable = { id: leaf.id, sha256: leaf.sha256, size: leaf.size, received_at: leaf.time };
    for (const [name, value] of Object.entries(readable)) {
      if (String(receipt[name]) !== value) fail("the receipt's " + name + " is not the leaf's");
    }
    const hash = await leafHash(receipt.leaf);
    const proof = proofHashes(receipt.proof, "the receipt's proof");
    if (!await verifyInclusion(receipt.index, checkpoint.size, hash, proof, checkpoint.root)) fail("the leaf is not in the receipt's checkpoint: its inclusion proof does not verify");
    return hash;
  }

  /** An inclusion proof of the receipt's leaf against its own (later) checkpoint, signed by the key. */
  async function checkInclusion(receipt, hash, inclusion, key) {
    if (inclusion === null || typeof inclusion !== "object") fail("the inclusion proof is not a proof");
    const checkpoint = parseCheckpoint(await verifyNote(String(inclusion.checkpoint), key, "the later checkpoint"));
    if (checkpoint.origin !== receipt.log) fail("the later checkpoint is another log's");
    if (inclusion.index !== receipt.index) fail("the proof is for another leaf");
    if (inclusion.size !== checkpoint.size) fail("the proof is for another tree size than its checkpoint's");
    const proof = proofHashes(inclusion.proof, "the inclusion proof");
    if (!await verifyInclusion(receipt.index, checkpoint.size, hash, proof, checkpoint.root)) fail("the leaf is not in the later checkpoint: the inclusion proof does not verify");
    return checkpoint;
  }

  /**
   * Checks a receipt (a JSON object or its text) with the log's verifier key
   * text: its checkpoint's signature, then the leaf's inclusion in that
   * checkpoint. With `inclusion` (the JSON of /api/log/inclusion), also the
   * leaf's inclusion in that proof's later checkpoint. Never throws: answers
   * `{ok, signature, inclusion, checkpointSize, later, laterSize, error}`:
   * `signature` and `inclusion` say which checks of the receipt held,
   * `checkpointSize` is the size of the receipt's checkpoint, `later` whether
   * the separate proof held (null when none was given) and `laterSize` its
   * checkpoint's size.
   */
  async function verifyReceipt(receipt, keyText, inclusion) {
    const result = { ok: false, signature: false, inclusion: false, checkpointSize: null, later: inclusion ? false : null, laterSize: null, error: null };
    try {
      const parsed = typeof receipt === "string" ? JSON.parse(receipt) : receipt;
      const key = await parseKey(String(keyText));
      const checkpoint = await checkSignature(parsed, key);
      result.signature = true;
      result.checkpointSize = checkpoint.size;
      const hash = await checkLeaf(parsed, checkpoint);
      result.inclusion = true;
      if (inclusion) {
        const later = await checkInclusion(parsed, hash, typeof inclusion === "string" ? JSON.parse(inclusion) : inclusion, key);
        result.later = true;
        result.laterSize = later.size;
      }
      result.ok = true;
    } catch (err) {
      result.error = err instanceof VerifyFailure ? err.message : "cannot check: " + (err.message || String(err));
    }
    return result;
  }

  return { parseKey, parseNote, verifyNote, parseLeaf, leafHash, verifyInclusion, parseCheckpoint, verifyReceipt };
})();

window.ferryVerifyReceipt = FerryVerify.verifyReceipt;
