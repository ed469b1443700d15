"""Uploads one file to ferry-gateway's tus endpoint with tuspy (tusclient), in
chunks, through whatever cuts the connection: on a failure (a cut PATCH, a
gateway down, a server restarting) it asks the server's offset with tuspy's
HEAD and goes on from there, with backoff, a bounded number of times (tuspy's
own retries would retry a chunk without counting, and give up when its HEAD
fails). Driven by tests/e2e/tus_clients.rs.

Prints `upload-url URL` once the upload exists, then one JSON line:
{"url": ..., "item_id": ..., "item_location": ..., "retries": N}.
"""

import argparse
import json
import sys
import time

import requests
from tusclient import client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True, help="http://HOST:PORT/uploads")
    parser.add_argument("--file", required=True)
    parser.add_argument("--name", required=True, help="the filename metadata")
    parser.add_argument("--chunk-size", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--token", help="sent as Authorization: Bearer")
    parser.add_argument("--encrypt", action="store_true", help="encrypt metadata: true")
    parser.add_argument("--checksum", action="store_true", help="Upload-Checksum (sha1) on every chunk")
    parser.add_argument("--attempts", type=int, default=300, help="failures survived in all")
    args = parser.parse_args()

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    metadata = {"filename": args.name}
    if args.encrypt:
        metadata["encrypt"] = "true"
    tus = client.TusClient(args.endpoint, headers=headers)
    uploader = None
    failures = 0
    delay = 0.1
    while True:
        try:
            if uploader is None:
                uploader = tus.uploader(
                    args.file,
                    chunk_size=args.chunk_size,
                    metadata=metadata,
                    retries=0,
                    upload_checksum=args.checksum,
                )
            if uploader.url is None:
                uploader.set_url(uploader.create_url())
                uploader.offset = 0
                print(f"upload-url {uploader.url}", flush=True)
            else:
                uploader.offset = uploader.get_offset()
            uploader.upload()
            break
        except (requests.RequestException, TusCommunicationError, TusUploadFailed) as error:
            failures += 1
            if failures > args.attempts:
                print(f"giving up after {failures} failures: {error}", file=sys.stderr)
                return 1
            print(f"failure {failures} ({error}); going on in {delay:.1f} s", file=sys.stderr)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    # The last PATCH names the item; if its answer was lost, a HEAD does.
    last = uploader.request.response_headers if uploader.request else {}
    if "ferry-item-id" not in last:
        last = {k.lower(): v for k, v in requests.head(uploader.url, headers={**headers, "Tus-Resumable": "1.0.0"}).headers.items()}
    print(
        json.dumps(
            {
                "url": uploader.url,
                "item_id": last.get("ferry-item-id"),
                "item_location": last.get("ferry-item-location"),
                "retries": failures,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
