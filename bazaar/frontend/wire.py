"""Whole HTTP error responses as bytes, for answers given below the Klein app.

The HTTP channel refuses a request it cannot or will not parse, and the site refuses a
connection beyond its limit, before any Request or resource exists to answer through; these
answers still carry the API's JSON error body, and close the connection.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from bazaar.frontend.app import error_document


def error_response_bytes(code: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    body = json.dumps(error_document(code, message)).encode("utf-8")
    lines = [
        b"HTTP/1.1 %d %s" % (code, HTTPStatus(code).phrase.encode("ascii")),
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(body),
        b"Connection: close",
        *(name + b": " + value for name, value in headers),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
