"""Pictures, handled safely: decoded by Pillow, never passed on as received.

Decoding runs only in the parsing sandbox (intake.workstation.parse_child),
once, at import; the desk shows what it made. Pillow may use exactly one
decoder, the one for the type detected from the file's bytes on arrival
(`Image.open(..., formats=[...])`): never EPS or PostScript (Ghostscript),
never a format the desk does not show. A picture with more than MAX_PIXELS
pixels to decode is refused before it is decoded. A JPEG is decoded at 1/2,
1/4 or 1/8 of its size when that is enough for the preview (libjpeg's DCT
scaling), so the cap counts the pixels it decodes to: a phone's 48 or 200
megapixels decode to at most 12.5, and its own size is capped at
MAX_JPEG_PIXELS, which bounds the time its decoding takes.

A preview is a fresh PNG re-encoded from the decoded pixels, so nothing of
the file (metadata, trailing data, a polyglot's other half) reaches the
browser. The perceptual hash is a 64-bit difference hash (dHash): the picture
reduced to 9x8 grey pixels, one bit per pair of neighbours; pictures that
differ by re-encoding, resizing or small edits land a few bits apart.

This module imports Pillow only when it decodes, so the processes that hold
keys never load a decoder.
"""

from __future__ import annotations

import io
import warnings

# Detected type (from libmagic, sealed on arrival) -> the one Pillow decoder used.
FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/tiff": "TIFF",
    "image/bmp": "BMP",
    "image/x-ms-bmp": "BMP",
    "image/avif": "AVIF",  # Pillow's own decoder (libavif); HEIC has none at the desk
}
MAX_PIXELS = 40_000_000
MAX_JPEG_PIXELS = 256_000_000  # a 200-megapixel phone camera's, and some room
PREVIEW_EDGE = 1600
NEAR_BITS = 10  # at most this many of 64 bits apart counts as a near-duplicate


class NotAnImage(Exception):
    pass


class TooManyPixels(NotAnImage):
    pass


def pillow_format(detected_type: str) -> str | None:
    return FORMATS.get(detected_type.split(";")[0].strip().lower())


def _decode(data: bytes, fmt: str, max_pixels: int):
    from PIL import Image

    if fmt not in FORMATS.values():
        raise NotAnImage("not a format the desk shows")
    Image.MAX_IMAGE_PIXELS = max(max_pixels, MAX_JPEG_PIXELS) if fmt == "JPEG" else max_pixels
    with warnings.catch_warnings():
        # A picture too large to decode safely is refused, not decoded.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=[fmt])
            img.draft("RGB", (PREVIEW_EDGE, PREVIEW_EDGE))  # JPEG: decode smaller
            if img.width * img.height > max_pixels:  # as it will be decoded
                raise TooManyPixels("too many pixels")
            img.load()
        except NotAnImage:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise TooManyPixels("too many pixels") from exc
        except MemoryError:
            raise
        except Exception as exc:
            # A decoder fed hostile bytes may fail in any way (struct.error,
            # IndexError, OSError...): all of them mean "no picture to show".
            raise NotAnImage(type(exc).__name__) from exc
    return img


def preview(data: bytes, fmt: str, max_pixels: int = MAX_PIXELS) -> tuple[bytes, str, int, int]:
    """(PNG, dHash, width, height) of the picture in `data`, decoded as `fmt` only."""
    from PIL import Image

    img = _decode(data, fmt, max_pixels)
    img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    img.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE))
    fresh = Image.new(img.mode, img.size)
    fresh.paste(img)
    out = io.BytesIO()
    fresh.save(out, format="PNG")
    return out.getvalue(), dhash(fresh), fresh.width, fresh.height


def dhash(img) -> str:
    from PIL import Image

    grey = img.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    px = grey.tobytes()  # mode L: one byte per pixel
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return f"{bits:016x}"


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
