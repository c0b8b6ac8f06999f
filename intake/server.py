"""Runs the app under gunicorn, as production does, with settings for Tor.

Uploads over Tor are slow: a 2 GiB file at 100 KiB/s takes almost six hours.
Threaded workers keep one slow upload from blocking the others; gunicorn's
worker timeout is a heartbeat, not a cap on a request, so it does not cut them.
"""

from __future__ import annotations

from gunicorn.app.base import BaseApplication
from gunicorn.http import wsgi as gunicorn_wsgi

SETTINGS = {
    "worker_class": "gthread",
    "workers": 2,
    "threads": 16,
    "timeout": 60,
    "graceful_timeout": 30,
    "keepalive": 75,
    "accesslog": None,  # the access log would name clients and times
    "errorlog": "-",
    "loglevel": "warning",
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
    "forwarded_allow_ips": "",
    "proxy_allow_ips": "",
}


def _without_server_banner(default_headers):
    def headers(self):
        return [h for h in default_headers(self) if not h.startswith("Server:")]

    return headers


gunicorn_wsgi.Response.default_headers = _without_server_banner(
    gunicorn_wsgi.Response.default_headers)


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
