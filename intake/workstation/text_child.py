"""The text analyser's child: a text's language and search terms, for one
import, in a fresh interpreter that never held a key.

    python -m intake.workstation.text_child isolated|plain LIMITS

Started by intake.workstation.text_analysis at an import's first text with
a word in it, and kept until the import ends. When `isolated` it runs under `unshare -rnm` and
confines itself as the safe reader's child does (intake.workstation.
parse_child: every mount read-only, no capabilities, no_new_privs); in any
case it sets its limits (CPU seconds, address space, open files) before it
reads a byte. Then, one at a time:

    request  u32be(len) | the text (UTF-8)
    answer   u32be(len) | {"lang": ..., "terms": ..., "more": ...} (JSON)

It ends when its input does, or at a request longer than `max_input`.
"""

from __future__ import annotations

import json
import struct
import sys

from intake.workstation.parse_child import EXIT_ISOLATION, IsolationFailed, confine


def _read(n: int) -> bytes:
    data = sys.stdin.buffer.read(n)
    return data if len(data) == n else b""


def main(argv: list[str]) -> int:
    isolated, limits = argv[0] == "isolated", json.loads(argv[1])
    try:
        confine(limits, isolated)
    except (IsolationFailed, OSError, ValueError):
        return EXIT_ISOLATION
    # Loaded only now, under the limits: lingua, pymorphy3, Snowball, Hunspell.
    from intake.workstation.text_analysis import analyse_here

    out = sys.stdout.buffer
    while head := _read(4):
        (n,) = struct.unpack(">I", head)
        if n > limits["max_input"]:
            return 1
        text = _read(n)
        if len(text) != n:
            return 0
        got = analyse_here(text.decode(errors="replace"))
        answer = json.dumps({"lang": got.lang, "terms": got.terms, "more": got.more},
                            ensure_ascii=False).encode()
        out.write(struct.pack(">I", len(answer)) + answer)
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
