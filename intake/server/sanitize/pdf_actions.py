"""What a PDF does of itself: actions that reach outside the file.

A PDF can act when it is opened, when a page is shown or a field touched
(/OpenAction, additional actions /AA), and run JavaScript, which can submit
a form or open an address. Made by whoever wants to know who examines the
evidence, that tells them that, and when, someone opened it: on a
prosecutor's networked machine, long after it left the air-gapped one.
Opening another file (GoToR, GoToE) from a shared folder, `\\\\host\\share`,
hands a Windows login to that host. So, as a book's references outside it
go (epub_references), these go: /AA everywhere, an /OpenAction that is not
a place in the document, the document's JavaScript, XFA forms (they carry
scripts and submit addresses of their own), and every action but going to a
place in the document, a named one (next page...), resetting or hiding
fields, showing layers or an article, and a web or mail address to click
(a link's /URI, followed only on the reader's click, as a book's `<a href>`).
"""

from __future__ import annotations

KEPT = frozenset({"/GoTo", "/Named", "/ResetForm", "/Hide", "/SetOCGState", "/Thread", "/URI"})
# Every action type (ISO 32000-2, 12.6.4): a dictionary is an action by its
# /S only when it is one of them, since a transparency group, a soft mask
# or a border style also has an /S and may leave out its /Type.
ACTIONS = KEPT | {"/GoToR", "/GoToE", "/GoToDp", "/Launch", "/Sound", "/Movie", "/SubmitForm",
                  "/ImportData", "/JavaScript", "/Rendition", "/Trans", "/GoTo3DView",
                  "/RichMediaExecute"}
WEB = ("http://", "https://", "mailto:")
# The keys a dictionary has when it acts or holds what acts.
WATCHED = frozenset({"/AA", "/OpenAction", "/Names", "/XFA", "/A", "/Next", "/S"})


def _kept(action) -> bool:
    """An action that reaches nothing outside the document."""
    import pikepdf

    if action.get("/S") == pikepdf.Name.URI:
        uri = action.get("/URI")
        text = bytes(uri).decode("latin-1") if isinstance(uri, pikepdf.String) else ""
        return text.strip("\x00\t\n\r ").lower().startswith(WEB)
    return str(action.get("/S")) in KEPT


def _is_action(obj) -> bool:
    import pikepdf

    if not isinstance(obj, pikepdf.Dictionary) or obj.get("/Type") not in (None,
                                                                          pikepdf.Name.Action):
        return False
    kind = obj.get("/S")
    return isinstance(kind, pikepdf.Name) and str(kind) in ACTIONS


def _named(obj) -> str:
    import pikepdf

    kind = obj.get("/S")
    return str(kind)[1:40] if isinstance(kind, pikepdf.Name) else "?"


def actions(dicts: list, removed: list[str] | None) -> str | None:
    """Removes what acts outside the document from its dictionaries `dicts`
    (pdf_objects.dictionaries), naming each in `removed`; with `removed`
    None, only looks, and says what is there (None: nothing)."""
    import pikepdf

    found: list[str] = []

    def drop(owner, key: str, what: str) -> None:
        found.append(what)
        if removed is not None:
            del owner[key]
            removed.append(what)

    for obj in dicts:
        keys = obj.keys()
        if keys.isdisjoint(WATCHED):
            continue  # most of a file's dictionaries: looked at once, cheaply
        if "/AA" in keys:
            drop(obj, "/AA", "automatic action")
        opened = obj.get("/OpenAction") if "/OpenAction" in keys else None
        if opened is not None and not isinstance(opened, pikepdf.Array) and not (
                _is_action(opened) and opened.get("/S") == pikepdf.Name.GoTo):
            drop(obj, "/OpenAction", "open action")
        names = obj.get("/Names") if "/Names" in keys else None
        if isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names:
            drop(names, "/JavaScript", "document JavaScript")
        if "/XFA" in keys and "/Fields" in keys:
            drop(obj, "/XFA", "XFA form")
        for key in ("/A", "/Next"):
            value = obj.get(key) if key in keys else None
            if _is_action(value) and not _kept(value):
                drop(obj, key, f"action {_named(value)}")
            elif isinstance(value, pikepdf.Array) and any(
                    _is_action(a) and not _kept(a) for a in value):
                drop(obj, key, "action chain")
        if "/S" in keys and _is_action(obj) and not _kept(obj) and obj.is_indirect:
            # Reached some other way than the keys above: emptied, it does nothing.
            found.append(f"action {_named(obj)}")
            if removed is not None:
                removed.append(f"action {_named(obj)}")
                for key in list(obj.keys()):
                    del obj[key]
    return found[0] if found else None
