"""deploy/gunicorn.conf.py: intake.server's settings, plus a log that names
no client, no request and no time."""

from __future__ import annotations

import io
import logging
import runpy

import pytest
from deploy_support import DEPLOY

from intake.server.gunicorn import SETTINGS


@pytest.fixture
def conf(monkeypatch):
    for name in ("INTAKE_BIND", "INTAKE_WORKERS", "INTAKE_THREADS"):
        monkeypatch.delenv(name, raising=False)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_core_settings_are_intake_servers(conf):
    for name, value in SETTINGS.items():
        assert conf[name] == value, name
    # Connections wait in the worker's event loop; only complete requests take a thread.
    assert conf["worker_class"] == "intake.server.front.FrontWorker" and conf["threads"] >= 8
    assert conf["accesslog"] is None
    assert conf["bind"] == "127.0.0.1:8080"
    assert conf["max_requests"] == 0  # recycling a worker would cut uploads in flight
    assert conf["umask"] == 0o077
    assert conf["control_socket_disable"] is True
    assert conf["forwarded_allow_ips"] == ""


def test_gunicorn_accepts_every_name(conf):
    from gunicorn.config import Config

    known = set(Config().settings)
    ours = {k for k in conf if not k.startswith("_") and k.islower()
            and not callable(conf[k]) and k not in {"logging", "os"}}
    assert ours <= known, ours - known


def test_error_log_keeps_no_client_request_or_time(conf):
    # The handler as the config builds it, on a logger of its own (dictConfig
    # here would rewire this test process's logging).
    cfg = conf["logconfig_dict"]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(cfg["formatters"]["plain"]["format"]))
    handler.addFilter(cfg["filters"]["redact"]["()"]())
    log = logging.getLogger("gunicorn.error.under-test")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning("Invalid request from ip=%s: %s", "192.0.2.7", "Invalid HTTP request line")
        try:
            raise ValueError("the witness's file name.jpg")
        except ValueError:
            log.exception("Error handling request %s", "/submit?x=1")
        log.critical("WORKER TIMEOUT (pid:%s)", 1234)
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    name = "gunicorn.error.under-test"
    assert text.splitlines() == [f"WARNING {name}: a request failed",
                                 f"ERROR {name}: a request failed: ValueError",
                                 f"CRITICAL {name}: WORKER TIMEOUT (pid:1234)"], text
    for leak in ("192.0.2.7", "/submit", "name.jpg", "Traceback"):
        assert leak not in text
