from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    MultipleFileField,
    RadioField,
    SelectChoice,
    StringField,
    TextAreaField,
)

# Separate file fields, all named "files": some phone pickers hand back one
# file per field, whatever `multiple` says.
FILE_FIELDS = 5
# The word lists a new witness may choose (intake.server.codename.LISTS), in
# the order offered.
ALPHABETS = ("uk", "ru", "en")
# The list offered first on a page in each language. Belarusian pages offer
# the Russian list: there is no Belarusian list, nearly every Belarusian
# reader reads Russian every day, and it shares ы, э, ё with Belarusian, which
# Ukrainian lacks.
DEFAULT_ALPHABET = {"uk": "uk", "ru": "ru", "be": "ru", "en": "en"}
NO_AUTOFILL = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"}


def _alphabet_choices():
    return [SelectChoice("uk", _l("Ukrainian words")), SelectChoice("ru", _l("Russian words")),
            SelectChoice("en", _l("English words (Latin letters)"))]


class SubmitForm(FlaskForm):
    testimony = TextAreaField(_l("What do you want to tell us?"),
                              render_kw={"autocomplete": "off"})
    files = MultipleFileField(_l("Files (photos, videos, documents)"))
    keep_original = BooleanField(_l("Also keep my files exactly as they are, as evidence"),
                                 default=False)
    # No default: a form sent without a choice gets the page's (receive_form).
    alphabet = RadioField(_l("The words of your codename"), choices=_alphabet_choices())


class FollowUpForm(FlaskForm):
    testimony = TextAreaField(_l("Add to what you told us"),
                              render_kw={"autocomplete": "off"})
    files = MultipleFileField(_l("More files"))
    keep_original = BooleanField(_l("Also keep my files exactly as they are, as evidence"),
                                 default=False)


class CodenameForm(FlaskForm):
    # A plain text field, so the witness sees what they type (no JavaScript
    # needed to show it); the browser is asked not to remember or correct it.
    codename = StringField(_l("Your codename"), render_kw=NO_AUTOFILL)
