"""The server's HTTP front: one event loop per worker reads every request,
head and body, against deadlines; only a complete request takes an app thread.

Under gunicorn's threaded worker a connection held a thread from the first
byte of its request to the last of its answer: 100 connections trickling
headers, or 32 uploads at Tor's 50 KB/s, held every thread and the form went
offline (bench/RESULTS.md, "Slow clients"). Here a waiting connection costs a
socket and a few buffers:

- a request's head must arrive whole within `head_timeout` seconds, counted
  from the connection's start (or, on a kept-alive one, from the first byte of
  the next request, which may take `keepalive` seconds to come);
- a body must bring `min_rate` bytes a second, counted over windows of
  `window` seconds: Tor's slowest real uploads (20 KB/s) pass it twenty times
  over, a stalled or trickling one is cut at the end of its window; an answer
  must be taken at the same rate;
- a multipart body's files are sealed into their envelopes as they arrive
  (intake.server.form_stream), in a few sealing threads, so the app gets the
  request with its files already encrypted in the store.

Gunicorn still runs the processes (arbiter, heartbeat, graceful restart,
logging): FrontWorker is a worker class, gunicorn's extension point. h11 parses
HTTP/1.1. Every page, the front's refusals too, is made by the app
(intake.server.web.errors), in the witness's language, with the security headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import h11
from gunicorn.workers.base import Worker
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header

from intake.server.form_stream import FormTooLarge, StreamedForm, TooManyParts
from intake.server.pipeline import Pipeline
from intake.server.web.i18n import url_language

READ = 256 * 1024  # most bytes of a request's head taken at once
# A connection's receive buffer: the kernel copies into it (recv_into) and the
# parser reads from it. It starts small; a body that fills it (a fast client)
# gets a large one, so a fast upload costs fewer trips round the event loop.
SMALL_BUFFER = 64 * 1024
LARGE_BUFFER = 1024 * 1024
# The parser takes a body in slices this size: they stay in the CPU's cache
# through its copies, and below the size past which the allocator maps fresh
# pages for every copy (bench/README.md, "Where the time goes").
SLICE = 128 * 1024
BATCH = 1024 * 1024  # most file bytes handed to the sealing thread at once
IN_FLIGHT = 4  # batches an upload may have handed over and not yet sealed and hashed
SEALING_THREADS = 2
HOOKS = "intake.front"  # app.extensions key: the app's FrontHooks
FRONT_ERROR = "intake.front_error"  # environ key: the refusal the app should show
FORM = "intake.form"  # environ key: the StreamedForm the front parsed
BODY = "intake.body"  # environ key: the BodySink a body (not a form) was fed to
HEAD_AT = "intake.head_at"  # environ key: time.monotonic() when the request's head came


@dataclass(frozen=True)
class Limits:
    head_timeout: float = 20.0
    keepalive: float = 30.0
    min_rate: int = 1024  # bytes a second, in each window
    window: float = 30.0
    max_head: int = 32 * 1024
    max_line: int = 8190
    max_fields: int = 100


@dataclass
class FrontHooks:
    """What an app tells the front: its limits, and where a multipart body's
    files go. Without `new_spool`, a multipart body is held in memory up to
    `max_body`. A body that is neither a multipart form nor fed to a
    `body_sink` (a urlencoded form: a login, a choice) is held in memory up to
    `max_form_memory` only: one declaring more is refused before it is read
    (the "too_long" page), a chunked one is cut as it passes it."""

    limits: Limits
    max_body: int
    max_form_memory: int = 1024 * 1024
    max_parts: int = 1000
    new_spool: Callable[[], object] | None = None
    # Asked, in an app thread, before a body is read: a refusal's name
    # (e.g. "quota") or None.
    refusal: Callable[[dict], str | None] = lambda _environ: None
    # Asked, in an app thread, before a body that is not a form is read: a
    # BodySink to feed it to as it arrives (a resumable upload's piece), or None.
    body_sink: Callable[[dict], BodySink | None] | None = None
    # Called once in each worker before it serves: starts what the first
    # request would otherwise wait for (the cleaners' sandbox).
    warm_up: Callable[[], None] | None = None


class BodySink:
    """Where a body goes as it arrives, never held whole in memory. If
    `refused` is set, the body is not read: the app answers (and the
    connection closes). Otherwise write() gets each piece in order, in a
    sealing thread, then done() once the body is whole, or broken() if it
    stopped short (the client left, too slow): a sink may keep what came."""

    refused: Exception | None = None

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def done(self) -> None:
        raise NotImplementedError

    def broken(self) -> None:
        raise NotImplementedError


class _Cut(Exception):
    """The client broke a limit or the protocol: answer `status` (if the
    connection can still take an answer) and close."""

    def __init__(self, status: int | str | None):
        super().__init__(status)
        self.status = status


def environ_for(request: h11.Request, sockname) -> dict:
    target = request.target
    path, _, query = target.partition(b"?")
    environ = {
        "REQUEST_METHOD": request.method.decode("ascii"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": str(sockname[0]),
        "SERVER_PORT": str(sockname[1]),
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
        # No client address: behind Tor it is always 127.0.0.1, and the app
        # must never see or keep one.
        "REMOTE_ADDR": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        HEAD_AT: time.monotonic(),
    }
    for name, value in request.headers:
        key = name.decode("latin-1").upper()
        if "_" in key:
            continue  # would pass for a dash-named header (as gunicorn drops them)
        key = key.replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def _error_environ(environ: dict | None, sockname, status: int | str) -> dict:
    """A request for the refusal page: the client's own headers when they were
    read (its language, its session), else a bare GET. An address too long to
    read is not shown again, not even in the page's language links: the page
    is that of the start, in the address's language."""
    base = dict(environ) if environ else environ_for(
        h11.Request(method="GET", target="/", headers=[("Host", "localhost")]), sockname)
    base.update({"REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO(), "CONTENT_LENGTH": "0",
                 FRONT_ERROR: str(status)})
    if status == 414:
        code = url_language(base["PATH_INFO"])
        base["PATH_INFO"] = f"/{code}/" if code else "/"
        base["QUERY_STRING"] = ""
    base.pop("CONTENT_TYPE", None)
    base.pop(FORM, None)
    return base


class Stream(asyncio.BufferedProtocol):
    """One connection's bytes, as asyncio's BufferedProtocol hands them: the
    event loop reads the socket straight into this connection's buffer
    (recv_into), so no buffer is allocated and no byte copied per read on the
    way to the parser. Reading pauses while the buffer is full (the client
    waits in the kernel's buffers) and resumes once it is emptied. Writes are
    flow-controlled as asyncio's StreamWriter does. An idle connection holds
    no buffer; one reading a body keeps its own until the body is in."""

    def __init__(self, on_connect: Callable[[Stream], object]):
        self._on_connect = on_connect
        self.transport: asyncio.Transport | None = None
        self._buf: bytearray | None = None
        self._view: memoryview | None = None
        self._start = self._end = 0
        self._body = False  # a body is being read: keep the buffer when it empties
        self._filled = False  # the body filled the buffer: give it a large one
        self._eof = False
        self._error: BaseException | None = None
        self._paused = False
        self._waiter: asyncio.Future | None = None
        self._writable: asyncio.Future | None = None
        self._write_paused = False
        self._closed = asyncio.get_running_loop().create_future()

    # -- the protocol, called by the event loop ---------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self._on_connect(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._view is None:
            self._buf = bytearray(LARGE_BUFFER if self._filled else SMALL_BUFFER)
            self._view = memoryview(self._buf)
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self._end == len(self._view):  # type: ignore[arg-type]
            self._filled = self._body
            self._paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def eof_received(self) -> bool:
        self._eof = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True  # keep the transport open: the answer may still go out

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        for waiter in (self._waiter, self._writable, self._closed):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- reading ----------------------------------------------------------------
    def available(self) -> int:
        return self._end - self._start

    def at_eof(self) -> bool:
        return self._eof and not self.available()

    def reading_body(self, on: bool) -> None:
        self._body = on
        if not on:
            self._filled = False

    async def wait_readable(self) -> None:
        """Until there are bytes to take, or the client has sent its last."""
        if self.available() or self._eof:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self, n: int) -> memoryview:
        """Up to n of the bytes held (none at the end): a view into the
        buffer, valid until the caller next awaits."""
        n = min(n, self.available())
        if not n:
            if self._error is not None:
                raise self._error
            return memoryview(b"")
        assert self._view is not None
        view = self._view[self._start:self._start + n]
        self._start += n
        if self._start == self._end:
            self._start = self._end = 0
            if not self._body or (self._filled and len(self._view) < LARGE_BUFFER):
                # Dropped (the view taken keeps it while it is used); an idle
                # connection holds none, a fast body gets a large one.
                self._buf = self._view = None
            if self._paused:
                self._paused = False
                self.transport.resume_reading()  # type: ignore[union-attr]
        return view

    async def read(self, n: int) -> bytes:
        """Like StreamReader.read: up to n bytes, b"" at the end."""
        await self.wait_readable()
        return bytes(self.take(n))

    # -- writing ----------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]

    async def drain(self) -> None:
        if self._closed.done():
            raise ConnectionResetError("the connection was lost")
        if self._write_paused:
            self._writable = asyncio.get_running_loop().create_future()
            await self._writable
            if self._closed.done():
                raise ConnectionResetError("the connection was lost")

    def get_extra_info(self, name: str, default=None):
        return self.transport.get_extra_info(name, default)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def wait_closed(self) -> None:
        await self._closed


class Connection:
    def __init__(self, worker: FrontWorker, stream: Stream):
        self.w = worker
        self.reader = self.writer = stream
        self.limits = worker.hooks.limits
        self.h = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head)
        self.sockname = stream.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.environ: dict | None = None
        self.length: int | None = None  # the request body's Content-Length
        self.fresh_h11 = False  # the body was read past h11: a new one for the next
        self.idle = True  # waiting for a request's first byte: closed at once on shutdown

    async def serve(self) -> None:
        first = True
        try:
            while self.w.alive:
                self.environ, self.length = None, None
                request = await self._next_request(first)
                if request is None:
                    return
                await self._handle(request)
                if self.h.our_state is not h11.DONE:
                    return
                if self.fresh_h11:
                    self.h = h11.Connection(h11.SERVER,
                                            max_incomplete_event_size=self.limits.max_head)
                    self.fresh_h11 = False
                elif self.h.their_state is h11.DONE:
                    self.h.start_next_cycle()
                else:
                    return
                first = False
        except _Cut as cut:
            if cut.status is not None and self.h.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(_Cut, h11.LocalProtocolError, OSError):
                    await self._app_answer(_error_environ(self.environ, self.sockname,
                                                          cut.status), close=True)
        except (ConnectionError, h11.LocalProtocolError):
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 1)

    # -- reading ---------------------------------------------------------------
    async def _read(self, timeout: float, status: int | None = 408) -> bytes:
        if timeout <= 0:
            raise _Cut(status)
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(READ)
        except TimeoutError:
            raise _Cut(status) from None

    def _event(self):
        try:
            return self.h.next_event()
        except h11.RemoteProtocolError as exc:
            # An unfinished message means the client left; otherwise it sent
            # something malformed or too large.
            if self.h.their_state is h11.ERROR and self.reader.at_eof():
                raise _Cut(None) from exc
            raise _Cut(exc.error_status_hint) from exc

    async def _next_request(self, first: bool) -> h11.Request | None:
        limits = self.limits
        deadline = time.monotonic() + limits.head_timeout
        self.idle = not self.h.trailing_data[0]
        if not first and self.idle:
            # Kept alive: wait quietly for the next request, then time its head.
            data = await self._read(limits.keepalive, status=None)
            self.h.receive_data(data)
            deadline = time.monotonic() + limits.head_timeout
        self.idle = first and self.idle
        while True:
            event = self._event()
            if event is h11.NEED_DATA:
                # A connection that never sent a byte is closed without a word.
                started = bool(self.h.trailing_data[0]) or not first
                self.h.receive_data(await self._read(deadline - time.monotonic(),
                                                     status=408 if started else None))
                first = self.idle = False
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if not isinstance(event, h11.Request):
                raise _Cut(400)
            self.environ = environ_for(event, self.sockname)
            if len(event.target) > limits.max_line:
                raise _Cut(414)
            if len(event.headers) > limits.max_fields or \
                    sum(len(n) + len(v) + 4 for n, v in event.headers) > limits.max_head:
                raise _Cut(431)
            return event

    async def _body(self) -> AsyncIterator[bytes]:
        """The body as it arrives, at `min_rate` bytes a second or more over
        each window, else cut. A body of known length is read straight from
        the socket once h11 has handed over what it held (a copy less for
        every byte); h11 then starts afresh for the next request."""
        limits = self.limits
        if self.h.they_are_waiting_for_100_continue:
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        window_end, got = time.monotonic() + limits.window, 0
        left = self.length
        while True:  # what h11 holds, and all of a chunked body
            event = self._event()
            if isinstance(event, h11.Data):
                got += len(event.data)
                if left is not None:
                    left -= len(event.data)
                yield event.data
                continue
            if isinstance(event, h11.EndOfMessage):
                return
            if event is not h11.NEED_DATA:
                raise _Cut(400)
            if left is not None:
                break
            window_end, got = self._judge(window_end, got)
            try:
                async with asyncio.timeout_at(window_end):
                    data = await self.reader.read(READ)
            except TimeoutError:
                continue  # the window is over: judged above
            self.h.receive_data(data)
        self.fresh_h11 = True
        stream = self.reader
        stream.reading_body(True)
        try:
            while left > 0:
                window_end, got = self._judge(window_end, got)
                if not stream.available():
                    try:
                        async with asyncio.timeout_at(window_end):
                            await stream.wait_readable()
                    except TimeoutError:
                        continue
                data = stream.take(min(left, SLICE))
                if not data:
                    raise _Cut(None)  # the client left
                got += len(data)
                left -= len(data)
                yield data  # a view: used before the next await
        finally:
            stream.reading_body(False)

    def _judge(self, window_end: float, got: int) -> tuple[float, int]:
        """At a window's end: cut a body that brought too little, or start the next."""
        now = time.monotonic()
        if now < window_end:
            return window_end, got
        if got < self.limits.min_rate * self.limits.window:
            raise _Cut(408)
        return now + self.limits.window, 0

    # -- one request -------------------------------------------------------------
    async def _handle(self, request: h11.Request) -> None:
        hooks, environ = self.w.hooks, self.environ
        assert environ is not None
        length = environ.get("CONTENT_LENGTH")
        declared = int(length) if length and length.isdigit() else None
        chunked = self._chunked(request)
        self.length = None if chunked else declared
        has_body = declared != 0 and (declared is not None or chunked)
        if has_body:
            if declared is not None and declared > hooks.max_body:
                raise _Cut(413)
            refusal = await self.w.in_app_thread(hooks.refusal, environ)
            if refusal:
                raise _Cut(refusal)
            mimetype, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
            if hooks.new_spool is not None and mimetype == "multipart/form-data":
                form = await self._read_form(options.get("boundary", "").encode("latin-1"))
                environ[FORM] = form
                try:
                    await self._app_answer(environ)
                finally:
                    await self.w.in_sealer(form.close)
                return
            sink = None if hooks.body_sink is None else \
                await self.w.in_app_thread(hooks.body_sink, environ)
            if sink is not None:
                environ[BODY] = sink
                if sink.refused is None:
                    await self._read_into(sink)
                # A refused body was never read: the connection cannot carry another.
                await self._app_answer(environ, close=sink.refused is not None)
                return
            # Any other body is read into memory: a form's fields (a login, a
            # choice), never files, so it is held to the form-memory limit
            # (a multipart body only where no spool takes its files).
            cap, reason = (hooks.max_body, 413) if mimetype == "multipart/form-data" \
                else (hooks.max_form_memory, "too_long")
            if declared is not None and declared > cap:
                raise _Cut(reason)
            environ["wsgi.input"] = io.BytesIO(await self._read_small_body(cap, reason))
        else:
            await self._drain_empty_body()
        await self._app_answer(environ)

    @staticmethod
    def _chunked(request: h11.Request) -> bool:
        return any(n.lower() == b"transfer-encoding" for n, _ in request.headers)

    async def _drain_empty_body(self) -> None:
        async for _ in self._body():
            raise _Cut(400)

    async def _read_small_body(self, cap: int, reason: int | str = 413) -> bytes:
        body = bytearray()
        async for data in self._body():
            body += data
            if len(body) > cap:
                raise _Cut(reason)
        return bytes(body)

    async def _read_into(self, sink: BodySink) -> None:
        """Feeds the body to `sink` as it arrives, one piece in a sealing
        thread while the next is read; what came before a break is the sink's."""
        writing: asyncio.Future | None = None
        try:
            async for view in self._body():
                # _body yields views of the connection's buffer, valid only
                # until the next await: the thread gets its own copy.
                data = bytes(view)
                if writing is not None:
                    await writing
                writing = self.w.in_sealer(sink.write, data)
            if writing is not None:
                await writing
        except BaseException as exc:
            await self._settle(writing)
            with contextlib.suppress(Exception):
                await self.w.in_sealer(sink.broken)
            if isinstance(exc, Exception) and not isinstance(exc, _Cut | ConnectionError):
                raise _Cut(400) from exc  # the sink refused a piece
            raise
        await self.w.in_sealer(sink.done)

    async def _read_form(self, boundary: bytes) -> StreamedForm:
        """Parses the body as it arrives; its files' bytes are sealed in a
        sealing thread and hashed in a hashing thread while more arrives
        (intake.server.pipeline).

        The parser takes the body in the small pieces it is read in (they
        stay in the CPU's cache); the threads take what was parsed in
        batches: all the buffer held, up to `BATCH` bytes, so a fast upload
        costs a hand-off per batch, not per read, and a slow one is sealed as
        soon as each piece is in."""
        hooks = self.w.hooks
        if not boundary:
            raise _Cut(400)
        form = StreamedForm(boundary, hooks.new_spool, hooks.max_form_memory, hooks.max_parts)
        pipeline = self.w.pipeline(form.seal, form.hash)
        received = 0
        batch: list = []
        batched = 0
        try:
            async for data in self._body():
                received += len(data)
                if received > hooks.max_body:
                    raise _Cut(413)
                writes = form.feed(data)
                if writes:
                    batch += writes
                    batched += sum(len(piece) for _, piece in writes)
                if batch and (batched >= BATCH or not self.reader.available()):
                    await pipeline.room()
                    pipeline.put(batch)
                    batch, batched = [], 0
            if batch:
                await pipeline.room()
                pipeline.put(batch)
            await pipeline.finish()
            form.feed(None)
        except (TooManyParts, FormTooLarge, RequestEntityTooLarge, ValueError) as exc:
            await pipeline.settle()
            await self.w.in_sealer(form.close)
            raise _Cut(_refusal_of(exc)) from exc
        except BaseException:
            await pipeline.settle()
            await self.w.in_sealer(form.close)
            raise
        return form

    @staticmethod
    async def _settle(*pending: asyncio.Future | None) -> None:
        for future in pending:
            if future is not None:
                with contextlib.suppress(Exception):
                    await future

    # -- answering ---------------------------------------------------------------
    async def _send(self, *events) -> None:
        size = 0
        for event in events:
            data = self.h.send(event)
            if data:
                self.writer.write(data)
                size += len(data)
        limits = self.limits
        try:
            async with asyncio.timeout(limits.window + size / max(limits.min_rate, 1)):
                await self.writer.drain()
        except TimeoutError:
            raise _Cut(None) from None

    async def _app_answer(self, environ: dict, close: bool = False) -> None:
        """Runs the app in an app thread; its answer is sent from here, piece
        by piece as the app yields it (a bundle download streams)."""
        loop = asyncio.get_running_loop()
        head_only = environ["REQUEST_METHOD"] == "HEAD"
        close = close or not self.w.alive

        def send(events: list) -> None:
            asyncio.run_coroutine_threadsafe(self._send(*events), loop).result()

        def start(status: str, headers: list, exc_info=None):
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]

        started: list = []

        def run() -> None:
            result = self.w.app(environ, start)
            try:
                pieces = iter(result)
                first = next(pieces, b"")
                status, headers = started
                code = int(status.split(" ", 1)[0])
                names = {n.lower() for n, _ in headers}
                more = list(headers)
                body = [first]
                if "content-length" not in names:
                    # Small answers (every page) are sent whole, with their length.
                    body += list(pieces)
                    more.append(("Content-Length", str(sum(map(len, body)))))
                    pieces = iter(())
                if close:
                    more.append(("Connection", "close"))
                send([h11.Response(status_code=code, headers=more,
                                   reason=status.split(" ", 1)[1].encode("latin-1"))])
                if not head_only:
                    for piece in (*body, *pieces):
                        if piece:
                            send([h11.Data(data=piece)])
                send([h11.EndOfMessage()])
            finally:
                closer = getattr(result, "close", None)
                if closer is not None:
                    closer()

        await self.w.in_app_thread(run)


def _refusal_of(exc: BaseException) -> str | int:
    if isinstance(exc, TooManyParts):
        return "too_many"
    if isinstance(exc, FormTooLarge):
        return "too_long"
    if isinstance(exc, RequestEntityTooLarge):
        return 413
    return 400


class FrontWorker(Worker):
    """A gunicorn worker: an event loop for the connections, a thread pool
    (`threads`) for the app, a smaller one for sealing uploads."""

    def init_process(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.connections: dict[asyncio.Task, Connection] = {}
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.app = self.wsgi
        extensions = getattr(self.app, "extensions", {})
        self.hooks: FrontHooks = extensions.get(HOOKS) or FrontHooks(Limits(), 1024 * 1024)

    def run(self) -> None:
        self._app_threads = ThreadPoolExecutor(self.cfg.threads, "intake-app")
        self._sealers = ThreadPoolExecutor(SEALING_THREADS, "intake-seal")
        self._hashers = ThreadPoolExecutor(SEALING_THREADS, "intake-hash")
        try:
            if self.hooks.warm_up is not None:
                try:
                    self.hooks.warm_up()
                except Exception:  # the first request tries again, and says so
                    self.log.exception("warming up failed")
            self.loop.run_until_complete(self._serve())
        finally:
            self._app_threads.shutdown(wait=False, cancel_futures=True)
            self._sealers.shutdown(wait=False, cancel_futures=True)
            self._hashers.shutdown(wait=False, cancel_futures=True)
            self.loop.close()

    def in_app_thread(self, fn: Callable, *args) -> asyncio.Future:
        return self.loop.run_in_executor(self._app_threads, fn, *args)

    def in_sealer(self, fn: Callable, *args) -> asyncio.Future:
        return self.loop.run_in_executor(self._sealers, fn, *args)

    def pipeline(self, seal: Callable, hash_: Callable) -> Pipeline:
        return Pipeline(self.loop, IN_FLIGHT, (self._sealers, seal), (self._hashers, hash_))

    def _accepted(self, stream: Stream) -> None:
        self.loop.create_task(self._connected(stream))

    async def _connected(self, stream: Stream) -> None:
        if len(self.connections) >= self.cfg.worker_connections:
            stream.close()  # over the cap: the client may try again
            return
        task = asyncio.current_task()
        assert task is not None
        self.connections[task] = connection = Connection(self, stream)
        try:
            await connection.serve()
        finally:
            self.connections.pop(task, None)

    async def _serve(self) -> None:
        servers = []
        for listener in self.sockets:
            sock = socket.socket(fileno=os.dup(listener.fileno()))
            servers.append(await self.loop.create_server(
                lambda: Stream(self._accepted), sock=sock))
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                break
            await asyncio.sleep(1.0)
        for server in servers:
            server.close()
        # Connections waiting for a request are closed now; the others end
        # with the request they carry (answered with "Connection: close").
        for task, connection in list(self.connections.items()):
            if connection.idle:
                task.cancel()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while self.connections and time.monotonic() < deadline:
            self.notify()
            await asyncio.wait(list(self.connections), timeout=1.0)
        for task in list(self.connections):
            task.cancel()

