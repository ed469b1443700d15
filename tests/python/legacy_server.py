#!/usr/bin/env python3
"""A stand-in for the legacy Python server, written from the protocol description
alone (docs/protocol.md).

Ferry's own client must work against the legacy server; this reproduces its
observed behaviour: one byte per unknown operation is read and ignored, each
transfer is answered with exactly `OK` or `ERROR: <repr>`, END closes.
Every received transfer is appended to --out as a JSON line
{"data_type", "format", "encrypted", "content"} (text as a string).
It prints "listening on PORT" once ready. Test use only: it unpickles with
a restricted loader that refuses every global.
"""
import argparse
import io
import json
import pickle
import socket
import threading
import xml.etree.ElementTree as ET

FORMATS = {0: "txt", 1: "binary", 2: "json", 3: "xml"}


class NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"global {module}.{name} refused")


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def decode(serialization, data):
    if serialization == 0:
        return data.decode("utf-8", "replace")
    if serialization == 1:
        return NoGlobals(io.BytesIO(data)).load()
    if serialization == 2:
        return json.loads(data)
    if serialization == 3:
        return {child.tag: child.text for child in ET.fromstring(data)}
    raise ValueError(serialization)


def serve_connection(conn, fernet, out, lock):
    conn.settimeout(30)
    try:
        while True:
            op = read_exact(conn, 1)[0]
            kind = op >> 4
            if kind == 1:
                return
            if kind != 0:
                continue  # unknown operation: ignored
            if not op & 0x08:
                conn.sendall(b"ERROR: ProtocolError('no transfer open')")
                return
            meta = read_exact(conn, 1)[0]
            pieces = []
            while True:
                length = int.from_bytes(read_exact(conn, 2), "big")
                pieces.append(read_exact(conn, length))
                if op & 0x04:
                    break
                op = read_exact(conn, 1)[0]
            encrypted = bool(meta & 0x02)
            try:
                if encrypted:
                    if fernet is None:
                        raise RuntimeError("Encryption disabled.")
                    pieces = [fernet.decrypt(p) for p in pieces]
                serialization = (meta >> 2) & 0x07
                content = decode(serialization, b"".join(pieces))
                record = {"data_type": "dictionary" if meta >> 5 else "text", "format": FORMATS[serialization], "encrypted": encrypted, "content": content}
                with lock, open(out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                conn.sendall(b"OK")
            except Exception as exc:  # the legacy server answered with the repr
                conn.sendall(f"ERROR: {exc!r}".encode())
    except (ConnectionError, socket.timeout):
        return
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--key")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    fernet = None
    if args.key:
        from cryptography.fernet import Fernet
        fernet = Fernet(open(args.key, "rb").read().strip())
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(f"listening on {listener.getsockname()[1]}", flush=True)
    lock = threading.Lock()
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn, fernet, args.out, lock), daemon=True).start()


if __name__ == "__main__":
    main()
