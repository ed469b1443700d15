#!/usr/bin/env python3
"""Sends a plan with the legacy client's own code (legacy_client.transfer, as it is) and
looks at what the server wrote the moment each send returns, as programs around
the legacy server do.

Arguments as legacy_client.py, plus --export-dir DIR (read right after each send)
and --stdout FILE (where the server's stdout goes). One JSON line per transfer:
  {"reply": "...", "size": N, "sha256": "...",
   "files": {"NAME": "<sha256 of its content>", ...},   every file in DIR, read then
   "printed": "<the server's stdout so far>"}
"""
import hashlib
import os

import legacy_client


def snapshot(directory):
    files = {}
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        with open(os.path.join(directory, name), "rb") as f:
            files[name] = hashlib.sha256(f.read()).hexdigest()
    return files


def main():
    parser = legacy_client.arguments()
    parser.add_argument("--export-dir", required=True)
    parser.add_argument("--stdout", required=True)
    args = parser.parse_args()

    def observe():
        # Right after the send returned: nothing waited for, nothing retried.
        with open(args.stdout, "r", errors="replace") as f:
            printed = f.read()
        return {"files": snapshot(args.export_dir), "printed": printed}

    legacy_client.run(args, observe)


if __name__ == "__main__":
    main()
