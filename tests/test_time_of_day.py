"""No time of day on disk: after submissions and the hourly pass (`intake
retention tidy`), nothing under the data folder, no file's or folder's atime,
mtime, ctime or birth time, no stored date, no log line, tells when anything
happened that day. Real server, real files, statx through stat(1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from live import LiveServer, is_receipt, multipart_body
from sqlalchemy import create_engine, inspect, select, text

DAY = 86400


def _tidy(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "intake", "retention", "tidy"], env=env, check=True,
                   capture_output=True)


def snapshot(root: Path) -> dict[Path, os.stat_result]:
    """Every path's lstat, each folder's taken before it is listed (listing a
    folder would stamp its atime)."""
    out = {root: os.lstat(root)}
    for entry in os.scandir(root):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            out.update(snapshot(path))
        else:
            out[path] = os.lstat(path)
    return out


def birth_times(paths: list[Path]) -> dict[Path, int]:
    result = subprocess.run(["stat", "-c", "%W", *map(str, paths)], capture_output=True,
                            text=True, check=True)
    return dict(zip(paths, map(int, result.stdout.split()), strict=True))


def _past_second() -> int:
    """Waits for the next whole second and returns it: what happens from
    here on is stamped with it or later."""
    start = int(time.time()) + 1
    time.sleep(start - time.time() + 0.05)
    return start


def test_after_the_pass_nothing_tells_the_time_of_a_submission(tmp_path, team_key):
    data = tmp_path / "live-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update({"INTAKE_DATA_DIR": str(data), "INTAKE_KEYS_DIR": str(team_key.keys_dir)})
    data.mkdir(mode=0o700)
    _tidy(env)  # as install.sh does before the first start: the pool is there
    server = LiveServer(tmp_path, team_key.keys_dir)
    try:
        first = _past_second()
        assert is_receipt(server.submit("testimony", [("photo.bin", os.urandom(300_000))]))
        # The form without a file chosen: the browser sends an empty file field.
        assert is_receipt(server.submit("text only", [("", b"")]))
        # A refused attempt, whose spool is dropped.
        token, cookie = server.form()
        body = multipart_body([("csrf_token", "forged")], [("x.bin", b"x" * 5000)])
        with server.connect() as sock:
            sock.sendall(server.submission_head(len(body), cookie) + body)
            sock.recv(65536)
        assert token
    finally:
        server.stop()
    before_pass = _past_second()
    _tidy(env)

    stats = snapshot(data)
    assert any(p.suffix == ".env" for p in stats) and (data / "server-secrets.json") in stats
    births = birth_times(sorted(stats))
    for path, st in stats.items():
        name = path.relative_to(tmp_path)
        assert st.st_mtime % DAY == 0 and st.st_atime % DAY == 0, (name, st)
        assert st.st_ctime >= before_pass, name  # every change time is the pass's
        born = births[path]
        if born:  # 0: the filesystem does not keep birth times
            assert born < first or born >= before_pass, name

    # Every stored date is a day, and the tables hold no other kind of time.
    engine = create_engine(f"sqlite:///{data / 'intake.db'}")
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                for value in row:
                    if isinstance(value, str):
                        assert not re.search(r"\d\d:\d\d:\d\d", value), (table, value)
        assert conn.execute(select(text("count(*)")).select_from(text("items"))).scalar() == 3
    engine.dispose()
    # The server's log names no time of day.
    assert not re.search(r"\d\d:\d\d:\d\d", server.log.read_text())
