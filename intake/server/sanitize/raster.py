"""TIFF, BMP and HEIF/HEIC: decoded and written again as a *fresh* image.

Re-saving the opened Pillow image would carry its info (comments, ICC, TIFF
tags) into the new file, so the pixels are copied into a new Image that has
no history. Orientation is applied to the pixels. TIFF is written with its
own compression when that is lossless, else deflate (pixels identical); BMP
is uncompressed; HEIF has to be re-encoded (at high quality: near-identical,
same dimensions).
"""

from __future__ import annotations

import io
import warnings

from intake.server.sanitize import icc
from intake.server.sanitize.base import Cleaned, Refused, bomb, unique
from intake.server.sanitize.jpeg import exif_field_names

LOSSLESS_TIFF = {"raw", "tiff_lzw", "packbits", "tiff_deflate", "tiff_adobe_deflate"}
# Structural TIFF tags, which describe the pixels rather than the picture's story.
STRUCTURAL = {256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 280, 281, 282, 283, 284,
              296, 317, 320, 322, 323, 324, 325, 338, 339, 340, 341, 530, 531, 532}


def _names(image, family: str) -> list[str]:
    from PIL import TiffTags

    names: list[str] = []
    if family == "tiff":
        tags = getattr(image, "tag_v2", {})
        names += [f"TIFF:{TiffTags.lookup(t).name}" for t in tags if t not in STRUCTURAL]
    exif = image.info.get("exif")
    if exif:
        names += exif_field_names(exif[6:] if exif.startswith(b"Exif\0\0") else exif)[0]
    elif family != "tiff" and image.getexif():
        names.append("EXIF")
    for key in ("xmp", "XML:com.adobe.xmp"):
        if image.info.get(key):
            names.append("XMP")
    if "photoshop" in image.info or 33723 in getattr(image, "tag_v2", {}):
        names.append("IPTC/Photoshop")
    if image.info.get("comment"):
        names.append("Comment")
    return names


def _fresh(frame):
    from PIL import Image, ImageOps

    frame = ImageOps.exif_transpose(frame)
    fresh = Image.frombytes(frame.mode, frame.size, frame.tobytes())
    if frame.mode in ("P", "PA"):
        fresh.putpalette(frame.getpalette(rawmode="RGB"))
    return fresh


def clean(family: str, data: bytes, max_pixels: int) -> Cleaned:
    from PIL import Image, ImageSequence, features

    Image.MAX_IMAGE_PIXELS = max_pixels
    tool = f"Pillow {Image.__version__}"
    if family == "heif":
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False, depth_images=False)
        tool += f"; pillow-heif {pillow_heif.__version__}"
    elif family == "avif" and not features.check("avif"):
        raise Refused("unsupported type (no AVIF encoder here)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise bomb("image too large") from exc
        if image.width * image.height > max_pixels:
            raise bomb("image too large")
        removed = _names(image, family)
        profile = image.info.get("icc_profile")
        keep_icc = bool(profile) and icc.is_standard(profile)
        if profile and not keep_icc:
            removed.append("ICC profile (not a standard one)")
        frames = [_fresh(f.copy()) for f in ImageSequence.Iterator(image)]
    out = io.BytesIO()
    extra = {"icc_profile": profile} if keep_icc else {}
    if family == "tiff":
        # The received compression when it is lossless (fastest, and the size
        # the witness sent); deflate for the rest, so pixels never change.
        compression = image.info.get("compression")
        if compression not in LOSSLESS_TIFF:
            compression = "tiff_deflate"
        frames[0].save(out, "TIFF", compression=compression, save_all=len(frames) > 1,
                       append_images=frames[1:], **extra)
        kind = "image/tiff"
    elif family == "bmp":
        frames[0].save(out, "BMP")
        kind = "image/bmp"
    elif family == "pnm":
        frames[0].save(out, "PPM")  # PBM, PGM or PPM by the picture's mode; no comments
        kind = "image/x-portable-anymap"
    elif family == "avif":
        frames[0].save(out, "AVIF", quality=90, speed=8, **extra)
        kind = "image/avif"
    else:
        # x265's fastest preset: a 12-megapixel photo in about a second, not ten.
        frames[0].save(out, "HEIF", quality=92, save_all=len(frames) > 1,
                       append_images=frames[1:], enc_params={"preset": "ultrafast"},
                       **extra)
        kind = "image/heic"
    return Cleaned(out.getvalue(), unique(removed), tool=tool, detected_type=kind)
