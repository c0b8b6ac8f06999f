"""Files sent ahead in pieces, resumable: tus 1.0 under /uploads/.

The core protocol (HEAD for the offset, PATCH with Upload-Offset) and the
creation, expiration and termination extensions; no deferred length, no
checksum (every piece is authenticated by its own encryption). The page's
own script (templates/static/uploads.js) is the client; the form then
names the finished uploads (`upload` fields) and they are joined into the
submission (intake.server.resumable). Without JavaScript none of this is
used: the form sends its files as it always did.

A PATCH body is fed, as it arrives, by the server's front to a PieceSink
made before the body is read (intake.server.front.BodySink); under any other
WSGI server the view reads it from the request stream the same way.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from flask import Blueprint, Response, current_app, request
from flask_babel import gettext as _
from flask_wtf.csrf import validate_csrf
from werkzeug.http import http_date, parse_options_header
from wtforms import ValidationError

from intake.pages.sizes import human_size
from intake.server import quota
from intake.server.filenames import BadFilename, check_upload_name
from intake.server.front import BODY, BodySink
from intake.server.receive import Upload
from intake.server.resumable import (
    Crowded,
    Gone,
    Locked,
    NoRoom,
    NotFound,
    Partial,
    Partials,
    PieceWriter,
    TooLarge,
    UploadRefused,
    session_secret,
)
from intake.server.upload_spool import UploadSpool
from intake.server.web.errors import IntakeError

bp = Blueprint("uploads", __name__, url_prefix="/uploads")
PARTIALS = "intake.partials"  # app.extensions key
TUS_VERSION = "1.0.0"
FIELD = "upload"  # the form's field naming a finished upload
READ = 256 * 1024
# Uploads one session may have open (created, not yet sent with a form, not
# expired), as a multiple of max_files: room for a full form sent again a
# few times after a failure, not for a flood of folders.
OPEN_PER_SESSION = 4
# Uploads all sessions together may have open: a new cookie for each
# declaration escapes the cap above, and declaring costs nothing. Bounds the
# folders on disk, and the scan of them each creation makes.
OPEN_AT_ALL = 10_000


class Forbidden(UploadRefused):
    status, reason = 403, "forbidden"


class BadVersion(UploadRefused):
    status, reason = 412, "version"


class BadType(UploadRefused):
    status, reason = 415, "type"


class Busy(UploadRefused):
    status, reason = 503, "busy"


class TooMany(UploadRefused):
    status, reason = 403, "too_many"


def open_limit(config) -> int:
    return OPEN_PER_SESSION * config.max_files


def _number(text: str | None) -> int:
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 19:
        raise UploadRefused()
    return int(text)


class PieceSink(BodySink):
    """One PATCH body on its way into a piece; the lock is held until it ends."""

    def __init__(self, partial: Partial | None = None, writer: PieceWriter | None = None,
                 refused: UploadRefused | None = None):
        self.partial, self.writer, self.refused = partial, writer, refused
        self.offset: int | None = None
        self.failed: BaseException | None = None

    def write(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def done(self) -> None:
        assert self.writer is not None and self.partial is not None
        try:
            self.offset = self.writer.done()
        except OSError as exc:  # the disk filled: this piece is not kept
            self.failed = exc
            self.writer.drop()
        finally:
            self.partial.unlock()

    broken = done  # what arrived before the break is kept: the client resumes after it


def open_piece(partials: Partials, form_key: bytes, environ: dict) -> PieceSink | None:
    """The sink for a PATCH to /uploads/<id>, checked before its body is read;
    None for any other request."""
    path = environ.get("PATH_INFO", "")
    if environ.get("REQUEST_METHOD") != "PATCH" or not path.startswith("/uploads/"):
        return None
    try:
        if environ.get("HTTP_TUS_RESUMABLE") != TUS_VERSION:
            raise BadVersion()
        if parse_options_header(environ.get("CONTENT_TYPE", ""))[0] != \
                "application/offset+octet-stream":
            raise BadType()
        offset = _number(environ.get("HTTP_UPLOAD_OFFSET"))
        length = _number(environ.get("CONTENT_LENGTH"))
        partial = partials.open(session_secret(form_key, environ.get("HTTP_COOKIE", "")),
                                path[len("/uploads/"):])
        partial.lock()
        try:
            writer = partial.append(offset, length)
        except BaseException:
            partial.unlock()
            raise
        return PieceSink(partial, writer)
    except UploadRefused as exc:
        return PieceSink(refused=exc)


# -- the views -------------------------------------------------------------------

def _partials() -> Partials:
    return current_app.extensions[PARTIALS]


def _secret() -> bytes | None:
    return session_secret(current_app.secret_key, request.headers.get("Cookie", ""))


def _message(exc: UploadRefused) -> str:
    if isinstance(exc, TooLarge):
        return _("This file is larger than this service accepts (%(size)s).",
                 size=human_size(current_app.extensions["intake"].config.max_upload))
    if isinstance(exc, NotFound | Gone):
        return _("This file waited too long on the server, or was sent from another "
                 "window. Choose it again and send the form.")
    if isinstance(exc, Locked):
        return _("This file is being sent from another window. Wait until it has "
                 "arrived there.")
    if isinstance(exc, Crowded):
        return _("This service is receiving a lot at the moment. Nothing was kept. "
                 "Please try again in a few minutes.")
    if exc.status in (503, 507):
        return _("This service has received as much as it can keep today. Nothing "
                 "was kept. Please try again tomorrow, or later today.")
    if isinstance(exc, TooMany):
        return _("Too many files sent from this browser are waiting on the server "
                 "(at most %(n)d). Close the browser, open the form again and send it "
                 "from there.", n=open_limit(current_app.extensions["intake"].config))
    if isinstance(exc, Forbidden):
        return _("This form was open too long, or came from another page. Open the "
                 "form again and send it from there. Nothing was kept.")
    if exc.reason == "name":
        return _("A file name cannot be used here. Rename the file and send it again.")
    return _("What was sent could not be read. Open the form again and send it from "
             "there. Nothing was kept.")


def _answer(status: int, headers: dict[str, str] | None = None, text: str = "") -> Response:
    response = Response(text, status=status, mimetype="text/plain")
    response.headers["Tus-Resumable"] = TUS_VERSION
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _refused(exc: UploadRefused) -> Response:
    extra = {"Tus-Version": TUS_VERSION} if isinstance(exc, BadVersion) else {}
    return _answer(exc.status, extra, _message(exc))


@bp.errorhandler(UploadRefused)
def _on_refused(exc: UploadRefused):
    return _refused(exc)


@bp.before_request
def _version():
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise BadVersion()


def _expires(partial: Partial) -> str:
    return http_date(partial.expires)


@bp.route("/", methods=["OPTIONS"])
def options():
    config = current_app.extensions["intake"].config
    return _answer(204, {"Tus-Version": TUS_VERSION,
                         "Tus-Extension": "creation,expiration,termination",
                         "Tus-Max-Size": str(config.max_upload)})


def _filename(metadata: str) -> str:
    """The `filename` of tus's Upload-Metadata (key, space, base64), checked."""
    for pair in metadata.split(","):
        key, _sep, value = pair.strip().partition(" ")
        if key != "filename":
            continue
        try:
            name = base64.b64decode(value, validate=True).decode("utf-8")
            return check_upload_name(name)
        except (binascii.Error, UnicodeDecodeError, BadFilename) as exc:
            raise UploadRefused("name") from exc
    raise UploadRefused("name")


@bp.post("/")
def create():
    """Creation: a file's length and name; the answer is its address."""
    try:
        validate_csrf(request.headers.get("X-CSRFToken", ""))
    except ValidationError as exc:
        raise Forbidden() from exc
    secret = _secret()
    if secret is None:
        raise Forbidden()
    if "Upload-Defer-Length" in request.headers:
        raise UploadRefused()
    length = _number(request.headers.get("Upload-Length"))
    name = _filename(request.headers.get("Upload-Metadata", ""))
    intake, partials = current_app.extensions["intake"], _partials()
    if length > intake.config.max_upload:
        raise TooLarge()
    with partials.creating():  # the caps hold under a burst of creations
        mine, everyone = partials.count(secret)
        if mine >= open_limit(intake.config):
            raise TooMany()
        if everyone >= OPEN_AT_ALL:
            raise Crowded()
        if quota.refusal(intake, length + partials.held()):
            raise Busy()
        partial = partials.create(secret, length, name)
    return _answer(201, {"Location": f"/uploads/{partial.id}",
                         "Upload-Expires": _expires(partial)})


@bp.route("/<upload_id>", methods=["HEAD"])
def offset(upload_id: str):
    partial = _partials().open(_secret(), upload_id)
    # A piece still arriving (or a broken one being closed) would change the
    # offset: the client is told to wait, not given one that is about to grow.
    partial.lock()
    partial.unlock()
    _keep_alive()
    return _answer(200, {"Upload-Offset": str(partial.offset),
                         "Upload-Length": str(partial.length),
                         "Upload-Expires": _expires(partial)})


@bp.route("/<upload_id>", methods=["PATCH"])
def patch(upload_id: str):
    sink = request.environ.get(BODY)
    if sink is None:  # not under the front: the body is read here, the same way
        sink = open_piece(_partials(), current_app.secret_key, request.environ)
        assert sink is not None
        if sink.refused is None:
            try:
                while data := request.stream.read(READ):
                    sink.write(data)
            except BaseException:
                sink.broken()
                raise
            sink.done()
    if sink.refused is not None:
        return _refused(sink.refused)
    if sink.failed is not None or sink.offset is None:
        return _refused(NoRoom() if sink.failed else UploadRefused())
    _keep_alive()
    return _answer(204, {"Upload-Offset": str(sink.offset),
                         "Upload-Expires": _expires(sink.partial)})


@bp.route("/<upload_id>", methods=["DELETE"])
def terminate(upload_id: str):
    partial = _partials().open(_secret(), upload_id)
    partial.lock()
    try:
        partial.remove()
    finally:
        partial.unlock()
    return _answer(204)


def _keep_alive() -> None:
    # A returning witness sending files is active: their session must not end
    # while the pieces arrive (intake.server.witness.returning).
    from intake.server.witness.returning import keep_alive

    keep_alive()


# -- joining the finished uploads into the submission -----------------------------

@dataclass
class Joined:
    """The finished uploads a form names, each read into an UploadSpool (the
    envelope for the team's keys) and locked until the submission ends."""

    uploads: list[Upload] = field(default_factory=list)
    partials: list[Partial] = field(default_factory=list)

    def received(self) -> None:
        """The submission is committed: the pieces are no longer needed."""
        for partial in self.partials:
            partial.remove()

    def release(self) -> None:
        for partial in self.partials:
            partial.unlock()


def _form_files_size() -> int:
    """Bytes of the files the form itself carried (sealed as they arrived)."""
    return sum(storage.stream.size for storage in request.files.getlist("files")
               if isinstance(storage.stream, UploadSpool))


def _too_large() -> IntakeError:
    limit = current_app.extensions["intake"].config.max_upload
    return IntakeError(_("What you sent is larger than this service accepts "
                         "(%(size)s in total). Send fewer or smaller files, in "
                         "several submissions. Nothing was kept.", size=human_size(limit)))


def joined_uploads() -> Joined:
    """The finished uploads the form names. The files of one submission, those
    the form carried and those sent ahead together, are held to `max_upload`:
    past it the submission is refused and the uploads wait, untouched, for a
    smaller form."""
    ids = request.form.getlist(FIELD)
    joined = Joined()
    if not ids:
        return joined
    intake, partials = current_app.extensions["intake"], _partials()
    if len(ids) > intake.config.max_files or len(set(ids)) != len(ids):
        raise IntakeError(_("Too many files at once (at most %(n)d). Send the rest in "
                            "another submission.", n=intake.config.max_files))
    secret, total = _secret(), _form_files_size()
    try:
        for upload_id in ids:
            try:
                partial = partials.open(secret, upload_id)
                partial.lock()
            except (NotFound, Gone) as exc:
                raise IntakeError(_message(exc)) from exc
            except Locked as exc:
                raise IntakeError(_("A file is still arriving. Keep this page open "
                                    "until it has arrived, then send the form.")) from exc
            joined.partials.append(partial)
            if partial.offset != partial.length:
                raise IntakeError(_("A file is still arriving. Keep this page open "
                                    "until it has arrived, then send the form."))
            total += partial.length
            if total > intake.config.max_upload:
                raise _too_large()
        for partial in joined.partials:  # only once the total is known to fit
            name = check_upload_name(partial.name)
            spool = UploadSpool(intake.store, intake.recipients)
            joined.uploads.append(Upload(name, spool))
            for piece in partial.content():
                spool.write(piece)
    except BaseException:
        for up in joined.uploads:
            up.spool.close()
        joined.release()
        raise
    return joined
