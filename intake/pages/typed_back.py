"""What a refused form carried, given back to be copied."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import HTTPException


def typed_back(fields: tuple[str, ...], trusted: bool = False) -> str:
    """The first of `fields` that a refused POST filled, as typed, for its
    page to show read-only: what was written at length must not be lost to a
    refusal. Only for a form known to come from our own page: `trusted` (its
    CSRF token held, or its Origin is ours), or the browser says so
    (Sec-Fetch-Site; with Referrer-Policy: no-referrer a browser sends
    "Origin: null" even from the same origin). A page elsewhere must not put
    words of its choosing into ours."""
    if request.method != "POST" or not (
            trusted or request.headers.get("Sec-Fetch-Site") == "same-origin"):
        return ""
    try:
        form = request.form
    except HTTPException:  # a body too large to read: nothing to give back
        return ""
    return next((text for field in fields if (text := form.get(field, "")).strip()), "")
