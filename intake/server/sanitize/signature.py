"""Digital signatures in a PDF: who signed it, and when.

A signature dictionary (/Type /Sig, or /DocTimeStamp) holds the signer's
certificate inside its PKCS#7 or CMS /Contents (a full name, an e-mail, a
tax or personal number in a qualified certificate), and beside it the
signer's /Name, /Location, /Reason, /ContactInfo and signing time /M; the
CMS itself holds the signing time to the second. The document security
store (/DSS) keeps more certificates and revocation answers, and /Perms a
certification signature. The cleaned copy is not the bytes that were
signed, so no signature in it could still hold: every one goes, with the
appearance that showed it on the page (often the name and the time again,
or a picture of a handwritten signature). The fields stay, unsigned. The
original keeps its signatures for those who are to verify them.
"""

from __future__ import annotations

SIGNATURES = ("/Sig", "/DocTimeStamp")


def is_signature(obj) -> bool:
    """A signature or document timestamp dictionary, whatever its /Type
    says: one with a /ByteRange and /Contents is read as one by a reader."""
    keys = obj.keys()
    return bool(("/ByteRange" in keys and "/Contents" in keys)
                or ("/Type" in keys and obj.get("/Type") in SIGNATURES))


def signature_fields(obj) -> list:
    """A signature field and its widgets (kids that inherit its /FT)."""
    import pikepdf

    if "/FT" not in obj or obj.get("/FT") != pikepdf.Name.Sig:
        return []
    kids = obj.get("/Kids")
    return [obj, *(k for k in kids if isinstance(k, pikepdf.Dictionary))] \
        if isinstance(kids, pikepdf.Array) else [obj]


def remove_signatures(pdf, dicts: list, removed: list[str]) -> None:
    """Removes every signature from `pdf`, whose dictionaries are `dicts`
    (pdf_objects.dictionaries: those written in place too)."""
    import pikepdf

    for obj in dicts:
        if is_signature(obj):
            for key in list(obj.keys()):
                del obj[key]
            removed.append("digital signature")
        for field in signature_fields(obj):
            for key in ("/V", "/AP", "/AS"):
                if key in field:
                    del field[key]
                    removed.append(f"signature field {key[1:]}")
    root = pdf.Root
    for key, what in (("/Perms", "signature permissions"), ("/DSS", "document security store")):
        if key in root:
            del root[key]
            removed.append(what)
    form = root.get("/AcroForm")
    if isinstance(form, pikepdf.Dictionary) and "/SigFlags" in form:
        del form["/SigFlags"]  # "signatures exist, append only": no longer so


def signatures_left(pdf, dicts: list) -> str | None:
    """What of a signature a cleaned copy still holds, or None."""
    for key in ("/Perms", "/DSS"):
        if key in pdf.Root:
            return key[1:]
    for obj in dicts:
        if is_signature(obj) and len(obj.keys()) > 0:
            return "signature"
        if any(key in field for field in signature_fields(obj) for key in ("/V", "/AP")):
            return "signature field"
    return None
