"""Warn witnesses who reach the form through Tor2web or a clearnet proxy.

Such a proxy sees everything the witness sends and who they are. Two signs,
as SecureDrop checks them: the X-Tor2web header that Tor2web adds, and a Host
that is not our onion address (a proxy rewrites it), when the operator has
told us that address (onion_hostname).
"""

from __future__ import annotations

from flask import current_app, g, request

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


def through_proxy(headers, host: str, onion_hostname: str) -> bool:
    if headers.get("X-Tor2web"):
        return True
    if not onion_hostname:
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() not in {onion_hostname.lower(), *LOCAL_HOSTS}


def init_app(app) -> None:
    @app.before_request
    def _check():
        config = current_app.extensions["intake"].config
        g.proxy_warning = through_proxy(request.headers, request.host, config.onion_hostname)

    @app.context_processor
    def _expose():
        return {"proxy_warning": g.get("proxy_warning", False)}
