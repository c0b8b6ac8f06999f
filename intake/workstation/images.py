"""Pictures, handled safely: decoded by Pillow, never passed on as received.

A preview is a fresh PNG re-encoded from the decoded pixels, so nothing of
the file (metadata, trailing data, a polyglot's other half) reaches the
browser. The perceptual hash is a 64-bit difference hash (dHash): the picture
reduced to 9x8 grey pixels, one bit per pair of neighbours; pictures that
differ by re-encoding, resizing or small edits land a few bits apart.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image

MAX_PIXELS = 80_000_000
PREVIEW_EDGE = 1600
NEAR_BITS = 10  # at most this many of 64 bits apart counts as a near-duplicate


class NotAnImage(Exception):
    pass


def _open(path: Path) -> Image.Image:
    with warnings.catch_warnings():
        # A picture too large to decode safely is refused, not decoded.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
            if img.width * img.height > MAX_PIXELS:
                raise NotAnImage("too many pixels")
            img.load()
        except NotAnImage:
            raise
        except Exception as exc:
            # A decoder fed hostile bytes may fail in any way (struct.error, IndexError,
            # a bomb warning...): all of them mean "no picture to show".
            raise NotAnImage(type(exc).__name__) from exc
    return img


def preview_png(path: Path) -> bytes:
    img = _open(path)
    img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    img.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE))
    fresh = Image.new(img.mode, img.size)
    fresh.paste(img)
    out = io.BytesIO()
    fresh.save(out, format="PNG")
    return out.getvalue()


def dhash(path: Path) -> str:
    grey = _open(path).convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    px = grey.tobytes()  # mode L: one byte per pixel
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return f"{bits:016x}"


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
