"""``inkcast turn-config``: write a secure turnserver.conf for the relay node."""

from __future__ import annotations

import argparse
import grp
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inkcast.settings import add_arguments, from_sources, setting
from turn.credentials import SECRET_ENV, TurnSecretError, load_secret
from turn.turnconf import LISTENING_PORT, TLS_LISTENING_PORT, TurnConfError, TurnConfParams, check, render

DESCRIPTION = f"""\
Write turnserver.conf for coturn on a public node: TURN REST authentication with
the shared secret, STUN/TURN on {LISTENING_PORT} (UDP, TCP) and TURN over TLS on {TLS_LISTENING_PORT}, quotas
and a bandwidth cap, and every private and special-purpose range denied as a peer.

The secret is read from --secret-file (or {SECRET_ENV}) and written into the
config, since coturn's static-auth-secret holds the secret itself: the output is
created with mode 0640. Without -o the config goes to stdout, never to a terminal."""

EPILOG = """\
example, on a cloud VM whose public IP ($PUBLIC_IP) is NATed to 10.0.0.5:
  (umask 027; openssl rand -hex 32 > /etc/inkcast/turn-secret)
  inkcast turn-config --public-ip "$PUBLIC_IP" --private-ip 10.0.0.5 \\
      --realm turn.example.org --secret-file /etc/inkcast/turn-secret \\
      --cert /etc/letsencrypt/live/turn.example.org/fullchain.pem \\
      --pkey /etc/letsencrypt/live/turn.example.org/privkey.pem \\
      --group turnserver -o /etc/turnserver.conf

Then open UDP+TCP 3478, TCP 5349 and UDP min-port..max-port in the firewall.
Signaling must use the same secret (INKCAST_TURN_SECRET or the same file)."""


def _env(name: str) -> str:
    return f"INKCAST_TURN_{name.upper()}"


@dataclass
class TurnConfigSettings:
    public_ip: str = setting("", "public IPv4 address clients reach the node at (required)",
                             env=_env("public_ip"))
    private_ip: str = setting("", "the node's own address when the cloud NATs the public IP to it "
                              "(AWS, GCP, Azure); empty when the public IP is on the interface",
                              env=_env("private_ip"))
    realm: str = setting("", "TURN realm: the node's DNS name, e.g. turn.example.org (required)",
                         env=_env("realm"))
    secret_file: Path | None = setting(None, f"file holding the shared TURN secret, not readable by "
                                       f"others (chmod 600/640); without it, {SECRET_ENV} is used",
                                       env=_env("secret_file"))
    min_port: int = setting(49152, "lowest UDP relay port", env=_env("min_port"))
    max_port: int = setting(65535, "highest UDP relay port", env=_env("max_port"))
    tls: bool = setting(True, f"TURN over TLS on port {TLS_LISTENING_PORT} (needs --cert and --pkey)",
                        env=_env("tls"))
    cert: Path | None = setting(None, "TLS certificate chain, PEM (e.g. Let's Encrypt fullchain.pem)",
                                env=_env("cert"))
    pkey: Path | None = setting(None, "TLS private key, PEM", env=_env("pkey"))
    user_quota: int = setting(64, "concurrent allocations per username (a tablet uses one per viewer)",
                              env=_env("user_quota"))
    total_quota: int = setting(1024, "concurrent allocations in all", env=_env("total_quota"))
    max_bps: int = setting(1_000_000, "bytes per second per session, each direction (0 = unlimited)",
                           env=_env("max_bps"))
    bps_capacity: int = setting(0, "bytes per second for all sessions together (0 = unlimited)",
                                env=_env("bps_capacity"))
    group: str = setting("", "give this group read access to the output file (turnserver on Debian)",
                         env=_env("group"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "turn-config", help="write a secure turnserver.conf for the relay node",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, TurnConfigSettings)
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the config here (mode 0640, replaced atomically) instead of stdout")
    parser.set_defaults(func=run)


def params_from(settings: TurnConfigSettings, environ=None) -> TurnConfParams:
    """Checked parameters, the secret read from its file; TurnConfError/TurnSecretError otherwise."""
    params = TurnConfParams(
        public_ip=settings.public_ip, private_ip=settings.private_ip, realm=settings.realm,
        secret=load_secret(settings.secret_file, environ),
        min_port=settings.min_port, max_port=settings.max_port,
        tls=settings.tls, cert=settings.cert, pkey=settings.pkey,
        user_quota=settings.user_quota, total_quota=settings.total_quota,
        max_bps=settings.max_bps, bps_capacity=settings.bps_capacity)
    check(params)
    return params


def write_private(path: Path, text: str, gid: int = -1) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner and group ``gid`` only."""
    directory = path.resolve().parent
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            os.fchmod(file.fileno(), 0o640)
            if gid != -1:
                os.fchown(file.fileno(), -1, gid)
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def run(args: argparse.Namespace) -> int:
    settings = from_sources(TurnConfigSettings, args)
    try:
        params = params_from(settings)
    except (TurnConfError, TurnSecretError) as exc:
        for line in str(exc).splitlines():
            print(f"inkcast turn-config: {line}", file=sys.stderr)
        return 2
    text = render(params)
    if args.output is None:
        if sys.stdout.isatty():
            print("inkcast turn-config: the config holds the TURN secret; not printing it to a terminal "
                  "(use -o FILE, or a pipe)", file=sys.stderr)
            return 2
        sys.stdout.write(text)
        return 0
    try:
        gid = grp.getgrnam(settings.group).gr_gid if settings.group else -1
    except KeyError:
        print(f"inkcast turn-config: no group {settings.group!r}", file=sys.stderr)
        return 2
    try:
        write_private(args.output, text, gid)
    except OSError as exc:
        print(f"inkcast turn-config: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"inkcast turn-config: wrote {args.output} (mode 0640); restart coturn to apply it", file=sys.stderr)
    return 0
