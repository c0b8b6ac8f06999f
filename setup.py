"""The project is described in pyproject.toml; this file only adds one build
step: the message catalogs are compiled (.po -> .mo) whenever the package is
built or installed, so no compiled catalog is committed, and what runs is
always what the .po files say, whatever Babel version compiles them."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TRANSLATIONS = Path(__file__).resolve().parent / "translations"


class BuildWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        # An editable install runs from the checkout: its catalogs are compiled
        # in place (ignored by git); a wheel carries them in its build folder.
        target = TRANSLATIONS if self.editable_mode else \
            Path(self.build_lib) / "intake" / "translations"
        for po in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
            mo = target / po.relative_to(TRANSLATIONS).with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parts[-3])
            with mo.open("wb") as f:
                write_mo(f, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildWithCatalogs})
