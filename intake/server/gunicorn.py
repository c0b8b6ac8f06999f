"""Runs the app under gunicorn, as production does, with settings for Tor.

Uploads over Tor are slow: a 2 GiB file at 100 KiB/s takes almost six hours.
Each worker reads its connections in an event loop (intake.server.front), so
a slow upload or a stalled client holds no thread; gunicorn's worker timeout
is a heartbeat, not a cap on a request, so it does not cut them. The front
makes its own answers (no `Server:` banner) and its refusals are the app's pages.
"""

from __future__ import annotations

import gc
import logging

from gunicorn.app.base import BaseApplication

from intake.allocator import keep_freed_memory


class RedactRequestDetails(logging.Filter):
    """Gunicorn's own messages can name a client ("Invalid request from ip=...")
    or a request's URI, and a traceback's last line can quote what was sent.
    Each record keeps its level and the exception's type, nothing more."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "ip=" in message or "request" in message.lower() or record.exc_info:
            kind = record.exc_info[0].__name__ if record.exc_info else ""
            record.msg = "a request failed" + (f": {kind}" if kind else "")
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


# No time of day in a line: the journal stamps it anyway, and keeps it in memory
# only (deploy/journald@intake.conf).
LOGCONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": RedactRequestDetails}},
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                   "formatter": "plain", "filters": ["redact"]},
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "CRITICAL", "handlers": ["null"], "propagate": False},
    },
}


def post_fork(server, worker) -> None:
    # What the worker holds from its start (Flask, SQLAlchemy, the templates)
    # is never garbage: without this, every full collection walked all of it.
    gc.freeze()
    # An upload's buffers, freed and allocated again by the thousand, reuse
    # the same memory (a 1 GiB upload: 4.1 s instead of 4.7 s here).
    keep_freed_memory()


SETTINGS = {
    "worker_class": "intake.server.front.FrontWorker",
    "workers": 2,
    "threads": 16,  # app threads a worker runs at once (the connections wait in its loop)
    "worker_connections": 1000,  # open connections a worker keeps; more are closed at once
    "timeout": 60,
    "graceful_timeout": 30,
    "keepalive": 30,
    "accesslog": None,  # the access log would name clients and times
    "errorlog": "-",
    "loglevel": "warning",
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
    "forwarded_allow_ips": "",  # nothing in front could vouch for a client's address
    "proxy_allow_ips": "",
    "proxy_protocol": "off",
    "max_requests": 0,  # recycling a worker would cut uploads in flight
    "umask": 0o077,  # files the app creates are the service user's alone
    "control_socket_disable": True,  # no runtime control socket in the user's home
    "capture_output": False,
    "logconfig_dict": LOGCONFIG,
    "post_fork": post_fork,
}


class GunicornServer(BaseApplication):
    def __init__(self, app_factory, bind: str, **settings):
        self._factory = app_factory
        self._settings = {**SETTINGS, **settings, "bind": bind}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._settings.items():
            self.cfg.set(key, value)

    def load(self):
        return self._factory()
