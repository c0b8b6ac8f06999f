"""Gunicorn settings for production, made for Tor's slow clients.

    gunicorn -c /opt/intake/deploy/gunicorn.conf.py 'intake.server.witness:create_app()'

The core settings are intake.server.gunicorn's, so `intake serve` and production
run alike (the front answers without a Server banner). What is added here:
where to listen (from the environment, so one file serves both apps), a log
that never names a client, a request or a time of day, and no control socket.

A 2 GiB upload at 100 KiB/s takes almost six hours. Each worker reads its
connections in an event loop (intake.server.front.FrontWorker) with deadlines
and a minimum rate, and only a complete request takes one of its `threads`,
so slow clients do not block the others; `timeout` is the worker's
heartbeat, not a cap on a request, so it does not cut them.
"""

import os

from intake.server.gunicorn import SETTINGS

for _name, _value in SETTINGS.items():
    globals()[_name] = _value

bind = os.environ.get("INTAKE_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("INTAKE_WORKERS", SETTINGS["workers"]))
threads = int(os.environ.get("INTAKE_THREADS", SETTINGS["threads"]))
proc_name = os.environ.get("INTAKE_PROC_NAME", "intake")

# Everything else (limits, timeouts, no access log, a log that never names a
# client, a request or a time of day, umask 0077, no control socket) is in
# intake.server.gunicorn.SETTINGS, applied above.
