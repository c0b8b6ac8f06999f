"""MP3, FLAC, Ogg Vorbis and Opus with mutagen: every tag and embedded picture
is removed; the audio frames are not touched. (WAV and AIFF are rewritten
chunk by chunk as they stream through, M4A box by box, and ffmpeg cleans
what those rewrites do not vouch for: see media.py.)"""

from __future__ import annotations

import io

from intake.server.sanitize.base import Cleaned, Refused, field_name, unique


def _tag_names(tags) -> list[str]:
    if tags is None:
        return []
    keys = tags.keys() if hasattr(tags, "keys") else [k for k, _v in tags]
    return [field_name(str(k).split(":")[0]) for k in keys]


def clean(family: str, data: bytes) -> Cleaned:
    import mutagen
    from mutagen import apev2, id3

    buf = io.BytesIO(data)
    removed: list[str] = []
    if family == "mp3":
        from mutagen.mp3 import MP3

        audio = MP3(buf)
        removed += [f"ID3:{n}" for n in _tag_names(audio.tags)]
        buf.seek(0)
        id3.delete(buf, delete_v1=True, delete_v2=True)
        buf.seek(0)
        try:
            ape = apev2.APEv2(buf)
            removed += [f"APE:{n}" for n in _tag_names(ape)]
            buf.seek(0)
            apev2.delete(buf)
        except apev2.APENoHeaderError:
            pass
        kind = "audio/mpeg"
    else:
        buf.seek(0)
        audio = mutagen.File(buf)
        if audio is None:
            raise Refused(f"malformed {family} file")
        removed += [f"{type(audio).__name__}:{n}" for n in _tag_names(audio.tags)]
        if family == "flac":
            if audio.pictures:
                removed.append("FLAC:picture")
            audio.clear_pictures()
            if audio.tags is not None:
                audio.tags.clear()
            buf.seek(0)
            audio.save(buf, deleteid3=True, padding=lambda _info: 0)
            kind = "audio/flac"
        else:
            buf.seek(0)
            audio.delete(buf)
            kind = "audio/ogg"
    buf.seek(0)
    if mutagen.File(buf) is None:
        raise Refused(f"{family} file unreadable after cleaning")
    return Cleaned(buf.getvalue(), unique(removed), tool=f"mutagen {mutagen.version_string}",
                   detected_type=kind)
