"""A real tailnet on loopback for tests: inkcast's libtailscale and a local control server.

``tailnet/build.sh host`` builds (or reuses) both; ``ControlServer`` runs Tailscale's test control
server with its DERP relay and STUN on 127.0.0.1; ``NodeFactory`` makes ``TailnetNode``s joined
to it. Where Go or the module proxy is missing, ``build_tailnet()`` skips the test, saying why.

Nothing here sends a packet off loopback: the control URL is always set (and reaching Tailscale's
own control plane panics, TS_PANIC_IF_HIT_MAIN_CONTROL), port mapping is off, nodes advertise only
the endpoints STUN on 127.0.0.1 saw, and the library dials only tailnet addresses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tailnet" / "build.sh"

#: Set in every test process (and child) before libtailscale loads.
TEST_ENV = {
    "TS_NO_LOGS_NO_SUPPORT": "true",
    "TS_PANIC_IF_HIT_MAIN_CONTROL": "1",  # a test without a control URL must not reach Tailscale
    "TS_DISABLE_PORTMAPPER": "1",  # no UPnP/NAT-PMP/PCP probes to the gateway
    "TS_DEBUG_OMIT_LOCAL_ADDRS": "1",  # only the STUN-seen 127.0.0.1 endpoints
    "TS_ASSUME_NETWORK_UP_FOR_TEST": "1",
}


@dataclass(frozen=True)
class TailnetBuild:
    library: Path
    control: Path


_build: TailnetBuild | str | None = None


def _find_go() -> str | None:
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def build_tailnet() -> TailnetBuild:
    """Build (or reuse) the library and the control server once per session; skip if impossible."""
    global _build
    if _build is None:
        _build = _do_build()
    if isinstance(_build, str):
        pytest.skip(_build)
    return _build


def _do_build() -> TailnetBuild | str:
    lib_env = os.environ.get("INKCAST_LIBTAILSCALE")
    ctl_env = os.environ.get("INKCAST_TESTCONTROL")
    if lib_env and ctl_env:
        return TailnetBuild(Path(lib_env), Path(ctl_env))
    go = _find_go()
    if go is None:
        return "tailnet tests need Go to build libtailscale (none on PATH nor at /usr/local/go/bin/go)"
    env = {**os.environ, "GO": go}
    try:
        done = subprocess.run(["bash", str(BUILD_SCRIPT), "host"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return "tailnet tests: building libtailscale took over 15 minutes"
    if done.returncode != 0:
        tail = list(dict.fromkeys((done.stderr or done.stdout).strip().splitlines()))[-3:]
        why = "the Go module proxy is unreachable" if any(
            word in line.lower() for line in tail for word in ("proxy", "dial tcp", "lookup", "no such host")
        ) else "the build failed"
        return f"tailnet tests skipped: {why}: tailnet/build.sh host: " + " | ".join(tail)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    out = Path(os.environ.get("INKCAST_TAILNET_BUILD", ROOT / "build" / "tailnet")) / f"linux-{arch}"
    return TailnetBuild(out / "libtailscale.so", out / "testcontrol")


def prepare_environment() -> None:
    """Put the test environment in place before libtailscale is loaded in this process."""
    from streamer import tailnet

    tailnet.configure_environment(TEST_ENV)


class ControlServer:
    """testcontrol (+ DERP + STUN) on 127.0.0.1, with the admin API of tailnet/testcontrol."""

    def __init__(self, binary: Path, log_path: Path, *, authkey: str | None = None,
                 interactive: bool = False, ephemeral_grace: float = 0.5) -> None:
        self.authkey = authkey if authkey is not None else "tskey-test-" + uuid.uuid4().hex[:16]
        args = [str(binary), "-listen", "127.0.0.1:0", "-exit-on-eof",
                f"-ephemeral-grace={ephemeral_grace}s"]
        if self.authkey:
            args += ["-authkey", self.authkey]
        if interactive:
            args.append("-interactive")
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            raise RuntimeError(f"testcontrol exited ({self.proc.returncode}); see {log_path}")
        info = json.loads(line)
        self.url: str = info["control_url"]
        self.derp_url: str = info["derp_url"]
        self.stun: str = info["stun"]

    def _admin(self, method: str, path: str, **params: str) -> bytes:
        query = urllib.parse.urlencode(params)
        req = urllib.request.Request(f"{self.url}{path}?{query}", method=method)
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.read()

    def nodes(self) -> list[dict]:
        return json.loads(self._admin("GET", "/inkcast/nodes"))

    def node(self, hostname: str) -> dict | None:
        return next((n for n in self.nodes() if n["hostname"] == hostname), None)

    def set_tags(self, hostname: str, *tags: str) -> None:
        self._admin("POST", "/inkcast/tags", node=hostname, tags=",".join(tags))

    def remove(self, hostname: str) -> None:
        self._admin("POST", "/inkcast/remove", node=hostname)

    def complete_auth(self, login_url: str) -> None:
        self._admin("POST", "/inkcast/complete-auth", url=login_url)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # -exit-on-eof
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self._log.close()


class NodeFactory:
    """Makes TailnetNodes on one control server, each with its own state dir and log file;
    closes whatever is still open at the end."""

    def __init__(self, control: ControlServer, library: Path, tmp: Path) -> None:
        self.control = control
        self.library = library
        self.tmp = tmp
        self.nodes: list = []

    def state_dir(self, hostname: str) -> Path:
        return self.tmp / "state" / hostname

    def log_path(self, hostname: str) -> Path:
        return self.tmp / "logs" / f"{hostname}.log"

    def make(self, hostname: str, *, authkey: str | None = None, **kwargs):
        from streamer.tailnet import TailnetNode

        self.log_path(hostname).parent.mkdir(parents=True, exist_ok=True)
        node = TailnetNode(
            hostname=hostname,
            state_dir=kwargs.pop("state_dir", self.state_dir(hostname)),
            authkey=self.control.authkey if authkey is None else authkey,
            control_url=kwargs.pop("control_url", self.control.url),
            log_file=kwargs.pop("log_file", self.log_path(hostname)),
            library=self.library,
            **kwargs,
        )
        self.nodes.append(node)
        return node

    async def up(self, hostname: str, **kwargs):
        node = self.make(hostname, **kwargs)
        await node.up(timeout=30)
        return node

    async def close_all(self) -> None:
        for node in self.nodes:
            await node.close()


def child_env(build: TailnetBuild) -> dict[str, str]:
    """Environment for a Python child process that runs its own node."""
    env = {**os.environ, **TEST_ENV, "INKCAST_LIBTAILSCALE": str(build.library)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def python() -> str:
    return sys.executable


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# -- fixtures (import them into a test module to use them) ---------------------------------

def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def tailnet_build():
    build = build_tailnet()
    prepare_environment()
    return build


@pytest.fixture(scope="module")
def control(tailnet_build, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("control")
    server = ControlServer(tailnet_build.control, tmp / "testcontrol.log")
    yield server
    server.close()


@pytest.fixture
async def nodes(control, tailnet_build, tmp_path):
    factory = NodeFactory(control, tailnet_build.library, tmp_path)
    yield factory
    await factory.close_all()


async def eventually(check, timeout: float = 10.0, what: str = "condition"):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
