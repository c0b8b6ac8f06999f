"""A request body read straight from gunicorn's socket, into the parser's buffer.

Gunicorn's body reader hands each piece through two BytesIO buffers and
slices what it read ahead on every call: five copies of every byte before the
form parser sees it, the largest cost of a large upload after the
cryptography. When the body has a Content-Length and comes from a socket, the
app takes it over instead: what gunicorn has already read comes first, then
recv_into() fills the parser's own buffer.

When the request ends, whatever the app did not read goes back to gunicorn
(the bytes it had read ahead, and the count still on the socket), so that it
discards the rest of the body as it always does and the next request on the
connection starts where it should. Any other server, or a chunked body, is
left as it is.
"""

from __future__ import annotations

import io

from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader


class SocketBody(io.RawIOBase):
    def __init__(self, body: Body):
        reader = body.reader
        unreader = reader.unreader
        self._reader, self._unreader, self._sock = reader, unreader, unreader.sock
        held = body.buf.getvalue()  # read through gunicorn already, not yet returned
        body.buf = io.BytesIO()
        ahead = unreader.take_buffered()
        if len(ahead) > reader.length:  # the next request, pipelined: not ours
            unreader.unread(ahead[reader.length:])
            ahead = ahead[:reader.length]
        self._pending = held + ahead
        self._at = 0
        self._left = reader.length - len(ahead)  # still on the socket
        reader.length = 0  # gunicorn reads nothing more of this body until give_back()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        with memoryview(b) as view:
            if self._at < len(self._pending):
                n = min(len(view), len(self._pending) - self._at)
                view[:n] = self._pending[self._at:self._at + n]
                self._at += n
                return n
            if self._left <= 0:
                return 0
            n = self._sock.recv_into(view[:min(len(view), self._left)])
        self._left -= n
        return n

    def give_back(self) -> None:
        """Returns what was not read to gunicorn's reader, which discards it."""
        rest = self._pending[self._at:]
        self._pending, self._at = b"", 0
        if rest:
            self._unreader.unread(rest)
        self._reader.length = len(rest) + self._left
        self._left = 0


def read_body_from_socket(wsgi_app):
    """WSGI middleware: the fast path for gunicorn's length-delimited bodies."""

    def middleware(environ, start_response):
        body = environ.get("wsgi.input")
        if not (type(body) is Body and type(body.reader) is LengthReader
                and type(body.reader.unreader) is SocketUnreader
                and hasattr(body.reader.unreader, "take_buffered")):
            return wsgi_app(environ, start_response)
        direct = SocketBody(body)
        environ["wsgi.input"] = direct
        try:
            return wsgi_app(environ, start_response)
        finally:
            direct.give_back()

    return middleware
