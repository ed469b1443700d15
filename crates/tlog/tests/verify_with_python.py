#!/usr/bin/env python3
"""Verifies a Ferry checkpoint and an inclusion proof with no Ferry code.

Usage: verify_with_python.py DIR

DIR/case.json holds:
  verifier_key  "<name>+<8 hex digits>+<base64(0x01 || 32-byte Ed25519 public key)>"
  note          a signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note)
  leaf          the leaf's data, hex
  index         the leaf's index
  proof         the inclusion proof, leaf side first, a list of hex hashes

It checks the key hash, the note's Ed25519 signature over the checkpoint body, and
the inclusion of SHA-256(0x00 || leaf) at `index` in the tree of the checkpoint's
size and root (RFC 9162 section 2.1.3.2). Exits 0 when all hold, 1 otherwise.
Only hashlib and the `cryptography` package are used.
"""

import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Invalid(Exception):
    pass


def b64decode(text):
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise Invalid(f"bad base64: {e}") from None


def parse_verifier_key(text):
    name, key_hash, key = text.split("+", 2)
    key = b64decode(key)
    if len(key) != 33 or key[0] != 0x01:
        raise Invalid("not an Ed25519 verifier key")
    expected = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if bytes.fromhex(key_hash) != expected:
        raise Invalid("key hash does not match the key")
    return name, expected, Ed25519PublicKey.from_public_bytes(key[1:])


def open_note(note, name, key_hash, public_key):
    """Returns the body of `note` if it carries a valid signature by the key."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise Invalid("not a signed note")
    body, signatures = note[: split + 1], note[split + 2 :]
    for line in signatures[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise Invalid("bad signature line")
        line_name, _, b64 = line[2:].partition(" ")
        sig = b64decode(b64)
        if line_name != name or sig[:4] != key_hash:
            continue
        try:
            public_key.verify(sig[4:], body.encode())
        except InvalidSignature:
            raise Invalid("bad signature") from None
        return body
    raise Invalid("no signature by the key")


def parse_checkpoint(body):
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise Invalid("a checkpoint has three lines")
    origin, size, root = lines[:3]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise Invalid("bad tree size")
    root = b64decode(root)
    if len(root) != 32:
        raise Invalid("bad root hash")
    return origin, int(size), root


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf_hash, index, size, proof, root):
    """RFC 9162 section 2.1.3.2, step by step."""
    if index >= size:
        raise Invalid("index out of range")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise Invalid("proof too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("proof too short")
    if r != root:
        raise Invalid("proof does not lead to the root")


def main():
    case = json.loads((Path(sys.argv[1]) / "case.json").read_text())
    name, key_hash, public_key = parse_verifier_key(case["verifier_key"])
    body = open_note(case["note"], name, key_hash, public_key)
    origin, size, root = parse_checkpoint(body)
    leaf_hash = hashlib.sha256(b"\x00" + bytes.fromhex(case["leaf"])).digest()
    proof = [bytes.fromhex(h) for h in case["proof"]]
    if any(len(h) != 32 for h in proof):
        raise Invalid("a proof hash is 32 bytes")
    verify_inclusion(leaf_hash, case["index"], size, proof, root)
    print(f"ok: leaf {case['index']} of {origin} at size {size}")


if __name__ == "__main__":
    try:
        main()
    except (Invalid, ValueError, KeyError) as e:
        print(f"invalid: {e}", file=sys.stderr)
        sys.exit(1)
