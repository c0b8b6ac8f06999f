"""Strict security headers on every response."""

from __future__ import annotations

# One script, from our own origin (templates/static/uploads.js: resumable
# uploads); no inline code, nothing from elsewhere; it talks only to us.
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
       "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cache-Control": "no-store, max-age=0",
    "Pragma": "no-cache",
}


def init_app(app) -> None:
    @app.after_request
    def _secure(response):
        for name, value in HEADERS.items():
            response.headers[name] = value
        response.headers.pop("Server", None)
        return response
