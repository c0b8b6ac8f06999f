"""Every dictionary of a PDF, for the cleaner and its check to look at."""

from __future__ import annotations

from collections.abc import Iterator

MOST_NESTED = 32  # deeper than any real file's dictionaries


class Nested(Exception):
    """Dictionaries nested deeper than any real file's."""


def dictionaries(pdf) -> list:
    """Every dictionary and stream of the file: its objects, and the
    dictionaries written in place inside them (an annotation, an action or
    a font that is not an object of its own), each reached once. Walked
    once, for all who look at them (the walk is most of their cost)."""
    import pikepdf

    def visit(obj, depth: int) -> Iterator:
        if depth > MOST_NESTED:
            raise Nested
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            yield obj
            children = list(obj.values())
        elif isinstance(obj, pikepdf.Array):
            children = list(obj)
        else:
            return
        for child in children:  # objects of their own are visited from pdf.objects
            if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect:
                yield from visit(child, depth + 1)

    return [found for obj in pdf.objects for found in visit(obj, 0)]
