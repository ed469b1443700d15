"""schemathesis hooks for the gateway's document (tests/e2e/schemathesis_gateway.rs).

tus bodies are `application/offset+octet-stream`, raw bytes that schemathesis has
no serializer for: they are sent as its `application/octet-stream` bodies are.
"""

import schemathesis
from schemathesis.transport.serialization import serialize_binary


@schemathesis.serializer("application/offset+octet-stream")
def offset_octet_stream(ctx, value):
    return serialize_binary(value)
