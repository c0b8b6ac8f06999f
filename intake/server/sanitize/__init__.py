"""Metadata stripping: each upload cleaned in a resource-limited child process.

`sanitize(spool, make_sink)` returns a Result: the cleaned copy in a new sink
(its own envelope, sealed as it arrives), or ok=False with a reason (and
`hostile` for a bomb). The child tells the type; the worker runs no parser.
See docs/sanitizing.md.

Names are loaded on first use, so that the child process, which imports this
package too, starts without libmagic and the crypto it does not need.
"""

from __future__ import annotations

import importlib

_WHERE = {"sanitize": "runner", "Result": "runner", "network_isolated": "runner",
          "probe_sandbox": "runner", "Limits": "limits", "CLEANED_KINDS": "families",
          "family_of": "families"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"intake.server.sanitize.{_WHERE[name]}"), name)
