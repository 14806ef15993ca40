"""The public port's HTTP/1.1 channel: Twisted's parser, with limits and JSON refusals.

Twisted answers what it cannot parse with a bare "400 Bad Request" and no body, closes a line
that is too long without a word, spools a large or chunked body to a temporary file, and lets a
client that trickles a byte now and then keep its connection for ever (its idle timer restarts
with every byte). This channel answers each of those with the API's JSON error and closes the
connection, reads no body past MAX_BODY, and gives every request a deadline to arrive.
"""

from __future__ import annotations

import re
from io import BytesIO
from time import perf_counter
from typing import Any

from twisted.web.http import HTTPChannel
from twisted.web.server import Request
from werkzeug.exceptions import NotFound

from bazaar.config import FrontendConfig
from bazaar.frontend.app import error_response
from bazaar.frontend.wire import error_response_bytes

MAX_BODY = 64 * 1024  # bytes: an order is well under 1 KiB
DEFAULT_READ_TIMEOUT = FrontendConfig.read_timeout

# A well-formed request line of an HTTP version other than 1.0 and 1.1: said so, in a 400 (the
# client's fault; a 5xx would read as the server's).
_REQUEST_LINE = re.compile(rb"[!-~]+ [!-~]+ HTTP/([0-9]\.[0-9])")
_BODY_FRAMING = (b"content-length", b"transfer-encoding")


class ApiRequest(Request):
    """A request whose body is kept in memory, up to MAX_BODY (its channel refuses more)."""

    _too_large = False
    # When the request arrived whole, if its site times requests (ApiSite.observe).
    started: float | None = None

    def process(self) -> None:
        if getattr(self.channel.site, "observe", None) is not None:
            self.started = perf_counter()
        super().process()

    def connectionLost(self, reason: Any) -> None:
        site = getattr(self, "site", None)  # set by process(): only a request that arrived is timed
        super().connectionLost(reason)
        if not self.finished and self.started is not None and site is not None and site.observe is not None:
            site.observe(self, perf_counter() - self.started, False)

    def gotLength(self, length: int | None) -> None:
        # Never a temporary file, even for a chunked body: no body is read past MAX_BODY.
        self.content = BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        if self._too_large:
            return
        if self.content.tell() + len(data) > MAX_BODY:
            self._too_large = True
            if self.channel is not None:
                self.channel.body_too_large()
            return
        self.content.write(data)

    def _handleStar(self) -> None:
        # "*" ("OPTIONS * HTTP/1.1") names the server, no resource of the API; Twisted answers it
        # itself, with no body.
        body = error_response(self, NotFound())
        self.setHeader(b"Content-Length", b"%d" % len(body))
        self.write(body)
        self.finish()


class ApiChannel(HTTPChannel):
    MAX_LENGTH = 8 * 1024  # the request line, or one header line
    totalHeadersSize = 16 * 1024  # the request line and all the headers
    maxHeaders = 100
    # A refused client that does not read its answer is cut off after this many seconds.
    abortTimeout = 5

    # Seconds for a request to arrive, head and body, from its first byte, and for the first
    # from the connection's start. Set by the site.
    read_timeout: float = DEFAULT_READ_TIMEOUT
    closed: Any = None  # set by the site: called once the connection is gone
    refusals: Any = None  # set by the site: a Counter of the refusals' statuses

    _refused = False
    _deadline: Any = None
    _head_lines = 0  # lines of the current request's head received so far
    _request_line = b""
    _header_line = b""
    _reading_body = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self._start_deadline()

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return  # answered and closing: nothing more is read
        if self._deadline is None and not self._handlingRequest:
            self._start_deadline()  # the first byte of the next request on a kept-alive connection
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if line or self._head_lines:  # Twisted skips one empty line before a request
            self._head_lines += 1
            if self._head_lines == 1:
                self._request_line = line
        super().lineReceived(line)

    def headerReceived(self, line: bytes) -> bool:
        self._header_line = line
        return super().headerReceived(line)

    def rawDataReceived(self, data: bytes) -> None:
        if not self._handlingRequest:
            self._reading_body = True
        super().rawDataReceived(data)

    def allHeadersReceived(self) -> None:
        if self.length is not None and self.length > MAX_BODY:
            self.body_too_large()  # before Twisted would make room for it, or say 100 Continue
            return
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        if self._refused:
            return  # the end of a body already refused: it is not a request
        self._cancel_deadline()
        self._head_lines, self._reading_body = 0, False
        super().allContentReceived()

    def connectionLost(self, reason: Any) -> None:
        self._cancel_deadline()
        closed, self.closed = self.closed, None
        if closed is not None:
            closed()
        super().connectionLost(reason)

    def timeoutConnection(self) -> None:
        # An idle kept-alive connection is closed, as Twisted does, without its log line per
        # connection: a flood of idle connections would flood the log.
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    # -- refusals -----------------------------------------------------------------------------

    def body_too_large(self) -> None:
        self.refuse(413, f"the request body is larger than {MAX_BODY} bytes")

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._head_lines == 0:
            self.refuse(414, f"the request line is longer than {self.MAX_LENGTH} bytes")
        else:
            self.refuse(431, "the request head is too large")

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Twisted's one answer to every request it cannot parse.
        self.refuse(*self._what_was_bad())

    def _what_was_bad(self) -> tuple[int, str]:
        if self._receivedHeaderSize > self.totalHeadersSize or self._receivedHeaderCount > self.maxHeaders:
            return 431, "the request head is too large"
        if self._reading_body:
            return 400, "the request body is not valid chunked encoding"
        if self._head_lines <= 1:
            shape = _REQUEST_LINE.fullmatch(self._request_line)
            if shape is not None and shape.group(1) not in (b"1.0", b"1.1"):
                return 400, "only HTTP/1.0 and HTTP/1.1 are served"
            return 400, "the request line is not valid HTTP"
        if self._header_line.split(b":", 1)[0].strip().lower() in _BODY_FRAMING:
            return 400, "the request's Content-Length or Transfer-Encoding is not valid"
        return 400, "a request header is not valid HTTP"

    def refuse(self, code: int, message: str) -> None:
        """Answer with a JSON error and close, reading nothing more; once per connection."""
        if self._refused:
            return
        self._refused = True
        if self.refusals is not None:
            self.refusals[code] += 1
        self._cancel_deadline()
        self.setTimeout(None)
        self.transport.write(error_response_bytes(code, message))
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    # -- the read deadline ----------------------------------------------------------------------

    def _start_deadline(self) -> None:
        self._deadline = self.callLater(self.read_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        self.refuse(408, f"the request did not arrive within {self.read_timeout:g} seconds")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None
