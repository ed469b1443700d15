"""moto's S3-compatible server on 127.0.0.1, on a free port, for Ferry's tests.

Prints the port on a line of its own once the server listens, then serves
until its standard input closes (the test that started it ended, however it
ended), and exits.

S3 makes a conditional write (`If-None-Match: *`, `If-Match`) atomic: of two
servers creating the same key at once, exactly one succeeds. moto checks the
condition and then writes, on its request threads, so both may succeed and
the second silently replace the first. Ferry's S3 store relies on the
guarantee (its commit log's objects are created that way), so the writes
that check a condition are serialised here.
"""

import functools
import logging
import os
import sys
import threading

from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

WRITES = threading.Lock()


def atomic(method):
    """`method`, run under WRITES: the check of a condition and the write it
    guards happen as one step."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with WRITES:
            return method(self, *args, **kwargs)

    return run


# A whole object's PUT, and a multipart upload's completion.
S3Response.put_object = atomic(S3Response.put_object)
S3Response._key_response_post = atomic(S3Response._key_response_post)


def main() -> None:
    # One line per request would drown the test's own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
