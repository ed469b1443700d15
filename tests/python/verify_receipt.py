#!/usr/bin/env python3
"""Verifies a Ferry receipt, and optionally a later inclusion proof, with no Ferry code.

A stranger's verifier, written from docs/receipts.md alone: only the standard
library and the `cryptography` package (Ed25519) are used. A receipt is checked
by itself (docs/receipts.md section 7, steps 1 to 6): its checkpoint's signature
by the key, that the checkpoint is of the receipt's log, the leaf and the
members that repeat it, and the leaf's inclusion proof in the checkpoint's tree.

Usage:
  verify_receipt.py --key KEYTEXT RECEIPT.json [--inclusion PROOF.json]
  verify_receipt.py --key KEYTEXT --cases CASES.json

KEYTEXT is the log's verifier key, `<name>+<8 hex digits>+<base64(0x01 || key)>`
(GET /api/log/key); --key-file PATH reads it from a file instead. PROOF.json
(optional) is the answer to GET /api/log/inclusion?index=<the receipt's index>:
the leaf in a later checkpoint of the log. CASES.json is
a list of {"receipt": PATH, "inclusion": PATH or null}, each verified in turn
(one process for many receipts).

Prints one line per receipt, `ok PATH: ...` or `invalid PATH: <reason>`, and
exits 0 only if every receipt (and proof) verifies, 1 otherwise, 2 on a usage
error.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys
import unicodedata

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

LEAF_HEADER = "ferry-leaf/v1"
STORED_FIELDS = ["id", "sha256", "size", "kind", "format", "time"]
RECEIPT_MEMBERS = {
    "log": str,
    "index": int,
    "id": str,
    "sha256": str,
    "size": int,
    "received_at": str,
    "leaf": str,
    "checkpoint": str,
    "proof": list,
}
PROOF_MEMBERS = {"index": int, "size": int, "proof": list, "checkpoint": str}
SIG_PREFIX = "\u2014 "  # an em dash and a space


class Invalid(Exception):
    pass


def is_control(c):
    return unicodedata.category(c) == "Cc"


def b64decode(text, what):
    """Standard base64 with padding, canonical (unused bits zero) only."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{what} is not base64") from None
    if base64.b64encode(data).decode() != text:
        raise Invalid(f"{what} is not canonical base64")
    return data


def b64encode(data):
    return base64.b64encode(data).decode()


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


class Key:
    """A verifier key: `<name>+<8 hex digits>+<base64(0x01 || public key)>`."""

    def __init__(self, text):
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise Invalid("the key is not <name>+<hash>+<key>")
        name, hash_hex, key_b64 = parts
        if not name or any(c.isspace() for c in name):
            raise Invalid("the key's name is empty or holds white space")
        key = b64decode(key_b64, "the key")
        if len(key) != 33 or key[0] != 0x01:
            raise Invalid("the key is not an Ed25519 key")
        self.name = name
        self.hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
        if len(hash_hex) != 8 or bytes.fromhex(hash_hex) != self.hash:
            raise Invalid("the key hash does not match the key's name and key")
        self.public = Ed25519PublicKey.from_public_bytes(key[1:])

    def open(self, note, what):
        """The body of the signed note `note`, if this key signed it."""
        if any(is_control(c) and c != "\n" for c in note):
            raise Invalid(f"{what}: a note holds no control characters")
        split = note.rfind("\n\n")
        if split < 0 or not note.endswith("\n"):
            raise Invalid(f"{what} is not a signed note")
        body, lines = note[: split + 1], note[split + 2 : -1]
        verified = False
        for line in lines.split("\n"):
            if not line.startswith(SIG_PREFIX):
                raise Invalid(f"{what}: a signature line starts with an em dash")
            name, space, sig_b64 = line[len(SIG_PREFIX) :].partition(" ")
            if not space or not name or " " in sig_b64:
                raise Invalid(f"{what}: a malformed signature line")
            sig = b64decode(sig_b64, f"{what}'s signature")
            if len(sig) < 5:
                raise Invalid(f"{what}: a signature is too short")
            if name != self.name or sig[:4] != self.hash:
                continue
            if len(sig) != 68:
                raise Invalid(f"{what}: an Ed25519 signature is 64 bytes")
            try:
                self.public.verify(sig[4:], body.encode())
            except InvalidSignature:
                raise Invalid(f"{what}: the signature does not verify") from None
            verified = True
        if not verified:
            raise Invalid(f"{what} carries no signature by the key {self.name}")
        return body


def load_json(path, members, what):
    try:
        with open(path, "rb") as f:
            value = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Invalid(f"{what} is not JSON: {e}") from None
    if not isinstance(value, dict) or set(value) != set(members):
        raise Invalid(f"{what} does not have exactly the members {sorted(members)}")
    for member, kind in members.items():
        ok = isinstance(value[member], kind) and not isinstance(value[member], bool)
        if not ok or (kind is int and value[member] < 0):
            raise Invalid(f"{what}'s {member} is not a {kind.__name__}")
    return value


def parse_leaf(text):
    """The fields of a `stored` leaf, in order, as a dict."""
    if not text.endswith("\n"):
        raise Invalid("the leaf does not end with a newline")
    lines = text[:-1].split("\n")
    if lines[:2] != [LEAF_HEADER, "event stored"]:
        raise Invalid("the leaf is not a ferry-leaf/v1 stored leaf")
    if len(lines) != 2 + len(STORED_FIELDS):
        raise Invalid("the leaf does not have exactly the fields of a stored leaf")
    fields = {}
    for key, line in zip(STORED_FIELDS, lines[2:]):
        if not line.startswith(key + " "):
            raise Invalid(f"the leaf's field {key} is missing or out of order")
        value = line[len(key) + 1 :]
        if not value or any(is_control(c) for c in value):
            raise Invalid(f"the leaf's {key} is empty or holds a control character")
        fields[key] = value
    return fields


def parse_checkpoint(body):
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines[3:]):
        raise Invalid("the checkpoint is not origin, size, root")
    origin, size, root = lines[:3]
    if not size.isdigit() or not size.isascii() or (size != "0" and size.startswith("0")):
        raise Invalid("the checkpoint's tree size is not a decimal number")
    root = b64decode(root, "the checkpoint's root")
    if len(root) != 32:
        raise Invalid("the checkpoint's root is not 32 bytes")
    return origin, int(size), root


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2, step by step."""
    if index >= size:
        raise Invalid("the leaf index is not below the tree size")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise Invalid("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("the inclusion proof is too short")
    if r != root:
        raise Invalid("the inclusion proof does not lead to the checkpoint's root")


def decode_hashes(texts, what):
    """A proof's hashes: each 32 bytes in canonical base64."""
    hashes = []
    for text in texts:
        if not isinstance(text, str):
            raise Invalid(f"a hash of {what} is not a string")
        hashes.append(b64decode(text, f"a hash of {what}"))
        if len(hashes[-1]) != 32:
            raise Invalid(f"a hash of {what} is not 32 bytes")
    return hashes


def verify_receipt(path, key):
    """Checks the receipt in `path` by itself; returns it, its leaf hash and the
    size of its checkpoint's tree."""
    receipt = load_json(path, RECEIPT_MEMBERS, "the receipt")
    body = key.open(receipt["checkpoint"], "the receipt's checkpoint")
    origin, size, root = parse_checkpoint(body)
    if not receipt["log"] == origin == key.name:
        raise Invalid(
            f"the receipt is of log {receipt['log']!r}, its checkpoint of {origin!r}, "
            f"the key of {key.name!r}"
        )
    fields = parse_leaf(receipt["leaf"])
    hashed = leaf_hash(receipt["leaf"].encode())
    for member, field in [
        ("id", "id"),
        ("sha256", "sha256"),
        ("size", "size"),
        ("received_at", "time"),
    ]:
        if str(receipt[member]) != fields[field]:
            raise Invalid(f"the receipt's {member} is not the leaf's {field}")
    proof = decode_hashes(receipt["proof"], "the receipt's proof")
    verify_inclusion(hashed, receipt["index"], size, proof, root)
    return receipt, hashed, size


def verify_proof(path, key, receipt, hashed):
    """Checks a separate inclusion proof of the receipt's leaf against its own
    (later) checkpoint; returns that checkpoint's size."""
    proof = load_json(path, PROOF_MEMBERS, "the inclusion proof")
    body = key.open(proof["checkpoint"], "the proof's checkpoint")
    origin, size, root = parse_checkpoint(body)
    if origin != receipt["log"]:
        raise Invalid(f"the checkpoint is of log {origin!r}, the receipt of {receipt['log']!r}")
    if proof["index"] != receipt["index"] or proof["size"] != size:
        raise Invalid("the proof is for another leaf or tree size than its checkpoint's")
    hashes = decode_hashes(proof["proof"], "the inclusion proof")
    verify_inclusion(hashed, receipt["index"], size, hashes, root)
    return size


def check(receipt_path, proof_path, key):
    """One line of verdict; True when everything verifies."""
    try:
        receipt, hashed, size = verify_receipt(receipt_path, key)
        line = (
            f"leaf {receipt['index']} of {receipt['log']}, item {receipt['id']}, "
            f"in the receipt's signed checkpoint of {size} leaves"
        )
        if proof_path is not None:
            later = verify_proof(proof_path, key, receipt, hashed)
            line += f", and in the signed checkpoint of {later} leaves"
        print(f"ok {receipt_path}: {line}")
        return True
    except (Invalid, OSError) as e:
        print(f"invalid {receipt_path}: {e}")
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--key", help="the log's verifier key text")
    keys.add_argument("--key-file", help="a file holding the log's verifier key text")
    parser.add_argument("receipt", nargs="?", help="the receipt JSON")
    parser.add_argument(
        "--inclusion", help="an inclusion proof JSON of the receipt's leaf in a later checkpoint"
    )
    parser.add_argument("--cases", help="a JSON list of {receipt, inclusion} paths")
    args = parser.parse_args()
    if (args.receipt is None) == (args.cases is None):
        parser.error("give one receipt, or --cases")
    try:
        text = args.key
        if args.key_file is not None:
            with open(args.key_file, encoding="utf-8") as f:
                text = f.read()
        key = Key(text)
        if args.cases is not None:
            with open(args.cases, encoding="utf-8") as f:
                cases = [(case["receipt"], case.get("inclusion")) for case in json.load(f)]
        else:
            cases = [(args.receipt, args.inclusion)]
    except (Invalid, OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    results = [check(receipt, proof, key) for receipt, proof in cases]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
