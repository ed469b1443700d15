#!/usr/bin/env python3
"""Posts through a client that openapi-python-client generated from openapi/gateway.json.

Only the generated package's own functions and models talk to the gateway (no
hand-written HTTP). Usage:
  gateway_generated_client.py --package-dir DIR --package NAME --url URL --token T --file PATH
It sends, in this order, and prints one JSON line per request:
  1. POST /dict: a nested dictionary, format=json, encrypt=false
  2. POST /dict: a flat dictionary, format=xml, encrypt=true
  3. POST /file: PATH as a multipart form, encrypt=true
  4. POST /file: PATH as the raw body with name=PATH's name, encrypt=false, when the
     generated client can send a raw body at all (see "raw_unsupported" below)
Each line: {"request": ..., "status": 201, "location": ..., "body": {...}}.
"""
import argparse
import importlib
import io
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--package-dir", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--file", required=True)
    args = parser.parse_args()

    sys.path.insert(0, args.package_dir)
    pkg = args.package
    client_mod = importlib.import_module(f"{pkg}.client")
    post_dict = importlib.import_module(f"{pkg}.api.transfers.post_dict")
    post_file = importlib.import_module(f"{pkg}.api.transfers.post_file")
    models = importlib.import_module(f"{pkg}.models")
    types = importlib.import_module(f"{pkg}.types")

    client = client_mod.AuthenticatedClient(base_url=args.url, token=args.token, raise_on_unexpected_status=True)
    with open(args.file, "rb") as f:
        data = f.read()
    name = os.path.basename(args.file)

    def report(request, response):
        body = response.parsed.to_dict() if response.parsed is not None else None
        print(json.dumps({
            "request": request,
            "status": int(response.status_code),
            "location": response.headers.get("location"),
            "body": body,
        }), flush=True)

    nested = {"sensor": "s-17", "reading": {"value": 21.5, "ok": True, "tags": ["roof", "north"]}, "note": None}
    report("dict json", post_dict.sync_detailed(
        client=client, body=models.PostDictBody.from_dict(nested), format_=models.PostDictFormat.JSON, encrypt=False))
    flat = {"name": "Ada", "age": 36}
    report("dict xml encrypted", post_dict.sync_detailed(
        client=client, body=models.PostDictBody.from_dict(flat), format_=models.PostDictFormat.XML, encrypt=True))

    # The generator types a file as `File` only for `format: binary`; for an OpenAPI
    # 3.1 `contentMediaType` it types it as `str`.
    file_is_file = "File" in str(models.PostFileFilesBody.__annotations__["file"])
    if file_is_file:
        form = models.PostFileFilesBody(file=types.File(payload=io.BytesIO(data), file_name=name, mime_type="text/plain"))
    else:
        form = models.PostFileFilesBody(file=data.decode("utf-8"))
    report("file multipart encrypted", post_file.sync_detailed(client=client, body=form, encrypt=True))

    if file_is_file:
        raw = types.File(payload=io.BytesIO(data), file_name=name, mime_type="application/octet-stream")
        report("file raw", post_file.sync_detailed(client=client, body=raw, name=name, encrypt=False))
    else:
        # A `str` body makes the generated code read `body.payload`: it cannot send one.
        print(json.dumps({"request": "file raw", "raw_unsupported": "the generated post_file types the octet-stream body as str"}), flush=True)


if __name__ == "__main__":
    main()
