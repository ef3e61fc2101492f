"""A real coturn on loopback for any test: free ports, files under a tmp dir, stopped on exit.

    from support.coturn import coturn      # the pytest fixture, or:
    with run_coturn(tmp_path) as server:    # a loopback relay, loopback peers allowed
        settings = server.settings()        # TurnSettings: urls + the server's secret
        credential = settings.mint("viewer-1")
        config = RTCConfiguration(iceServers=[RTCIceServer(**s) for s in settings.ice_servers(credential)])

``run_coturn(tmp, config=render(params))`` starts coturn from a production turnserver.conf
instead, with only the lines that tie it to a real node swapped for loopback ones (listed in
``server.swapped``), so a test can check the production rules themselves.

Nothing is written outside the given directory (pid file, log, user db), and only loopback
addresses are bound or contacted.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from support.turnclient import TurnClient
from turn.credentials import TurnCredential, TurnSettings

HOST = "127.0.0.1"
START_TIMEOUT = 5.0


def require_turnserver() -> str:
    """The turnserver binary, or skip the test (Debian/Ubuntu: apt-get install coturn)."""
    path = shutil.which("turnserver")
    if path is None:
        pytest.skip("coturn's turnserver is not installed (apt-get install coturn)")
    return path


# -- ports -----------------------------------------------------------------------------------

def _is_free(port: int, host: str, kinds: tuple[int, ...]) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    try:
        for kind in kinds:
            sock = socket.socket(family, kind)
            sockets.append(sock)
            sock.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = HOST) -> int:
    """A port free for both UDP and TCP (a STUN/TURN listener takes both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if _is_free(port, host, (socket.SOCK_DGRAM, socket.SOCK_STREAM)):
            return port
    raise RuntimeError("no free port")


def free_port_range(count: int = 16, hosts: tuple[str, ...] = (HOST,)) -> tuple[int, int]:
    """``count`` consecutive ports free for UDP on every host: coturn's relay range."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        first = rng.randrange(20000, 60000 - count)
        ports = range(first, first + count)
        if all(_is_free(p, h, (socket.SOCK_DGRAM, socket.SOCK_STREAM)) for p in ports for h in hosts):
            return first, first + count - 1
    raise RuntimeError("no free relay port range")


# -- TLS -------------------------------------------------------------------------------------

def self_signed_cert(directory: Path, host: str = HOST) -> tuple[Path, Path]:
    """A throwaway certificate for ``host`` (an IP, in subjectAltName) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "turn-cert.pem", directory / "turn-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


# -- the server ------------------------------------------------------------------------------

@dataclass
class Coturn:
    """A running coturn: where it listens, its realm and secret, its log."""

    host: str
    port: int
    realm: str
    secret: bytes = field(repr=False)
    relay_ports: tuple[int, int]
    log_path: Path
    tls_port: int | None = None
    cert: Path | None = None
    swapped: dict[str, list[str]] = field(default_factory=dict)  # config lines changed for loopback
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def urls(self, *, stun: bool = True, udp: bool = True, tcp: bool = True, tls: bool = False) -> list[str]:
        """ICE server URLs for this server (turns: only if it was started with TLS)."""
        urls = [f"stun:{self.host}:{self.port}"] if stun else []
        if udp:
            urls.append(f"turn:{self.host}:{self.port}?transport=udp")
        if tcp:
            urls.append(f"turn:{self.host}:{self.port}?transport=tcp")
        if tls:
            if self.tls_port is None:
                raise ValueError("this coturn was started without TLS")
            urls.append(f"turns:{self.host}:{self.tls_port}?transport=tcp")
        return urls

    def settings(self, ttl: float = 600.0, **urls: bool) -> TurnSettings:
        """What signaling would hold to hand out credentials for this server."""
        return TurnSettings(self.urls(**urls), self.secret, ttl)

    def mint(self, name: str = "test", ttl: float = 600.0, **kwargs) -> TurnCredential:
        return self.settings(ttl).mint(name, **kwargs)

    def client(self, credential: TurnCredential | None = None, *, transport: str = "udp",
               password: str | None = None) -> TurnClient:
        """A TurnClient for this server, with ``credential`` (a fresh one if None)."""
        credential = credential or self.mint()
        address = (self.host, self.tls_port) if transport == "tls" else self.address
        context = None
        if transport == "tls":
            import ssl
            context = ssl.create_default_context(cafile=str(self.cert))
        return TurnClient(address, credential.username,
                          credential.password if password is None else password,
                          transport=transport, tls_context=context)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _loopback_args(workdir: Path, secret: bytes, realm: str, port: int, relay: tuple[int, int],
                   ipv6: bool, tls: tuple[int, Path, Path] | None) -> list[str]:
    args = [
        "-n", f"--listening-ip={HOST}", f"--relay-ip={HOST}",
        # Loopback peers are what a one-machine relay test relays to; coturn 4.6.1 only allows
        # them together with --no-cli (or a cli password).
        "--allow-loopback-peers", "--no-cli",
        "--use-auth-secret", f"--static-auth-secret={secret.decode('ascii')}", f"--realm={realm}",
        f"--listening-port={port}", f"--min-port={relay[0]}", f"--max-port={relay[1]}",
        "--no-dtls", "--fingerprint", "--no-software-attribute", "--no-multicast-peers",
    ]
    if ipv6:
        args.append("--relay-ip=::1")
    if tls is None:
        args.append("--no-tls")
    else:
        tls_port, cert, pkey = tls
        args += [f"--tls-listening-port={tls_port}", f"--cert={cert}", f"--pkey={pkey}", "--no-tlsv1", "--no-tlsv1_1"]
    return args + _private_files_args(workdir)


def _private_files_args(workdir: Path) -> list[str]:
    return [f"--pidfile={workdir / 'turnserver.pid'}", f"--log-file={workdir / 'turnserver.log'}",
            "--simple-log", f"--userdb={workdir / 'turndb'}"]


def localize_config(text: str, *, port: int, relay: tuple[int, int], tls: tuple[int, Path, Path] | None,
                    ipv6: bool) -> tuple[str, dict[str, list[str]]]:
    """A production turnserver.conf with what binds it to a real node swapped for loopback.

    Swapped: listening/relay/external IPs, ports, cert and key, syslog (for a log file, added
    on the command line). Everything else (auth, limits, denied peers, hardening) is kept as is.
    Returns the new text and, per swapped key, the production lines it replaced.
    """
    replaced: dict[str, list[str]] = {}
    swap = {"listening-ip": [HOST], "relay-ip": [HOST] + (["::1"] if ipv6 else []), "external-ip": [],
            "listening-port": [str(port)], "min-port": [str(relay[0])], "max-port": [str(relay[1])],
            "syslog": [], "no-stdout-log": []}
    if tls is not None:
        swap.update({"tls-listening-port": [str(tls[0])], "cert": [str(tls[1])], "pkey": [str(tls[2])]})
    out = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if line.lstrip().startswith("#") or key not in swap:
            out.append(line)
            continue
        replaced.setdefault(key, []).append(line)
        if len(replaced[key]) == 1:
            out += [f"{key}={value}" for value in swap[key]]
    if tls is None and "tls-listening-port" in {line.split("=", 1)[0] for line in out}:
        raise ValueError("the config has TLS on: pass tls=True")
    return "\n".join(out) + "\n", replaced


def _config_value(text: str, key: str) -> str | None:
    for line in text.splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip()
    return None


@contextmanager
def run_coturn(workdir: Path, *, secret: bytes | None = None, realm: str = "inkcast.test",
               config: str | None = None, ipv6: bool = False, tls: bool = False,
               extra_args: tuple[str, ...] = ()) -> Iterator[Coturn]:
    """Start coturn on loopback, wait until it answers STUN, yield it, stop it whatever happens.

    Without ``config``: a test relay (loopback peers allowed) with ``secret`` (a random one by
    default) and ``realm``. With ``config``: that turnserver.conf, localized by
    ``localize_config`` (its own secret and realm are used). ``ipv6`` adds an IPv6 relay on ::1,
    ``tls`` a TLS listener with a throwaway certificate for 127.0.0.1.
    """
    turnserver = require_turnserver()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    relay = free_port_range(hosts=(HOST, "::1") if ipv6 else (HOST,))
    tls_files = (free_port(), *self_signed_cert(workdir)) if tls else None
    swapped: dict[str, list[str]] = {}
    if config is None:
        secret = secret or secrets.token_hex(16).encode()
        args = _loopback_args(workdir, secret, realm, port, relay, ipv6, tls_files)
    else:
        text, swapped = localize_config(config, port=port, relay=relay, tls=tls_files, ipv6=ipv6)
        conf_path = workdir / "turnserver.conf"
        conf_path.write_text(text)
        conf_path.chmod(0o600)
        secret = (_config_value(text, "static-auth-secret") or "").encode()
        realm = _config_value(text, "realm") or ""
        args = ["-c", str(conf_path)] + _private_files_args(workdir)
    server = Coturn(HOST, port, realm, secret, relay, workdir / "turnserver.log",
                    tls_port=tls_files[0] if tls_files else None, cert=tls_files[1] if tls_files else None,
                    swapped=swapped)
    server.process = subprocess.Popen([turnserver, *args, *extra_args], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(server.process)


def _wait_ready(server: Coturn) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"turnserver exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        try:
            with TurnClient(server.address, "", "", timeout=0.05) as probe:
                if probe.binding().ok and (server.tls_port is None or _accepts_tcp(server.host, server.tls_port)):
                    return
        except (TimeoutError, ConnectionError, OSError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"turnserver did not answer STUN within {START_TIMEOUT} s:\n{server.log()[-3000:]}")


def _accepts_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """A loopback test relay (see run_coturn) for the duration of one test."""
    with run_coturn(tmp_path / "coturn") as server:
        yield server
