from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import MultipleFileField, TextAreaField


class SubmitForm(FlaskForm):
    testimony = TextAreaField(_l("What do you want to tell us?"))
    files = MultipleFileField(_l("Files (photos, videos, documents)"))
