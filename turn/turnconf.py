"""turnserver.conf for coturn on a public node: a relay for WebRTC media, and nothing more.

A TURN relay sends packets wherever its users ask. On a cloud node that reaches private
networks, the metadata service (169.254.169.254) and its own loopback services, an open relay is
an SSRF gateway. So the config denies every private and special-purpose range as a peer, turns
off TCP relaying to peers (WebRTC only relays UDP), and authenticates with the TURN REST
shared secret.

``render()`` is pure: the parameters in, the file's text out. ``check()`` says what is wrong with
a set of parameters (run it before rendering real ones). The command line is ``turn.main``.

coturn 4.6.1 notes, verified by tests/test_coturn.py against the real server:
- ``denied-peer-ip`` takes ``a.b.c.d`` or ``first-last``; CIDR (``10.0.0.0/8``) is *not*
  understood: coturn logs "Wrong address format" and starts without the rule. Ranges are
  therefore written as first-last.
- an IPv4 range does not match the IPv4-mapped IPv6 form of its addresses (``::ffff:10.0.0.1``
  on an IPv6 relay is allowed), hence the explicit ``::ffff:0:0/96`` rule.
- ``denied-peer-ip=::`` denies every peer and ``::-::ffff:ffff`` every IPv4 peer, so neither is
  written (coturn refuses :: by itself); see LEFT_TO_COTURN.
- ``denied-peer-ip`` applies after the loopback check, so 127.0.0.0/8 stays denied even with
  ``allow-loopback-peers``; only an ``allowed-peer-ip`` rule would reopen it, and this config
  has none (an allowed rule wins over every denied one).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from turn.credentials import TurnSecretError, check_secret

LISTENING_PORT = 3478
TLS_LISTENING_PORT = 5349

# Every range a relay on the public internet has no business reaching, with why.
DENIED_PEER_NETWORKS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this' network; 0.0.0.0 reaches the node itself"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT; also cloud internals (100.100.100.200 on Alibaba)"),
    ("127.0.0.0/8", "loopback: signaling and other services on this node"),
    ("169.254.0.0/16", "link-local: cloud metadata at 169.254.169.254"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, and the limited broadcast 255.255.255.255"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped: IPv4 rules do not match this spelling of IPv4 addresses"),
    ("64:ff9b::/96", "NAT64 well-known prefix: embeds IPv4 addresses"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments (Teredo, ORCHID, ...)"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4 (deprecated): embeds IPv4 addresses"),
    ("fc00::/7", "unique local: private networks; AWS metadata at fd00:ec2::254"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)

# Ranges deliberately left out, because coturn 4.6.1 applies them wrongly (tests/test_coturn.py
# shows both): ``denied-peer-ip=::`` denies every peer, IPv4 and IPv6 alike, and
# ``::-::ffff:ffff`` (IPv4-compatible ::/96) denies every IPv4 peer. coturn refuses the
# unspecified address :: (and 0.0.0.0) as a peer by itself, without any rule.
LEFT_TO_COTURN: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified: coturn's own zero-address check refuses it"),
)

# Lines that must never appear: they would reopen what the denied ranges close.
FORBIDDEN_KEYS = ("allowed-peer-ip", "allow-loopback-peers", "no-auth", "lt-cred-mech", "user")

_REALM = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_SAFE_PATH = re.compile(r"[^\s#]+")  # one token on one line in turnserver.conf


def coturn_range(network: str) -> str:
    """``network`` as coturn 4.6.1 reads it: a single address, or ``first-last``."""
    net = ipaddress.ip_network(network)
    if net.num_addresses == 1:
        return str(net.network_address)
    return f"{net.network_address}-{net.broadcast_address}"


class TurnConfError(ValueError):
    """The parameters would give an unsafe or broken turnserver.conf; one problem per line."""


@dataclass(frozen=True)
class TurnConfParams:
    """The few inputs a node's turnserver.conf depends on.

    ``private_ip`` is the node's own address when the cloud NATs the public IP to it (AWS, GCP,
    Azure, Scaleway); leave it empty when the public IP is on the interface (Hetzner, OVH).
    ``secret`` is the TURN REST secret itself (coturn's ``static-auth-secret`` cannot point to a
    file); None renders a placeholder comment, as in the sample.
    """

    public_ip: str
    realm: str
    private_ip: str = ""
    secret: bytes | None = field(default=None, repr=False)
    min_port: int = 49152
    max_port: int = 65535
    tls: bool = True
    cert: Path | None = None
    pkey: Path | None = None
    user_quota: int = 64
    total_quota: int = 1024
    max_bps: int = 1_000_000
    bps_capacity: int = 0

    @property
    def bind_ip(self) -> str:
        return self.private_ip or self.public_ip


def check(params: TurnConfParams, *, check_files: bool = True) -> None:
    """Raise TurnConfError listing every problem; return None when ``params`` are fit for a node."""
    problems: list[str] = []
    public = _address(params.public_ip, "public IP", problems)
    if public is not None:
        if public.version != 4:
            problems.append(f"public IP {public} is IPv6; this config relays IPv4 only")
        elif not public.is_global or public.is_multicast or public.is_reserved:
            problems.append(f"public IP {public} is not a public address (private, loopback, "
                            "documentation or other special range)")
    if params.private_ip:
        private = _address(params.private_ip, "private IP", problems)
        if private is not None:
            if private.version != 4:
                problems.append(f"private IP {private} is IPv6; this config relays IPv4 only")
            elif (private.is_global or private.is_loopback or private.is_unspecified
                  or private.is_multicast or private.is_link_local):
                problems.append(f"private IP {private} is not a private address of this node; leave it "
                                "empty when the public IP is on the network interface")
    if not _REALM.fullmatch(params.realm or ""):
        problems.append(f"realm {params.realm!r} must be a DNS name such as turn.example.org")

    numbers = ("min_port", "max_port", "user_quota", "total_quota", "max_bps", "bps_capacity")
    not_int = [name for name in numbers if type(getattr(params, name)) is not int]
    problems += [f"{name} must be an integer" for name in not_int]
    if not not_int:
        problems += _limit_problems(params)

    if params.tls:
        for name in ("cert", "pkey"):
            path = getattr(params, name)
            if path is None:
                problems.append(f"TLS is on but no {name} is given (or turn TLS off)")
            elif not _SAFE_PATH.fullmatch(str(path)):
                problems.append(f"{name} path {str(path)!r} must not contain blanks or '#'")
            elif check_files and not Path(path).is_file():
                problems.append(f"{name} file {path} does not exist")
    if params.secret is None:
        problems.append("no TURN secret")
    else:
        try:
            check_secret(params.secret, "TURN secret")
        except TurnSecretError as exc:
            problems.append(str(exc))
    if problems:
        raise TurnConfError("\n".join(problems))


def _limit_problems(params: TurnConfParams) -> list[str]:
    problems = []
    span = f"relay port range {params.min_port}-{params.max_port}"
    if not 1024 <= params.min_port <= params.max_port <= 65535:
        problems.append(f"{span} must lie within 1024-65535, min before max")
    elif params.max_port - params.min_port + 1 < 16:
        problems.append(f"{span} is too small (one port per allocation; at least 16)")
    listeners = [LISTENING_PORT, LISTENING_PORT + 1] + ([TLS_LISTENING_PORT] if params.tls else [])
    clash = [port for port in listeners if params.min_port <= port <= params.max_port]
    if clash:
        problems.append(f"{span} includes listening port {clash[0]}")
    if params.user_quota < 1 or params.total_quota < params.user_quota:
        problems.append("quotas: user_quota must be at least 1 and total_quota at least user_quota")
    if params.max_bps < 0 or params.bps_capacity < 0:
        problems.append("bandwidth limits must not be negative (0 means unlimited)")
    return problems


def _address(text: str, what: str, problems: list[str]) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        problems.append(f"{what} {text!r} is not an IP address")
        return None


def render(params: TurnConfParams) -> str:
    """The turnserver.conf text for ``params`` (not checked: call check() first for real ones)."""
    lines = [
        "# turnserver.conf for an inkcast relay node, written by `inkcast turn-config`.",
        "# Re-run that command rather than editing by hand. This file holds the TURN secret:",
        "# keep it readable by root and the turnserver group only (mode 0640).",
        "",
        "## Listeners: STUN/TURN over UDP and TCP, TURN over TLS; no DTLS (browsers use TLS).",
        f"listening-ip={params.bind_ip}",
        f"listening-port={LISTENING_PORT}",
    ]
    if params.tls:
        lines += [
            f"tls-listening-port={TLS_LISTENING_PORT}",
            f"cert={params.cert}",
            f"pkey={params.pkey}",
            "no-tlsv1",
            "no-tlsv1_1",
            "no-dtls",
        ]
    else:
        lines += ["no-tls", "no-dtls"]
    lines += ["", "## Relay: the addresses and ports media flows through."]
    lines.append(f"relay-ip={params.bind_ip}")
    if params.private_ip:
        lines += ["# The cloud NATs the public IP to this private one; clients must see the public one.",
                  f"external-ip={params.public_ip}/{params.private_ip}"]
    lines += [
        f"min-port={params.min_port}",
        f"max-port={params.max_port}",
        "# WebRTC relays UDP only; TCP relaying (RFC 6062) would let users open TCP connections",
        "# to any host the node reaches.",
        "no-tcp-relay",
        "",
        "## Authentication: TURN REST credentials (username 'expiry:name', HMAC-SHA1 password).",
        "use-auth-secret",
    ]
    if params.secret is None:
        lines.append("# static-auth-secret=<written here by `inkcast turn-config` from the secret file>")
    else:
        lines.append(f"static-auth-secret={params.secret.decode('ascii')}")
    lines += [
        f"realm={params.realm}",
        "# Nonces expire (seconds), so a captured request cannot be replayed for long.",
        "stale-nonce=600",
        "fingerprint",
        "",
        "## Limits: allocations per username and in all, bytes per second per session and in all",
        "## (0 = unlimited). A tablet's one username carries one allocation per viewer.",
        f"user-quota={params.user_quota}",
        f"total-quota={params.total_quota}",
        f"max-bps={params.max_bps}",
        f"bps-capacity={params.bps_capacity}",
        "",
        "## Hardening.",
        "no-cli",
        "no-multicast-peers",
        "no-software-attribute",
        "# No NAT behaviour discovery nor old-STUN answers: both only make responses bigger",
        "# (amplification) and WebRTC needs neither.",
        "no-rfc5780",
        "no-stun-backward-compatibility",
        "response-origin-only-with-rfc5780",
        "",
        "## Peers the relay refuses, whatever a user asks. coturn 4.6.1 reads first-last ranges",
        "## only (a CIDR is ignored with a log line), and an IPv4 range does not cover the",
        "## ::ffff:a.b.c.d spelling of its addresses. '::' is left out on purpose: coturn 4.6.1",
        "## would deny every peer with it, and refuses :: by itself. Never add allowed-peer-ip:",
        "## it wins over all of these.",
    ]
    for network, why in DENIED_PEER_NETWORKS:
        lines += [f"# {network}: {why}", f"denied-peer-ip={coturn_range(network)}"]
    lines += [
        "",
        "## Logging: to syslog (journald); coturn logs usernames, never the secret or passwords.",
        "syslog",
        "no-stdout-log",
        "",
    ]
    return "\n".join(lines)


# The inputs of turn/turnserver.conf.sample (tests/test_turn_config.py keeps the two in sync).
SAMPLE_PARAMS = TurnConfParams(
    public_ip="PUBLIC_IP",
    private_ip="PRIVATE_IP",
    realm="turn.example.org",
    cert=Path("/etc/letsencrypt/live/turn.example.org/fullchain.pem"),
    pkey=Path("/etc/letsencrypt/live/turn.example.org/privkey.pem"),
)


if __name__ == "__main__":
    # Regenerates the sample: python -m turn.turnconf > turn/turnserver.conf.sample
    print(render(SAMPLE_PARAMS), end="")
