#!/usr/bin/env python3
"""Sends a plan with the legacy client's own code (legacy_client.py, unchanged) and
looks at what the server wrote the moment each send returns, as programs around
the legacy server do.

Arguments as legacy_client.py, plus --export-dir DIR (read right after each send)
and --stdout FILE (where the server's stdout goes). One JSON line per transfer:
  {"reply": "...", "size": N, "sha256": "...",
   "files": {"NAME": "<sha256 of its content>", ...},   every file in DIR, read then
   "printed": "<the server's stdout so far>"}
"""
import argparse
import hashlib
import json
import os
import socket
import sys

import legacy_client


def snapshot(directory):
    files = {}
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name), "rb") as f:
            files[name] = hashlib.sha256(f.read()).hexdigest()
    return files


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--key")
    parser.add_argument("--export-dir", required=True)
    parser.add_argument("--stdout", required=True)
    args = parser.parse_args()
    fernet = None
    if args.key:
        from cryptography.fernet import Fernet
        fernet = Fernet(open(args.key, "rb").read().strip())
    host, port = args.server.rsplit(":", 1)
    plan = json.load(sys.stdin)
    sock = socket.create_connection((host, int(port)))
    for item in plan:
        digest = legacy_client.Digest()
        reply = legacy_client.transfer(sock, item, fernet, digest)
        # Right after the send returned: nothing waited for, nothing retried.
        files = snapshot(args.export_dir)
        with open(args.stdout, "r", errors="replace") as f:
            printed = f.read()
        print(json.dumps({"reply": reply, "size": digest.size, "sha256": digest.hash.hexdigest(),
                          "files": files, "printed": printed}), flush=True)
    sock.sendall(b"\x10")
    sock.shutdown(socket.SHUT_WR)
    sock.close()


if __name__ == "__main__":
    main()
