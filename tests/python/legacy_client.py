#!/usr/bin/env python3
"""A legacy-style Ferry client (Python + cryptography), written from the protocol
description alone (docs/protocol.md).

It stands in for the Python clients still in use: Ferry must serve it unchanged.
It reads a plan (JSON) on stdin, a list of transfers:
  {"kind": "dict", "format": "json"|"pickle"|"xml", "protocol": 0-5, "encrypt": bool, "content": {...}}
  {"kind": "text", "path": "/file", "encrypt": bool}
  {"kind": "raw", "hex": "..."}            bytes sent as they are (for hostile input)
and sends them over one session (--sessions one) or one session each (--sessions each).
It prints one JSON line per transfer:
  {"reply": "<the server's bytes>", "size": <plaintext bytes sent>, "sha256": "<of that plaintext>"}
(for "raw", size and sha256 are those of the raw bytes).
"""
import argparse
import hashlib
import json
import pickle
import socket
import sys
import xml.etree.ElementTree as ET

PIECE = 48000


def meta_byte(data_type, serialization, encrypted):
    return (data_type << 5) | (serialization << 2) | (2 if encrypted else 0)


def packets(meta, pieces):
    """The legacy framing: INITIAL carries the meta byte; 2-byte big-endian lengths."""
    out = []
    for index, (payload, last) in enumerate(pieces):
        op = (0x08 if index == 0 else 0) | (0x04 if last else 0)
        head = bytes([op]) + (bytes([meta]) if index == 0 else b"")
        out.append(head + len(payload).to_bytes(2, "big") + payload)
    return out


def cut(data):
    if not data:
        return [(b"", True)]
    chunks = [data[i:i + PIECE] for i in range(0, len(data), PIECE)]
    return [(c, i == len(chunks) - 1) for i, c in enumerate(chunks)]


def file_pieces(path):
    with open(path, "rb") as f:
        current = f.read(PIECE)
        while True:
            following = f.read(PIECE) if len(current) == PIECE else b""
            yield current, not following
            if not following:
                return
            current = following


def serialize(item):
    content = item["content"]
    fmt = item["format"]
    if fmt == "json":
        return 2, json.dumps(content).encode()
    if fmt == "pickle":
        return 1, pickle.dumps(content, protocol=item.get("protocol", 4))
    if fmt == "xml":
        root = ET.Element("root")
        for key, value in content.items():
            ET.SubElement(root, key).text = str(value)
        return 3, ET.tostring(root)
    raise ValueError(fmt)


class Digest:
    """The size and SHA-256 of the plaintext sent, for the tests to compare."""

    def __init__(self):
        self.size = 0
        self.hash = hashlib.sha256()

    def tap(self, pieces):
        for piece, last in pieces:
            self.size += len(piece)
            self.hash.update(piece)
            yield piece, last


def transfer(sock, item, fernet, digest):
    if item["kind"] == "raw":
        raw = bytes.fromhex(item["hex"])
        list(digest.tap([(raw, True)]))
        sock.sendall(raw)
        return read_reply(sock)
    encrypt = item.get("encrypt", False)
    if item["kind"] == "dict":
        serialization, data = serialize(item)
        meta, pieces = meta_byte(1, serialization, encrypt), cut(data)
    else:
        meta, pieces = meta_byte(0, 0, encrypt), file_pieces(item["path"])
    pieces = digest.tap(pieces)
    if encrypt:
        pieces = ((fernet.encrypt(p), last) for p, last in pieces)
    for packet in packets(meta, pieces):
        sock.sendall(packet)
    return read_reply(sock)


def read_reply(sock):
    # The legacy client reads once, up to 4096 bytes.
    return sock.recv(4096).decode("utf-8", "replace")


def arguments():
    """The client's command line; other scripts built on it add their own options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--key")
    parser.add_argument("--sessions", choices=["one", "each"], default="one")
    return parser


def close(sock):
    sock.sendall(b"\x10")
    sock.shutdown(socket.SHUT_WR)
    sock.close()


def run(args, observe=dict):
    """Sends the plan read on stdin and prints a line per transfer, with the members
    `observe()` returns right after the send merged in."""
    fernet = None
    if args.key:
        from cryptography.fernet import Fernet
        fernet = Fernet(open(args.key, "rb").read().strip())
    host, port = args.server.rsplit(":", 1)
    plan = json.load(sys.stdin)
    sock = None
    for item in plan:
        if sock is None:
            sock = socket.create_connection((host, int(port)))
        digest = Digest()
        reply = transfer(sock, item, fernet, digest)
        line = {"reply": reply, "size": digest.size, "sha256": digest.hash.hexdigest()}
        line.update(observe())
        print(json.dumps(line), flush=True)
        if args.sessions == "each":
            close(sock)
            sock = None
    if sock is not None:
        close(sock)


def main():
    run(arguments().parse_args())


if __name__ == "__main__":
    main()
