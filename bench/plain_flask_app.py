"""The baseline: a plain Flask app that saves an upload unencrypted.

Werkzeug spools the upload its default way (a temporary file past 500 KB) and
`save` copies it to its place. It runs under intake.server's gunicorn
settings (limits, timeouts), but on gunicorn's own threaded worker
(gthread), as a plain Flask app is deployed: Intake's front holds the body
to limits it learns from Intake's app. Nor does its worker run Intake's own
start-up hook (post_fork: the garbage collector's freeze and the allocator
setting of intake/allocator.py), which a plain app does not have; the
allocator setting alone makes this app's save of 1 GiB about 1.7 times as
fast (bench/RESULTS.md).

    python bench/plain_flask_app.py --upload-dir DIR --port PORT
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flask import Flask, request

from intake.server.gunicorn import GunicornServer


def create_app(upload_dir: Path) -> Flask:
    app = Flask("plain_flask_app")

    @app.post("/upload")
    def upload():
        storage = request.files["f"]
        target = upload_dir / "upload.bin"
        storage.save(target)
        return f"saved {target.stat().st_size} bytes\n"

    return app


def _plain_worker(server, worker) -> None:
    """gunicorn's own post_fork: nothing."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upload-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    upload_dir = args.upload_dir.resolve()
    GunicornServer(lambda: create_app(upload_dir), f"{args.host}:{args.port}",
                   workers=1, worker_class="gthread", post_fork=_plain_worker).run()


if __name__ == "__main__":
    main()
