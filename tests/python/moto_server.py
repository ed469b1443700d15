"""moto's S3-compatible server on 127.0.0.1, on a free port, for Ferry's tests.

Prints the port on a line of its own once the server listens, then serves
until its standard input closes (the test that started it ended, however it
ended), and exits.
"""

import logging
import os
import sys

from moto.server import ThreadedMotoServer


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
