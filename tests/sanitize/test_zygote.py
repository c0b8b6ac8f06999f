"""The warm sandbox (intake/server/sanitize/zygote.py): children forked from one
process per worker, each with the same limits, session, descriptors and
network namespace as a child started from scratch."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import MemorySpool

from intake.server.sanitize import Limits, runner
from intake.server.sanitize.zygote import ForkedChild


def _wait_for(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _gone(pid: int) -> bool:
    return _status(pid).get("State", "Z").startswith("Z")  # exited; a zombie is gone too


def _address_space_limit(pid: int) -> str | None:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            return line.split()[3]
    return None


def test_a_waiting_child_is_forked_and_sandboxed_before_it_reads(sandbox):
    limits = Limits(memory=512 * 1024 * 1024)
    child = sandbox.spawn(["1000", *limits.to_argv()])
    try:
        assert isinstance(child, ForkedChild)
        zygote = sandbox._process.pid
        assert _status(child.pid)["PPid"].strip() == str(zygote)
        # Limits first, then it waits on stdin with nothing else open.
        _wait_for(lambda: _address_space_limit(child.pid) == str(512 * 1024 * 1024))
        # Confining itself opens and closes a descriptor or two (Landlock's
        # ruleset, libseccomp): it must end holding none but its three.
        _wait_for(lambda: sorted(os.listdir(f"/proc/{child.pid}/fd")) == ["0", "1", "2"])
        # Not the worker's log: what a library prints about a file may quote it.
        assert os.readlink(f"/proc/{child.pid}/fd/2") == os.devnull
        assert os.getsid(child.pid) == child.pid  # its own session: killed as a group
        if runner.network_isolated():
            assert os.readlink(f"/proc/{child.pid}/ns/net") != os.readlink("/proc/self/ns/net")
    finally:
        child.kill()
    assert child.returncode == -signal.SIGKILL
    _wait_for(lambda: not _status(child.pid))  # reaped by the zygote, not left a zombie
    child.stdin.close()
    child.stdout.close()


def test_letting_go_of_a_job_kills_its_child(sandbox):
    child = sandbox.spawn(["1000", *Limits().to_argv()])
    child._job.close()  # a worker thread that died without waiting
    _wait_for(lambda: _gone(child.pid))
    child.stdin.close()
    child.stdout.close()


def test_a_dead_zygote_is_replaced(corpus, sanitized, sandbox):
    result, _ = sanitized(corpus.png())
    assert result.ok
    first = sandbox._process.pid
    os.kill(first, signal.SIGKILL)
    _wait_for(lambda: sandbox._process.poll() is not None)
    result, _ = sanitized(corpus.png())
    assert result.ok and sandbox._process.pid != first


def test_starting_ahead_starts_one_zygote_which_the_next_upload_uses(corpus):
    from intake.server.sanitize import sanitize
    from intake.server.sanitize.runner import warm_sandbox

    handle = warm_sandbox()
    try:
        handle.start()
        first = handle._process
        assert first is not None and first.poll() is None
        handle.start()  # already running: the same one
        assert handle._process is first
        spool = MemorySpool(corpus.png().read_bytes())
        result = sanitize(spool, MemorySpool, sandbox=handle)
        result.close()
        assert result.ok and handle._process is first
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        handle.start()  # a dead one is replaced
        assert handle._process is not first and handle._process.poll() is None
    finally:
        handle.stop()


def test_without_a_zygote_each_child_starts_from_scratch(corpus, sanitized, monkeypatch,
                                                        sandbox):
    def no_zygote(argv):
        raise OSError("no zygote here")

    monkeypatch.setattr(sandbox, "spawn", no_zygote)
    started = []
    popen = subprocess.Popen

    def counting(*args, **kwargs):
        started.append(args[0])
        return popen(*args, **kwargs)

    monkeypatch.setattr(runner.subprocess, "Popen", counting)
    result, _ = sanitized(corpus.jpeg("scratch.jpg"))
    assert result.ok and result.removed
    assert [c for c in started if "intake.server.sanitize.child" in c]


@pytest.mark.parametrize("how", ["exits", "is killed"])
def test_the_zygote_ends_with_its_worker(tmp_path, how):
    """A worker that exits, even by SIGKILL, closes the zygote's socket."""
    picture = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(picture)
    script = (
        "import sys, time\n"
        "from intake.server.sanitize import runner, sanitize\n"
        "from support import MemorySpool\n"
        "from pathlib import Path\n"
        "sandbox = runner.warm_sandbox()\n"
        f"spool = MemorySpool(Path({str(picture)!r}).read_bytes())\n"
        "assert sanitize(spool, MemorySpool, sandbox=sandbox).ok\n"
        "print(sandbox._process.pid, flush=True)\n"
        "time.sleep(60)\n")
    tests = str(Path(__file__).resolve().parents[1])  # for support.MemorySpool
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": tests})
    try:
        zygote = int(worker.stdout.readline())
        assert not _gone(zygote)
        if how == "exits":
            worker.terminate()
        else:
            worker.kill()
        worker.wait(timeout=10)
        _wait_for(lambda: _gone(zygote))
    finally:
        worker.kill()
        worker.wait()
        worker.stdout.close()


def _blocked_child(sandbox) -> ForkedChild:
    """A child waiting for an upload that does not come."""
    child = sandbox.spawn(["1000", *Limits().to_argv()])
    _wait_for(lambda: _address_space_limit(child.pid) == str(Limits().memory))
    return child


def _close(child: ForkedChild) -> None:
    child.kill()
    child.stdin.close()
    child.stdout.close()


@pytest.mark.skipif(not runner.network_isolated(), reason="no user namespaces here")
def test_each_child_has_a_user_namespace_of_its_own(sandbox):
    """Children of one zygote would otherwise share its namespace, holding
    every capability in it: one taken over by a hostile file could read a
    sibling's upload from /proc/PID/mem."""
    first, second = _blocked_child(sandbox), _blocked_child(sandbox)
    try:
        spaces = {os.readlink(f"/proc/{pid}/ns/user")
                  for pid in (first.pid, second.pid, sandbox._process.pid)}
        assert len(spaces) == 3
    finally:
        _close(first)
        _close(second)


def test_children_die_with_a_killed_zygote(sandbox):
    child = _blocked_child(sandbox)
    os.kill(sandbox._process.pid, signal.SIGKILL)
    _wait_for(lambda: _gone(child.pid))
    child.kill()
    assert child.returncode == -signal.SIGKILL
    child.stdin.close()
    child.stdout.close()


def test_an_exit_and_a_kill_request_in_the_same_round_leave_the_zygote_running(sandbox):
    """A child that ends just as the worker asks to kill it: the zygote sees
    both at once, and must answer the one without tripping on the other."""
    ending, bystander = _blocked_child(sandbox), _blocked_child(sandbox)
    zygote = sandbox._process.pid
    os.kill(zygote, signal.SIGSTOP)
    try:
        ending.stdin.close()  # the upload stops short: the child answers and exits
        _wait_for(lambda: _status(ending.pid).get("State", "").startswith("Z"))
        ending._job.send(b"kill")
    finally:
        os.kill(zygote, signal.SIGCONT)
    assert ending.wait(10) == 0
    time.sleep(0.2)
    assert not _gone(zygote) and not _gone(bystander.pid)
    _close(bystander)
    ending.stdout.close()


def test_a_stuck_zygote_is_replaced_and_the_upload_still_cleaned(corpus, sanitized,
                                                                 monkeypatch, sandbox):
    from intake.server.sanitize import zygote as zygote_module

    result, _ = sanitized(corpus.png())
    assert result.ok
    stuck = sandbox._process.pid
    monkeypatch.setattr(zygote_module, "SPAWN_SECONDS", 0.5)
    os.kill(stuck, signal.SIGSTOP)
    try:
        result, _ = sanitized(corpus.png())  # started from scratch meanwhile
        assert result.ok
        # The replacement starts cold (Python and the parsers' imports): under
        # load that takes longer than the short deadline set for the stuck one.
        monkeypatch.undo()
        result, _ = sanitized(corpus.png())
        assert result.ok
        assert sandbox._process is not None and sandbox._process.pid != stuck
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck, signal.SIGCONT)
    # Slow, not dead, so not killed: retired, it ends once it runs again.
    _wait_for(lambda: _gone(stuck))


def test_a_worker_with_many_descriptors_still_cleans(corpus, sanitized):
    """select() cannot watch a descriptor past 1024; a busy worker has them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("this machine allows too few descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        result, _ = sanitized(corpus.png())
        assert result.ok
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_job_the_zygote_cannot_start_fails_at_once_and_spares_the_others(monkeypatch,
                                                                           sandbox):
    """The zygote gives up on a job (here: a message it cannot read) by
    closing the job's socket: the worker hears it at once, and neither the
    zygote nor another upload in flight pays for it."""
    from intake.server.sanitize import zygote as zygote_module

    bystander = _blocked_child(sandbox)
    zygote = sandbox._process.pid
    monkeypatch.setattr(zygote_module.json, "dumps", lambda value: "not a job")
    started = time.monotonic()
    with pytest.raises(OSError):
        sandbox.spawn(["1000", *Limits().to_argv()])
    assert time.monotonic() - started < zygote_module.SPAWN_SECONDS / 2
    monkeypatch.undo()
    assert sandbox._process.pid == zygote and not _gone(zygote)
    assert not _gone(bystander.pid)
    _close(bystander)
