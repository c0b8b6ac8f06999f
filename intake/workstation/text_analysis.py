"""A text's language and search terms, worked out in a process of its own.

Language detection (lingua) and the search index's lemmas and stems
(pymorphy3, Snowball, Hunspell) load their models at the first text in
Ukrainian, Russian or Belarusian: about 170 MB and a second, lingua holding
the interpreter's lock all the while. So `vault import` does not run them in
its own process, which holds the team key and decrypts the bundle: one child
(intake.workstation.text_child), a fresh interpreter started at the import's
first text with a word in it and kept for the rest of it, is given each text
on a pipe and answers with its language and terms. It runs in the safe
reader's namespaces where they are available (intake.workstation.sandbox: no
network, nothing writable, no capabilities) and under limits in any case;
its answer is checked for its shape before it is used. The `body` column
(the text as the desk shows it) is made here, from the text itself.

A text the child could not analyse (it ended, went past its deadline, or
answered something malformed, on a first try and on a second with a new
child) is indexed as written, its language undetermined, and the import
says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import struct
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from intake.format import untrusted_json
from intake.workstation import search
from intake.workstation.children import child_env
from intake.workstation.language import LANGUAGES, UNDETERMINED
from intake.workstation.sandbox import Sandbox

MAX_INPUT = 4 * search.MAX_INDEXED_CHARS  # bytes of UTF-8, at most
LIMITS = {"cpu_seconds": 3600, "memory": 1024 * 1024 * 1024, "max_input": MAX_INPUT}
DEADLINE = 120.0  # seconds for one text, the models' loading included
TRIES = 2
# Terms are single FTS5 tokens (stemming.normalize: letters and digits) between spaces.
TERM_CHARS = re.compile(r"[^\W_]*")
PIPE = 64 * 1024


@dataclass(frozen=True)
class Analysis:
    lang: str   # one of LANGUAGES, or UNDETERMINED
    body: str
    terms: str
    more: str
    problem: str = ""  # why the text is indexed as written only


def analyse_here(text: str) -> Analysis:
    """The analysis, in this process: the child's work (and that of tools that
    hold no key)."""
    from intake.workstation import language

    lang = language.detect(text)
    return Analysis(lang, *search.row(text, lang))


class _Failed(Exception):
    pass


class TextAnalyser:
    """The texts of one import, analysed in order by one child, from a thread
    of this analyser's (the only one that talks to the child). Use it as a
    context manager: the child ends with it."""

    def __init__(self, sandbox: Sandbox, deadline: float = DEADLINE):
        self._sandbox = sandbox
        self._deadline = deadline
        self._proc: subprocess.Popen | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="intake-texts")
        self._stopping = False

    def __enter__(self) -> TextAnalyser:
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        self.close(abandon=exc_type is not None)

    def submit(self, text: str) -> Future[Analysis]:
        """The text's analysis, after those submitted before it: the caller goes
        on while the child works (and while it loads its models, at the first
        text in a language that needs them)."""
        return self._thread.submit(self._analyse, text)

    def analyse(self, text: str) -> Analysis:
        return self.submit(text).result()

    def close(self, abandon: bool = False) -> None:
        """Ends the child once the texts submitted are analysed; at once, and
        those not analysed yet dropped, when `abandon`."""
        if abandon:
            self._stopping = True
            proc = self._proc
            if proc is not None:  # an analysis under way ends with it
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self._thread.shutdown(wait=True, cancel_futures=abandon)
        self._end()

    def _analyse(self, text: str) -> Analysis:
        text = text[:search.MAX_INDEXED_CHARS]
        body = search.body_of(text)
        if not any(c.isalnum() for c in body):  # no word, no letter: no child needed
            return Analysis(UNDETERMINED, body, "", "")
        request = text.encode(errors="replace")
        problem = ""
        for _ in range(TRIES):
            try:
                lang, terms, more = self._ask(request)
            except (_Failed, OSError) as exc:
                problem = str(exc) if isinstance(exc, _Failed) else \
                    f"the text analyser could not be reached ({exc.strerror or exc})"
                self._end(kill=True)  # a new child for the next try
                continue
            return Analysis(lang, body, terms, more)
        return Analysis(UNDETERMINED, body, "", "", problem)

    def _end(self, kill: bool = False) -> None:
        """Ends the child: at the end of its input, or at once (`kill`)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(0 if kill else 5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]

    def _start(self) -> subprocess.Popen:
        if self._stopping:
            raise _Failed("the import stopped")
        if self._proc is None:
            try:
                self._proc = subprocess.Popen(
                    self._sandbox.text_command(LIMITS), stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env(),
                    cwd="/", close_fds=True, start_new_session=True)
            except OSError as exc:
                raise _Failed(f"the text analyser could not start: {exc.strerror}") from exc
            os.set_blocking(self._proc.stdin.fileno(), False)  # type: ignore[union-attr]
        return self._proc

    def _ask(self, request: bytes) -> tuple[str, str, str]:
        answer = _exchange(self._start(), struct.pack(">I", len(request)) + request,
                           time.monotonic() + self._deadline, 8 * len(request) + PIPE)
        return _checked(answer)


def _exchange(proc: subprocess.Popen, request: bytes, deadline: float, cap: int) -> bytes:
    """Writes the request while reading the answer (a large text fills the
    pipe before the child has read it all); the answer's bytes."""
    wfd, rfd = proc.stdin.fileno(), proc.stdout.fileno()  # type: ignore[union-attr]
    left = memoryview(request)
    got = bytearray()
    need: int | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(wfd, selectors.EVENT_WRITE)
        sel.register(rfd, selectors.EVENT_READ)
        while need is None or len(got) < 4 + need:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise _Failed("the text analyser took too long")
            for key, _ in sel.select(wait):
                if key.fd == wfd:
                    try:
                        left = left[os.write(wfd, left[:PIPE]):]
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        raise _Failed("the text analyser ended") from exc
                    if not left:
                        sel.unregister(wfd)
                    continue
                piece = os.read(rfd, PIPE)
                if not piece:
                    raise _Failed("the text analyser ended")
                got += piece
                if need is None and len(got) >= 4:
                    (need,) = struct.unpack(">I", got[:4])
                    if need > cap:
                        raise _Failed("the text analyser's answer was too long")
    if left or len(got) != 4 + need:
        raise _Failed("the text analyser answered out of turn")
    return bytes(got[4:])


def _checked(answer: bytes) -> tuple[str, str, str]:
    """The child's answer, if it has the shape of one; nothing else is trusted."""
    try:
        got = untrusted_json.loads(answer)
    except ValueError as exc:
        raise _Failed("the text analyser's answer was malformed") from exc
    if not isinstance(got, dict):
        raise _Failed("the text analyser's answer was malformed")
    lang, terms, more = got.get("lang"), got.get("terms"), got.get("more")
    if lang not in (*LANGUAGES, UNDETERMINED) or not all(
            isinstance(t, str) and TERM_CHARS.fullmatch(t.replace(" ", "")) for t in (terms, more)):
        raise _Failed("the text analyser's answer was malformed")
    return lang, terms, more
