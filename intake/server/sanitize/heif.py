"""HEIC/HEIF and AVIF without re-encoding: the item boxes are rewritten.

A HEIF file keeps its pictures and its metadata as *items* of one `meta`
box: the coded image (or the tiles of a grid), and beside it Exif and XMP
items, thumbnails, depth maps and gain maps, each found through `iinf`
(what it is), `iloc` (where its bytes are), `iref` (what it belongs to) and
`iprp` (its properties). Only the pictures the file shows (the primary
one and any other that is neither hidden nor a thumbnail or auxiliary
image), their tiles and their alpha planes are kept; every byte of `mdat`
and `idat` that a kept item does not use is zeroed, so removed items leave
nothing behind, and the coded image data is copied byte for byte (decoded
pixels identical).

Properties outside a known list (user descriptions `udes`, capture times)
are blanked in place, so the others keep their numbers. Whatever this module
does not vouch for (image sequences, items stored in other files, an
essential property it does not know, an ICC profile that is not a standard
one) raises Unsupported: the caller then re-encodes the pixels instead.
"""

from __future__ import annotations

import struct

from intake.server.sanitize import icc
from intake.server.sanitize.base import Cleaned, bomb, unique


class Unsupported(Exception):
    """A layout this rewrite does not vouch for."""


IMAGE_TYPES = {b"hvc1", b"av01", b"grid", b"iden", b"iovl", b"jpeg", b"j2k1", b"unci"}
ALPHA_URNS = (b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1")
# Properties that describe how to decode and show the picture.
KEEP_PROPERTIES = {b"hvcC", b"av1C", b"ispe", b"pixi", b"colr", b"irot", b"imir", b"clap",
                   b"pasp", b"auxC", b"clli", b"mdcv", b"a1lx", b"a1op", b"lsel", b"rloc",
                   b"cclv", b"amve", b"jpgC", b"j2kH", b"cmpd", b"uncC"}
META_KEPT = {b"hdlr", b"pitm", b"iloc", b"iinf", b"iref", b"iprp", b"idat", b"dinf"}
TOP_KEPT = {b"ftyp", b"meta", b"mdat", b"free", b"skip"}


def boxes(data: bytes, start: int, end: int):
    """(type, header start, payload start, end) of each box in data[start:end]."""
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise Unsupported("box header cut short")
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Unsupported("box header cut short")
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Unsupported("box size out of bounds")
        yield kind, pos, pos + header, pos + size
        pos += size


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _uint(data: bytes, pos: int, size: int) -> int:
    return int.from_bytes(data[pos:pos + size], "big") if size else 0


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int):
        self.data, self.pos, self.end = data, pos, end

    def take(self, n: int) -> int:
        if self.pos + n > self.end:
            raise Unsupported("box cut short")
        value = _uint(self.data, self.pos, n)
        self.pos += n
        return value

    def cstring(self) -> bytes:
        stop = self.data.find(b"\0", self.pos, self.end)
        if stop < 0:
            raise Unsupported("string cut short")
        value = self.data[self.pos:stop]
        self.pos = stop + 1
        return value


def _infe(data: bytes, start: int, end: int) -> tuple[int, bytes, bytes]:
    """Item id, type, and the version and flags (bit 0: a hidden item, such
    as a grid's tile)."""
    r = _Reader(data, start, end)
    head = data[start:start + 4]
    version = r.take(1)
    r.take(3)
    if version < 2:
        raise Unsupported("old item info entry")
    item = r.take(2 if version == 2 else 4)
    protection = r.take(2)
    if protection:
        raise Unsupported("protected item")
    return item, data[r.pos:r.pos + 4], head


def _iloc(data: bytes, start: int, end: int):
    r = _Reader(data, start, end)
    version = r.take(1)
    r.take(3)
    sizes = r.take(2)
    offset_size, length_size = sizes >> 12, (sizes >> 8) & 15
    base_size, index_size = (sizes >> 4) & 15, sizes & 15 if version else 0
    count = r.take(2 if version < 2 else 4)
    items = {}
    for _ in range(count):
        item = r.take(2 if version < 2 else 4)
        method = r.take(2) & 15 if version else 0
        if r.take(2) != 0:
            raise Unsupported("item data in another file")
        base = r.take(base_size)
        extents = []
        for _ in range(r.take(2)):
            if index_size and r.take(index_size):
                raise Unsupported("extent index")
            offset, length = r.take(offset_size), r.take(length_size)
            if length == 0:
                raise Unsupported("extent to the end of the file")
            extents.append((base + offset, length))
        items[item] = (method, extents)
    return version, items


def _write_iloc(items: dict[int, tuple[int, list[tuple[int, int]]]]) -> bytes:
    """Version 1 (construction methods), 4-byte offsets and lengths, no base."""
    wide = any(o + n > 0xFFFFFFFF for _m, ex in items.values() for o, n in ex)
    version = 2 if max(items, default=0) > 0xFFFF else 1
    offset = 8 if wide else 4
    out = [struct.pack(">B3sH", version, b"\0\0\0", (offset << 12) | (offset << 8)),
           struct.pack(">H" if version == 1 else ">I", len(items))]
    for item, (method, extents) in sorted(items.items()):
        out.append(struct.pack(">H" if version == 1 else ">I", item))
        out.append(struct.pack(">HHH", method, 0, len(extents)))
        for o, n in extents:
            out.append(o.to_bytes(offset, "big") + n.to_bytes(offset, "big"))
    return _box(b"iloc", b"".join(out))


def _refs(data: bytes, start: int, end: int):
    r = _Reader(data, start, end)
    version = r.take(1)
    r.take(3)
    width = 2 if version == 0 else 4
    refs = []
    for kind, _h, payload, box_end in boxes(data, r.pos, end):
        rr = _Reader(data, payload, box_end)
        source = rr.take(width)
        targets = [rr.take(width) for _ in range(rr.take(2))]
        refs.append((kind, source, targets))
    return version, refs


def _write_iref(version: int, refs) -> bytes:
    width = ">H" if version == 0 else ">I"
    body = [struct.pack(">B3s", version, b"\0\0\0")]
    for kind, source, targets in refs:
        body.append(_box(kind, struct.pack(width, source) + struct.pack(">H", len(targets))
                         + b"".join(struct.pack(width, t) for t in targets)))
    return _box(b"iref", b"".join(body))


def _properties(data: bytes, start: int, end: int):
    """ipco's boxes (numbered from 1) and ipma's associations per item."""
    ipco, ipma = None, None
    for kind, _h, payload, box_end in boxes(data, start, end):
        if kind == b"ipco":
            ipco = list(boxes(data, payload, box_end))
        elif kind == b"ipma":
            if ipma is not None:
                raise Unsupported("several ipma boxes")
            ipma = (payload, box_end)
        else:
            raise Unsupported("unknown item property box")
    if ipco is None or ipma is None:
        raise Unsupported("no item properties")
    r = _Reader(data, *ipma)
    version, flags = r.take(1), r.take(3)
    associations = {}
    for _ in range(r.take(4)):
        item = r.take(2 if version < 1 else 4)
        entries = []
        for _ in range(r.take(1)):
            if flags & 1:
                value = r.take(2)
                entries.append((bool(value & 0x8000), value & 0x7FFF))
            else:
                value = r.take(1)
                entries.append((bool(value & 0x80), value & 0x7F))
        associations[item] = entries
    return ipco, version, flags, associations


def _write_ipma(version: int, flags: int, associations) -> bytes:
    body = [struct.pack(">B", version), flags.to_bytes(3, "big"),
            struct.pack(">I", len(associations))]
    for item, entries in sorted(associations.items()):
        body.append(struct.pack(">H" if version < 1 else ">I", item))
        body.append(struct.pack(">B", len(entries)))
        for essential, index in entries:
            body.append(struct.pack(">H", essential << 15 | index) if flags & 1
                        else struct.pack(">B", essential << 7 | index))
    return _box(b"ipma", b"".join(body))


def _kept_items(primary: int, types: dict[int, bytes], refs, aux_alpha: set[int],
                hidden: set[int]) -> set[int]:
    # Every picture the file shows, not only the primary one (an iPhone keeps
    # an edit beside the photo); thumbnails and auxiliary images are not.
    belong = {source for kind, source, _targets in refs if kind in (b"thmb", b"auxl")}
    kept = {primary} | {i for i, kind in types.items()
                        if kind in IMAGE_TYPES and i not in hidden and i not in belong}
    while True:
        more = set()
        for kind, source, targets in refs:
            if source in kept and kind in (b"dimg", b"prem"):
                more |= {t for t in targets if kind == b"dimg" or t in aux_alpha}
            if kind == b"auxl" and source in aux_alpha and kept & set(targets):
                more.add(source)
        if more <= kept:
            return {i for i in kept if types.get(i) in IMAGE_TYPES}
        kept |= more


def clean(data: bytes, max_pixels: int) -> Cleaned:
    top = list(boxes(data, 0, len(data)))
    if not top or top[0][0] != b"ftyp":
        raise Unsupported("no ftyp first")
    removed: list[str] = []
    metas = [b for b in top if b[0] == b"meta"]
    if len(metas) != 1:
        raise Unsupported("not one meta box")
    for kind, *_ in top:
        if kind not in TOP_KEPT:
            if kind in (b"moov", b"moof"):
                raise Unsupported("image sequence")
            removed.append(f"box {kind.decode('latin-1')}")
    _, _, meta_payload, meta_end = metas[0]
    children = {}
    for kind, h, payload, end in boxes(data, meta_payload + 4, meta_end):
        if kind in META_KEPT:
            if kind in children:
                raise Unsupported(f"two {kind!r} boxes")
            children[kind] = (h, payload, end)
        else:
            removed.append(f"meta box {kind.decode('latin-1')}")
    for needed in (b"pitm", b"iloc", b"iinf", b"iprp", b"hdlr"):
        if needed not in children:
            raise Unsupported("a needed box is missing")
    r = _Reader(data, children[b"pitm"][1], children[b"pitm"][2])
    version = r.take(1)
    r.take(3)
    primary = r.take(2 if version == 0 else 4)
    # iinf
    h, payload, end = children[b"iinf"]
    r = _Reader(data, payload, end)
    version = r.take(1)
    r.take(3)
    r.take(2 if version == 0 else 4)
    types, infe_heads = {}, {}
    for kind, _h, p, e in boxes(data, r.pos, end):
        if kind != b"infe":
            raise Unsupported("unknown box in iinf")
        item, item_type, infe_head = _infe(data, p, e)
        types[item], infe_heads[item] = item_type, infe_head
    ref_version, refs = _refs(data, children[b"iref"][1], children[b"iref"][2]) \
        if b"iref" in children else (0, [])
    ipco, ipma_version, ipma_flags, associations = _properties(
        data, children[b"iprp"][1], children[b"iprp"][2])
    aux_alpha = set()
    for item, entries in associations.items():
        for _essential, index in entries:
            if 0 < index <= len(ipco):
                kind, _h, p, e = ipco[index - 1]
                if kind == b"auxC" and data[p + 4:e].rstrip(b"\0").startswith(ALPHA_URNS):
                    aux_alpha.add(item)
    hidden = {i for i, head in infe_heads.items() if head[3] & 1}
    kept = _kept_items(primary, types, refs, aux_alpha, hidden)
    if primary not in kept:
        raise Unsupported("the primary item is not an image")
    for item in sorted(set(types) - kept):
        removed.append({b"Exif": "Exif", b"mime": "XMP (or other mime item)"}.get(
            types[item], f"item {types[item].decode('latin-1', 'replace').strip()}"))
    # Properties: kept ones as they are, others blanked in place.
    used = {index for item in kept for _e, index in associations.get(item, [])}
    new_ipco = []
    for number, (kind, h, p, e) in enumerate(ipco, start=1):
        box = data[h:e]
        # An empty profile (as iOS writes for an edit) says nothing: kept.
        if kind == b"colr" and data[p:p + 4] in (b"prof", b"rICC") and number in used \
                and data[p + 4:e] and not icc.is_standard(data[p + 4:e]):
            raise Unsupported("ICC profile that is not a standard one")
        if kind == b"ispe" and number in used:
            width, height = struct.unpack(">II", data[p + 4:p + 12])
            if width * height > max_pixels:
                raise bomb("image too large")
        if kind not in KEEP_PROPERTIES:
            if any(essential and index == number for item in kept
                   for essential, index in associations.get(item, [])):
                raise Unsupported("unknown essential property")
            if number in used:
                removed.append(f"property {kind.decode('latin-1', 'replace')}")
            box = _box(b"free", bytes(len(box) - 8))
        new_ipco.append(box)
    new_associations = {i: a for i, a in associations.items() if i in kept}
    # Items' bytes: where each kept extent lies now.
    iloc_version, locations = _iloc(data, children[b"iloc"][1], children[b"iloc"][2])
    mdats = [(p, e) for kind, _h, p, e in top if kind == b"mdat"]
    idat = children.get(b"idat")
    keep_mdat = [bytearray(e - p) for p, e in mdats]
    keep_idat = bytearray(idat[2] - idat[1]) if idat else bytearray()
    for item in kept:
        method, extents = locations.get(item, (0, []))
        for offset, length in extents:
            if method == 0:
                for n, (p, e) in enumerate(mdats):
                    if p <= offset and offset + length <= e:
                        keep_mdat[n][offset - p:offset - p + length] = data[offset:offset + length]
                        break
                else:
                    raise Unsupported("item data outside mdat")
            elif method == 1 and idat and offset + length <= len(keep_idat):
                keep_idat[offset:offset + length] = data[idat[1] + offset:idat[1] + offset
                                                          + length]
            else:
                raise Unsupported("item data construction")
    if any(bytes(a) != data[p:e] for a, (p, e) in zip(keep_mdat, mdats, strict=True)):
        removed.append("unused media data (removed items' bytes)")
    # The new meta box, then offsets moved by what changed before each mdat.
    hdlr = data[children[b"hdlr"][1]:children[b"hdlr"][1] + 12]
    infe = b"".join(_box(b"infe", infe_heads[i]
                         + struct.pack(">H" if infe_heads[i][0] == 2 else ">I", i)
                         + b"\0\0" + types[i] + b"\0") for i in sorted(kept))
    iinf = _box(b"iinf", struct.pack(">B3sI", 1, b"\0\0\0", len(kept)) + infe)
    new_refs = [(k, s, [t for t in ts if t in kept]) for k, s, ts in refs if s in kept]
    new_refs = [(k, s, ts) for k, s, ts in new_refs if ts]
    iprp = _box(b"iprp", _box(b"ipco", b"".join(new_ipco))
                + _write_ipma(ipma_version, ipma_flags, new_associations))

    def meta_box(new_locations) -> bytes:
        parts = [_box(b"hdlr", hdlr + bytes(12) + b"\0"),
                 data[children[b"pitm"][0]:children[b"pitm"][2]], iinf,
                 _write_iloc(new_locations)]
        if new_refs:
            parts.append(_write_iref(ref_version, new_refs))
        parts.append(iprp)
        if b"dinf" in children:
            parts.append(data[children[b"dinf"][0]:children[b"dinf"][2]])
        if idat:
            parts.append(_box(b"idat", bytes(keep_idat)))
        return _box(b"meta", data[meta_payload:meta_payload + 4] + b"".join(parts))

    kept_locations = {i: locations[i] for i in kept if i in locations}
    # The meta box's size does not depend on the offsets (4 bytes each, as a
    # picture under the pixel limit needs): lay out, then fill them in.
    meta_size = len(meta_box(kept_locations))
    out_boxes: list[bytes | None] = []
    mdat_at, pos = {}, 0
    for kind, h, p, e in top:
        if kind == b"meta":
            out_boxes.append(None)
            pos += meta_size
        elif kind == b"mdat":
            body = bytes(keep_mdat[len(mdat_at)])
            box = _box(b"mdat", body) if len(body) + 8 <= 0xFFFFFFFF else \
                struct.pack(">I4sQ", 1, b"mdat", len(body) + 16) + body
            mdat_at[(p, e)] = pos + len(box) - len(body)
            out_boxes.append(box)
            pos += len(box)
        elif kind == b"ftyp":
            out_boxes.append(data[h:e])
            pos += e - h
        # free, skip and unknown top-level boxes are dropped
    moved = {}
    for item, (method, extents) in kept_locations.items():
        new_extents = []
        for offset, length in extents:
            if method == 0:
                p, e = next((p, e) for p, e in mdats if p <= offset < e)
                offset = mdat_at[(p, e)] + offset - p
            new_extents.append((offset, length))
        moved[item] = (method, new_extents)
    final_meta = meta_box(moved)
    if len(final_meta) != meta_size:
        raise Unsupported("the item locations did not settle")
    out = b"".join(final_meta if b is None else b for b in out_boxes)
    return Cleaned(out, unique(removed), tool="intake heif items")
