from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, MultipleFileField, PasswordField, TextAreaField


class SubmitForm(FlaskForm):
    testimony = TextAreaField(_l("What do you want to tell us?"))
    files = MultipleFileField(_l("Files (photos, videos, documents)"))
    keep_original = BooleanField(_l("Also keep my files exactly as they are, as evidence"),
                                 default=False)


class FollowUpForm(FlaskForm):
    testimony = TextAreaField(_l("Add to what you told us"))
    files = MultipleFileField(_l("More files"))
    keep_original = BooleanField(_l("Also keep my files exactly as they are, as evidence"),
                                 default=False)


class CodenameForm(FlaskForm):
    # A password field: the browser neither shows nor remembers it by default.
    codename = PasswordField(_l("Your codename"), render_kw={"autocomplete": "off",
                                                             "spellcheck": "false",
                                                             "autocapitalize": "none"})
