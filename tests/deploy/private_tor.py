"""A private Tor network on 127.0.0.1, for tests only.

Tor's TestingTorNetwork mode with the settings of Tor's own test tool
(torproject/chutney's torrc templates): a few directory authorities that vote
fast (how fast: `voting`), relays, all of them HSDirs, one node running a given
onion service torrc, and a client with a SOCKS port; `add_node` adds more
(several onion services, a tor for Onionbalance). Every process is started
here, in folders under `root`, and `stop()` ends them all;
`__OwningControllerProcess` also makes each tor exit on its own if the test
process dies.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from support import free_port

TOR = "tor"
TOR_GENCERT = "tor-gencert"

COMMON = """\
TestingTorNetwork 1
AssumeReachable 1
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
DataDirectory {dir}
Nickname {nick}
RunAsDaemon 0
ShutdownWaitLength 0
__OwningControllerProcess {owner}
Log notice file {dir}/notice.log
ProtocolWarnings 1
ConnLimit 60
# Circuits on loopback build in milliseconds, and tor would learn a timeout that
# short; on a busy machine builds then time out in bursts until tor resets it.
LearnCircuitBuildTimeout 0
"""

RELAY = """\
SocksPort 0
ORPort 127.0.0.1:{orport}
DirPort 127.0.0.1:{dirport}
Address 127.0.0.1
ExitRelay 0
ExitPolicy reject *:*
TestingServerDownloadInitialDelay 0
TestingServerConsensusDownloadInitialDelay 0
"""

AUTHORITY = """\
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
ContactInfo {nick}@test.invalid
TestingV3AuthInitialVotingInterval {voting.initial}
TestingV3AuthInitialVoteDelay {voting.initial_delay}
TestingV3AuthInitialDistDelay {voting.initial_delay}
V3AuthVotingInterval {voting.interval}
V3AuthVoteDelay {voting.delay}
V3AuthDistDelay {voting.delay}
"""

CLIENT = """\
SocksPort 127.0.0.1:{socksport} ExtendedErrors
ClientOnionAuthDir {dir}/onion_auth
"""

@dataclass(frozen=True)
class Voting:
    """How fast the authorities vote (seconds). Vote + distribution delays stay
    under half the interval (tor uses half while it has no consensus)."""

    initial: int
    initial_delay: int
    interval: int
    delay: int


FAST = Voting(initial=5, initial_delay=2, interval=10, delay=2)
# Onionbalance's --is-testnet mode computes onion-service time periods for a
# 20-second voting interval (chutney's former setting); tor computes them from
# the consensus, so the network must vote every 20 seconds for the two to agree.
ONIONBALANCE_TESTNET = Voting(initial=5, initial_delay=2, interval=20, delay=4)



@dataclass
class Node:
    nick: str
    dir: Path
    torrc: str = ""
    orport: int = 0
    dirport: int = 0
    process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.dir / "notice.log"

    @property
    def output(self) -> Path:
        """What tor printed: where it says why it stopped before opening its log
        (a port it could not bind, a torrc it refused)."""
        return self.dir / "output.log"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def output_text(self) -> str:
        try:
            return self.output.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class PrivateTorNetwork:
    root: Path
    authorities: int = 3
    relays: int = 2
    voting: Voting = FAST
    nodes: list[Node] = field(default_factory=list)
    socks_port: int = 0
    client: Node | None = None
    service: Node | None = None
    _directory: str = ""  # the DirAuthority lines every node is given

    def _node(self, nick: str) -> Node:
        d = self.root / nick
        d.mkdir(parents=True, mode=0o700)
        node = Node(nick, d)
        self.nodes.append(node)
        return node

    def _common(self, node: Node) -> str:
        return COMMON.format(dir=node.dir, nick=node.nick, owner=os.getpid())

    def _fingerprint(self, node: Node) -> str:
        empty = self.root / "empty-torrc"
        empty.touch()
        subprocess.run(
            [TOR, "--defaults-torrc", str(empty), "-f", str(empty), "--list-fingerprint",
             "--DataDirectory", str(node.dir), "--ORPort", str(node.orport),
             "--Nickname", node.nick, "--Address", "127.0.0.1",
             "--DirServer", "x 127.0.0.1:1 ffffffffffffffffffffffffffffffffffffffff"],
            check=True, capture_output=True, timeout=60)
        return (node.dir / "fingerprint").read_text().split()[1]

    def _authority_line(self, node: Node) -> str:
        keys = node.dir / "keys"
        keys.mkdir(mode=0o700)
        subprocess.run(
            [TOR_GENCERT, "--create-identity-key", "-m", "12",
             "-a", f"127.0.0.1:{node.dirport}",
             "-i", str(keys / "authority_identity_key"),
             "-s", str(keys / "authority_signing_key"),
             "-c", str(keys / "authority_certificate"), "--passphrase-fd", "0"],
            input=b"\n", check=True, capture_output=True, timeout=60)
        cert = (keys / "authority_certificate").read_text()
        v3ident = re.search(r"^fingerprint ([0-9A-F]{40})$", cert, re.M).group(1)
        fp = self._fingerprint(node)
        return (f"DirAuthority {node.nick} orport={node.orport} v3ident={v3ident} "
                f"127.0.0.1:{node.dirport} {fp}")

    def configure(self, service_torrc: str | None = None) -> None:
        """Writes every node's torrc. `service_torrc` is the onion service's own
        configuration (the network's settings are put in front of it); without
        it there is no `service` node, and `add_node` makes each one."""
        dir_lines = []
        relays = []
        for i in range(self.authorities + self.relays):
            node = self._node(f"{'auth' if i < self.authorities else 'relay'}{i}")
            node.orport, node.dirport = free_port(), free_port()
            relays.append(node)
            if i < self.authorities:
                dir_lines.append(self._authority_line(node))
        authorities = "\n".join(dir_lines) + "\n"
        for i, node in enumerate(relays):
            text = self._common(node) + authorities + RELAY.format(
                orport=node.orport, dirport=node.dirport)
            if i < self.authorities:
                text += AUTHORITY.format(nick=node.nick, voting=self.voting)
            node.torrc = text
        self._directory = authorities
        if service_torrc is not None:
            self.service = self._node("service")
            self.service.torrc = self._common(self.service) + authorities + service_torrc
        self.client = self._node("client")
        (self.client.dir / "onion_auth").mkdir(mode=0o700)
        self.socks_port = free_port()
        self.client.torrc = self._common(self.client) + authorities + CLIENT.format(
            socksport=self.socks_port, dir=self.client.dir)
        for node in self.nodes:
            (node.dir / "torrc").write_text(node.torrc)

    def add_node(self, nick: str, torrc: str) -> Node:
        """One more tor on the configured network, with its own configuration
        (an onion service's, say) after the network's settings. Started by
        `start` or `start_node`."""
        node = self._node(nick)
        node.torrc = self._common(node) + self._directory + torrc
        (node.dir / "torrc").write_text(node.torrc)
        return node

    def start_node(self, node: Node) -> None:
        empty = self.root / "empty-torrc"
        empty.touch()
        with node.output.open("ab") as output:
            node.process = subprocess.Popen(
                [TOR, "--defaults-torrc", str(empty), "-f", str(node.dir / "torrc")],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)

    def kill_node(self, node: Node) -> None:
        """Ends a tor at once, as a host that is lost would (no goodbye to the network)."""
        if node.process is not None and node.process.poll() is None:
            node.process.kill()
            node.process.wait(10)

    def stop_node(self, node: Node) -> None:
        if node.process is None or node.process.poll() is not None:
            return
        node.process.terminate()
        try:
            node.process.wait(15)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(10)

    def start(self) -> None:
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                self.start_node(node)

    def check_alive(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is not None:
                raise RuntimeError(f"tor node {node.nick} exited "
                                   f"({node.process.returncode}):\n{node.log_text()[-3000:]}"
                                   f"\nprinted:\n{node.output_text()[-3000:]}")

    def wait_for_log(self, node: Node, pattern: str, timeout: float) -> float:
        """Seconds until `pattern` appears in the node's log; bounded by `timeout`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if re.search(pattern, node.log_text()):
                return time.monotonic() - start
            self.check_alive()
            time.sleep(0.5)
        raise TimeoutError(f"{node.nick}: no {pattern!r} after {timeout:.0f}s:\n"
                           f"{node.log_text()[-3000:]}")

    def stop(self) -> None:
        """Ends every tor process; safe to call more than once."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        deadline = time.monotonic() + 15
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)

    def running(self) -> list[int]:
        return [n.process.pid for n in self.nodes
                if n.process is not None and n.process.poll() is None]
