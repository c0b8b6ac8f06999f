"""Two Intake servers behind Onionbalance, on the private Tor network.

Two app servers (`intake serve`), started at once on a fresh PostgreSQL
database, share it and one data folder; each has its own tor running the
shipped torrc as an Onionbalance instance, so each publishes its own witness
onion. Onionbalance 0.2.4 drives a
third tor (deploy/onionbalance/torrc) and publishes the front address with the
shipped example config. Witnesses submit through the front address, a few at
once; in the middle of the run one app server and its tor are killed. Every
acknowledged submission must be exported exactly once (two exports at once
while submissions still arrive, and one after), the front address must keep working after
Onionbalance's next publication, and the test prints what it counted.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from deploy_support import DEPLOY, ServerProcess, render_torrc, server_env
from private_tor import ONIONBALANCE_TESTNET, Node, PrivateTorNetwork
from support import PASSPHRASE, free_port

from intake.server.doctor import PROBLEM, check_torrc_text

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
NETWORK_DEADLINE = 300  # seconds for the network, the instances and the front to answer
# Seconds for every submission of the run. After the loss a tor client may keep
# trying the lost server's introduction points, and mark the survivor's as
# failed on the way, for a few minutes (the failures it remembers expire).
RUN_DEADLINE = 600
SUBMISSIONS = 40  # in the run, a few witnesses at once
WITNESSES = 3
KILL_AT = 15  # acknowledged submissions before a host is lost
AFTER_PUBLICATION = 5  # more submissions once Onionbalance has published again
# A witness's client gives up connecting after 30 s (the rendezvous included)
# and waiting for a page after 60 s, then tries again.
TIMEOUT = (30, 60)
INSTANCE_LINE = "#HiddenServiceOnionbalanceInstance 1"
ONIONBALANCE = str(Path(sys.executable).with_name("onionbalance"))
ONIONBALANCE_CONFIG = str(Path(sys.executable).with_name("onionbalance-config"))
# Onionbalance's log line for each front descriptor it hands to tor, with its
# local time (logging's asctime).
UPLOAD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \[INFO\]: "
                    r"Uploading (?:first|second) descriptor for ", re.M)


class Relay:
    """Stands between a host's tor and its app. It counts the connections that
    host's onion service hands on (which host served the witnesses) and, once
    armed, calls back when a submission starts to arrive, so that the host can
    be lost in the middle of one."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.connections = 0
        self.on_submission: Callable[[Relay], None] | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, socket.create_connection(("127.0.0.1", self.target),
                                                timeout=10) as upstream:
                back = threading.Thread(target=self._copy, args=(upstream, conn),
                                        daemon=True)
                back.start()
                self._copy(conn, upstream, witness_side=True)
                back.join(150)
        except OSError:
            pass

    def _copy(self, src: socket.socket, dst: socket.socket, witness_side=False) -> None:
        src.settimeout(150)
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if witness_side and data.startswith(b"POST "):
                    with self._lock:
                        trip, self.on_submission = self.on_submission, None
                    if trip is not None:
                        trip(self)  # the first bytes of a submission are with the app
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()


@dataclass
class Host:
    """One app server: its `intake serve`, the relay in front of it, its tor."""

    name: str
    app: ServerProcess
    relay: Relay
    tor: Node | None = None
    onions: Path | None = None

    @property
    def onion(self) -> str:
        return (self.onions / "intake-witness" / "hostname").read_text().strip()

    def lose(self, network: PrivateTorNetwork) -> None:
        """The host is gone: its app and its tor end at once, nothing said to anyone."""
        os.killpg(self.app.process.pid, signal.SIGKILL)
        self.app.process.wait(10)
        network.kill_node(self.tor)


class Loss:
    """Loses the first host whose relay calls, and only that one."""

    def __init__(self, hosts: list[Host], network: PrivateTorNetwork):
        self.hosts, self.network = hosts, network
        self.host: Host | None = None
        self.at = self.at_epoch = 0.0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def lose(self, relay: Relay) -> None:
        with self._lock:
            if self.host is not None:
                return
            for host in self.hosts:
                host.relay.on_submission = None
            self.host = next(h for h in self.hosts if h.relay is relay)
            self.host.lose(self.network)
            self.at, self.at_epoch = time.monotonic(), time.time()
        self.done.set()


@dataclass
class Attempt:
    number: int  # the submission's: a witness tries again after a failure
    text: str
    started: float
    ended: float = 0.0
    acknowledged: bool = False
    error: str = ""


@dataclass
class Run:
    """Every submission attempt, shared by the witnesses' threads."""

    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def acknowledged(self) -> list[Attempt]:
        with self.lock:
            return [a for a in self.attempts if a.acknowledged]


def until(what: str, attempt, deadline: float):
    last = None
    while time.monotonic() < deadline:
        try:
            result = attempt()
            if result:
                return result
        except (requests.RequestException, OSError) as exc:
            last = exc
        time.sleep(1)
    raise TimeoutError(f"{what}: not done in time (last error: {last})")


def witness_session(socks_port: int) -> requests.Session:
    """A witness of their own: tor isolates streams by SOCKS credentials, so each
    gets its own circuits, and its own introduction point, to the front address."""
    s = requests.Session()
    name = secrets.token_hex(8)
    s.proxies.update({"http": f"socks5h://{name}:x@127.0.0.1:{socks_port}"})
    s.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101"
    return s


def submit_once(run: Run, socks_port: int, front: str, number: int, deadline: float) -> None:
    """One witness's submission, tried again (as a new text) until a receipt comes."""
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        attempt = Attempt(number, f"Testimony {number}.{tries}: {secrets.token_hex(8)}",
                          time.monotonic())
        with run.lock:
            run.attempts.append(attempt)
        try:
            with witness_session(socks_port) as s:
                form = s.get(f"http://{front}/", timeout=TIMEOUT)
                form.raise_for_status()
                token = CSRF.search(form.text).group(1)
                receipt = s.post(f"http://{front}/submit", timeout=TIMEOUT,
                                 data={"csrf_token": token, "testimony": attempt.text})
            attempt.acknowledged = (receipt.status_code == 200
                                    and 'id="codename"' in receipt.text)
            attempt.error = "" if attempt.acknowledged else f"HTTP {receipt.status_code}"
        except (requests.RequestException, AttributeError) as exc:
            attempt.error = type(exc).__name__
        attempt.ended = time.monotonic()
        if attempt.acknowledged:
            run.acked.release()
            return
        time.sleep(0.5)
    raise TimeoutError(f"submission {number} got no receipt in time")


def make_host(name: str, root: Path, shared_data: Path, keys_dir: Path,
              database_url: str) -> Host:
    port = free_port()
    env = server_env(root, keys_dir)
    # The two servers share the data folder (store, server secrets) and the database.
    env.update(INTAKE_DATA_DIR=str(shared_data), INTAKE_DATABASE_URL=database_url)
    app = ServerProcess([sys.executable, "-m", "intake", "serve", "--host", "127.0.0.1",
                         "--port", str(port), "--workers", "1"], env, port, root / "logs")
    return Host(name, app, Relay(port))


def instance_torrc(onions: Path, witness_port: int, staff_port: int, front: str) -> str:
    """The shipped torrc, its witness service made an Onionbalance instance of
    the front address (the line the torrc carries, uncommented)."""
    text = render_torrc(onions, witness_port, staff_port)
    assert INSTANCE_LINE in text
    witness = onions / "intake-witness"
    witness.mkdir(parents=True, mode=0o700)
    (witness / "ob_config").write_text(f"MasterOnionAddress {front}\n")
    return text.replace(INSTANCE_LINE, INSTANCE_LINE.lstrip("#"))


def front_torrc(node_dir: Path) -> str:
    """deploy/onionbalance/torrc with its control socket and cookie in the node's folder."""
    text = (DEPLOY / "onionbalance" / "torrc").read_text()
    text = text.replace("/run/tor/", f"{node_dir}/")
    return re.sub(r"^Log notice syslog$", "", text, flags=re.M)


def make_front_key(folder: Path) -> tuple[Path, str]:
    """The front address's key, made by onionbalance-config as an operator would."""
    subprocess.run([ONIONBALANCE_CONFIG, "--no-interactive", "--hs-version", "v3",
                    "-n", "2", "--output", str(folder)], check=True, capture_output=True,
                   timeout=60)
    (key,) = folder.glob("*.key")
    return key, f"{key.stem}.onion"


def write_onionbalance_config(folder: Path, key: Path, instances: list[str]) -> Path:
    """deploy/onionbalance/config.yaml with the front key and the instances filled in."""
    text = (DEPLOY / "onionbalance" / "config.yaml").read_text()
    text = text.replace("FRONT.key", key.name)
    for i, onion in enumerate(instances, start=1):
        text = text.replace(f"WITNESS{i}.onion", onion)
    assert not re.search(r"FRONT\.key|WITNESS\d\.onion", text)
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def without_service(attempts: list[Attempt], lost_at: float) -> str:
    """How long witnesses went without service after the loss: until the first
    receipt for a submission begun after it, and the longest wait of a witness
    whose attempt failed (from that attempt to their receipt)."""
    first = min((a.ended for a in attempts if a.acknowledged and a.started >= lost_at),
                default=float("nan"))
    waits = [max(b.ended for b in attempts if b.number == a.number and b.acknowledged)
             - a.started for a in attempts if not a.acknowledged]
    longest = f"{max(waits):.1f}s" if waits else "none failed"
    return (f"first receipt for a submission begun after the loss "
            f"{first - lost_at:.1f}s after it, longest wait of a witness caught by it: "
            f"{longest}")


def publishes_both(log: Path, instances: int) -> bool:
    """Onionbalance has handed tor a descriptor with every instance's
    introduction points."""
    text = log.read_text(errors="replace")
    counted = text.rfind(f"intros from {instances} instances")
    return counted >= 0 and UPLOAD.search(text, counted) is not None


def front_uploads(log: Path) -> list[float]:
    """When Onionbalance handed a front descriptor to tor (epoch seconds)."""
    text = log.read_text(errors="replace")
    return [dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for stamp in UPLOAD.findall(text)]


def export_and_decrypt(env: dict, team_key, out: Path) -> list[str]:
    """`intake queue export`, then `intake decrypt` as the workstation runs it:
    the testimonies the bundle holds."""
    bundle = out.with_suffix(".bundle")
    subprocess.run([sys.executable, "-m", "intake", "queue", "export", "--out", str(bundle)],
                   env=env, check=True, capture_output=True, timeout=120, cwd=env["HOME"])
    passphrase = out.parent / "passphrase"
    passphrase.write_bytes(PASSPHRASE)
    subprocess.run([sys.executable, "-m", "intake", "decrypt", str(bundle), "--key",
                    str(team_key.key_file), "--out", str(out), "--passphrase-file",
                    str(passphrase)], env=env, check=True, capture_output=True,
                   timeout=120, cwd=env["HOME"])
    return [p.read_text() for p in sorted(out.glob("*/testimony.txt"))]


def end_with_parent() -> None:
    """In the child: killed when the test process dies, even by SIGKILL (a hung
    Onionbalance ignores SIGTERM)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def verify(torrc: str, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "torrc").write_text(torrc)
    (tmp_path / "defaults").write_text("")
    return subprocess.run(["tor", "--defaults-torrc", str(tmp_path / "defaults"), "-f",
                           str(tmp_path / "torrc"), "--verify-config", "--DataDirectory",
                           str(tmp_path / "tordata")], capture_output=True, text=True,
                          timeout=60)


def test_shipped_onionbalance_files(tmp_path):
    """Tor accepts the front machine's torrc and an app server's torrc made an
    instance; doctor finds nothing wrong with the front's; the example config
    names a key and two instances to fill in."""
    front = front_torrc(tmp_path / "front")
    result = verify(front, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [f for f in check_torrc_text(front) if f.level == PROBLEM] == []
    instance = instance_torrc(tmp_path / "onions", 8080, 8081, "a" * 56 + ".onion")
    result = verify(instance, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HiddenServiceOnionbalanceInstance 1" in instance.splitlines()
    (tmp_path / "onions" / "intake-witness" / "ob_config").unlink()
    assert verify(instance, tmp_path).returncode != 0  # tor needs the front's address
    config = (DEPLOY / "onionbalance" / "config.yaml").read_text()
    assert re.search(r"key: FRONT\.key", config)
    assert re.findall(r"address: (\S+)", config) == ["WITNESS1.onion", "WITNESS2.onion"]


@pytest.mark.tor
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_servers_behind_onionbalance_lose_one(database_url, tmp_path, team_key, capsys):
    start = time.monotonic()
    timings: dict[str, float] = {}
    shared = tmp_path / "shared-data"  # what every app server mounts as its data folder
    shared.mkdir(mode=0o700)
    hosts = [make_host(f"host{i}", tmp_path / f"host{i}", shared, team_key.keys_dir,
                       database_url) for i in (1, 2)]
    # Onionbalance 0.2.4 spreads each descriptor over HSDIR_SPREAD_STORE (4)
    # HSDirs per replica and loops for ever when the ring holds no more than 4:
    # six relays, all HSDirs.
    network = PrivateTorNetwork(tmp_path / "tor", relays=3, voting=ONIONBALANCE_TESTNET)
    ob_dir = tmp_path / "onionbalance"
    ob_log = ob_dir / "onionbalance.log"
    onionbalance = None
    try:
        # Both at once on a fresh database: the schema is made under a lock.
        for host in hosts:
            host.app.launch()
        for host in hosts:
            host.app.wait_ready()
        key, front = make_front_key(ob_dir)
        network.configure()
        for host in hosts:
            host.onions = tmp_path / "tor" / f"{host.name}-onions"
            host.tor = network.add_node(host.name, instance_torrc(
                host.onions, host.relay.port, free_port(), front))
        front_tor = network.add_node("front", front_torrc(network.root / "front"))
        network.start()
        deadline = time.monotonic() + NETWORK_DEADLINE

        def instance_addresses():
            network.check_alive()
            return all((h.onions / "intake-witness" / "hostname").exists()
                       for h in hosts) and [h.onion for h in hosts]

        instances = until("the instances' onion keys", instance_addresses, deadline)
        config = write_onionbalance_config(ob_dir, key, instances)
        network.wait_for_log(front_tor, r"Bootstrapped 100%", NETWORK_DEADLINE)
        timings["front tor up"] = time.monotonic() - start
        with open(ob_log, "wb") as log:
            onionbalance = subprocess.Popen(
                [ONIONBALANCE, "--is-testnet", "-c", str(config), "-v", "info",
                 "-s", str(network.root / "front" / "control"),
                 # Should the socket fail, a port where nothing listens: no other tor.
                 "-p", str(free_port())],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=end_with_parent)
        network.wait_for_log(network.client, r"Bootstrapped 100%", NETWORK_DEADLINE)
        timings["client up"] = time.monotonic() - start

        def front_answers():
            if onionbalance.poll() is not None:
                raise RuntimeError(f"onionbalance exited:\n{ob_log.read_text()[-3000:]}")
            with witness_session(network.socks_port) as s:
                return s.get(f"http://{front}/", timeout=30).status_code == 200

        # The first descriptor may list one instance only (the other's not
        # fetched yet); a client would keep it. Wait for one with both.
        until("a front descriptor with both instances",
              lambda: publishes_both(ob_log, len(hosts)), deadline)
        until("the front onion answers", front_answers, deadline)
        timings["front address answers"] = time.monotonic() - start

        # The run: a few witnesses at once; a host is lost in the middle of it.
        run = Run()
        run_deadline = time.monotonic() + RUN_DEADLINE
        with ThreadPoolExecutor(WITNESSES) as pool:
            futures = [pool.submit(submit_once, run, network.socks_port, front, n,
                                   run_deadline) for n in range(SUBMISSIONS)]
            for _ in range(KILL_AT):
                assert run.acked.acquire(timeout=max(1, run_deadline - time.monotonic()))
            # The next submission to reach a host loses that host while it arrives.
            loss = Loss(hosts, network)
            for host in hosts:
                host.relay.on_submission = loss.lose
            assert loss.done.wait(60), "no submission reached a host"
            lost, lost_at, lost_at_epoch = loss.host, loss.at, loss.at_epoch
            survivor = next(h for h in hosts if h is not lost)
            served_before = {h.name: h.relay.connections for h in hosts}
            # Two exports at once while submissions still arrive: the export
            # lock puts each item into one bundle only.
            with ThreadPoolExecutor(2) as exporting:
                halves = [exporting.submit(export_and_decrypt, survivor.app.env, team_key,
                                           tmp_path / f"export-1{part}") for part in "ab"]
                exported_first = [text for half in halves for text in half.result()]
            for f in futures:
                f.result()

        # Onionbalance publishes again (the lost instance's descriptor may still be
        # on the HSDirs, so its introduction points may still be listed: clients
        # are turned away there and go on to the survivor's).
        published = until("Onionbalance's next publication", lambda: [
            t for t in front_uploads(ob_log) if t > lost_at_epoch], time.monotonic() + 120)
        published_after_loss = published[0] - lost_at_epoch
        after = [submit_once(run, network.socks_port, front, SUBMISSIONS + n,
                             time.monotonic() + 300) for n in range(AFTER_PUBLICATION)]
        assert after == [None] * AFTER_PUBLICATION
        exported_last = export_and_decrypt(survivor.app.env, team_key, tmp_path / "export-2")
        timings["total"] = time.monotonic() - start
    finally:
        if onionbalance is not None and onionbalance.poll() is None:
            onionbalance.terminate()
            try:
                onionbalance.wait(10)
            except subprocess.TimeoutExpired:
                onionbalance.kill()
                onionbalance.wait(10)
        network.stop()
        for host in hosts:
            host.app.stop()
            host.relay.close()
    assert network.running() == []

    acknowledged = [a.text for a in run.acknowledged()]
    tried = {a.text for a in run.attempts}
    exported = exported_first + exported_last
    counts = Counter(exported)
    assert len(acknowledged) == SUBMISSIONS + AFTER_PUBLICATION
    assert [t for t in acknowledged if counts[t] != 1] == []  # each exactly once
    assert [t for t, n in counts.items() if n > 1] == []  # nothing twice
    assert set(counts) <= tried  # nothing that no witness sent
    # Only an attempt cut off with the host may be kept without its receipt.
    unacknowledged = set(counts) - set(acknowledged)
    assert len(unacknowledged) <= WITNESSES
    # Whatever was acknowledged after the loss came through the survivor.
    served_after = survivor.relay.connections - served_before[survivor.name]
    begun_after = sum(a.acknowledged and a.started > lost_at for a in run.attempts)
    assert served_after >= begun_after > AFTER_PUBLICATION
    failed = [a for a in run.attempts if not a.acknowledged]
    errors = ", ".join(sorted({a.error for a in failed})) or "none"
    with capsys.disabled():
        print(f"\nOnionbalance, {lost.name} lost after {KILL_AT} receipts: "
              f"{len(acknowledged)} acknowledged, {len(exported)} exported "
              f"({len(exported_first)} while submissions arrived), "
              f"{len(unacknowledged)} kept without a receipt; {len(failed)} failed "
              f"attempt(s) ({errors}); connections served before the loss {served_before}, "
              f"by {survivor.name} after it: {served_after}; "
              f"{without_service(run.attempts, lost_at)}; Onionbalance published "
              f"again {published_after_loss:.1f}s after the loss")
        print("timings (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in timings.items()))
