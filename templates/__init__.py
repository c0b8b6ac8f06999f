"""The pages (Jinja templates) and their static files, installed with the
package as intake.templates. Every string goes through gettext."""
