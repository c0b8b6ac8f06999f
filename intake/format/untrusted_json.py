"""JSON from anything not trusted: a bundle, an envelope's sealed metadata, a
child's answer, a file carried between machines.

json.loads raises RecursionError, not ValueError, for arrays or objects
nested past the interpreter's depth, and anyone can write those. loads()
here turns that into TooDeep, a ValueError, so that every caller's "not
valid JSON" refusal covers it too (and a caller that wants to say so can).
"""

from __future__ import annotations

import json


class TooDeep(ValueError):
    pass


def loads(data: str | bytes, **options) -> object:
    try:
        return json.loads(data, **options)
    except RecursionError as exc:
        raise TooDeep("nested too deeply") from exc
