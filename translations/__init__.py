"""The message catalogs, installed with the package as intake.translations
(docs/translating.md)."""
