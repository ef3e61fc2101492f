"""TURN credentials by the TURN REST scheme, shared by signaling and coturn.

coturn (``use-auth-secret``) and signaling share one secret. Signaling mints, per viewer session
and per tablet connection, a username ``"<expiry unix seconds>:<name>"`` and the password
``base64(HMAC-SHA1(secret, username))``; coturn recomputes the password from the username and
refuses the username once its expiry has passed (401). Nothing is stored on either side.

The secret is a capability for the whole relay: it is read from a file or ``INKCAST_TURN_SECRET``,
kept out of every repr, and never logged. Minted passwords are short-lived but also kept out of
reprs, since they open the relay until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

SECRET_ENV = "INKCAST_TURN_SECRET"

# A secret must survive being written into turnserver.conf as ``static-auth-secret=...``: one
# line of printable ASCII, no blanks (coturn 4.6.1 keeps '#', '=' and quotes inside a value, as
# tests/test_coturn.py checks). 16 characters is a floor against
# secrets such as "test" reaching production; `openssl rand -hex 32` gives 64.
SECRET_MIN_LENGTH = 16
_SECRET_CHARS = re.compile(rb"[\x21-\x7e]+")

# The name ends up in a STUN USERNAME, in JSON and inside a quoted Link header parameter;
# this alphabet needs no escaping in any of them.
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")

# RFC 7064 (stun/stuns) and RFC 7065 (turn/turns): host is a DNS name, IPv4 or [IPv6];
# browsers reject a ?transport on stun: URIs, so it is refused here too.
_HOST = r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])"
_ICE_URL = re.compile(
    rf"(?P<scheme>stuns?):(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?"
    rf"|(?P<tscheme>turns?):(?P<thost>{_HOST})(?::(?P<tport>[0-9]{{1,5}}))?(?:\?transport=(?P<transport>udp|tcp))?"
)


class TurnSecretError(ValueError):
    """The TURN secret is missing or unfit; the message says what to do."""


@dataclass(frozen=True)
class TurnCredential:
    """A TURN REST username and password, valid until ``expires_at`` (unix seconds)."""

    username: str
    password: str = field(repr=False)
    expires_at: float

    def remaining(self, now: float | None = None) -> float:
        """Seconds until coturn starts refusing this credential (negative once it has)."""
        return self.expires_at - (time.time() if now is None else now)

    def expired(self, now: float | None = None) -> bool:
        return self.remaining(now) <= 0


def mint(secret: bytes, name: str, ttl: float, *, not_after: float | None = None,
         now: float | None = None) -> TurnCredential:
    """Credentials for ``name`` expiring after ``ttl`` seconds, and never after ``not_after``.

    ``not_after`` is how a viewer's TURN credentials expire no later than its viewer link.
    The expiry is rounded down to whole seconds, so it never passes ``not_after``.
    """
    if not secret:
        raise TurnSecretError("the TURN secret is empty")
    if not _NAME.fullmatch(name):
        raise ValueError(f"TURN credential name must be 1-64 of A-Z a-z 0-9 . _ @ -, not {name!r}")
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"TURN credential ttl must be a positive number of seconds, not {ttl!r}")
    now = time.time() if now is None else now
    expiry = now + ttl if not_after is None else min(now + ttl, not_after)
    expires_at = math.floor(expiry)
    if expires_at <= now:
        raise ValueError("TURN credential would be expired already (not_after is in the past)")
    username = f"{expires_at}:{name}"
    return TurnCredential(username, password_for(secret, username), float(expires_at))


def password_for(secret: bytes, username: str) -> str:
    """The password coturn expects for ``username``: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret, username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# -- ICE server URLs -------------------------------------------------------------------------

def check_ice_url(url: str) -> str:
    """The url's scheme (stun, stuns, turn, turns) if it is a well-formed ICE server URI."""
    match = _ICE_URL.fullmatch(url)
    port = match and (match["port"] or match["tport"])
    if not match or (port and not 0 < int(port) < 65536):
        raise ValueError(f"not a stun:/stuns:/turn:/turns: URI (RFC 7064/7065): {url!r}")
    return match["scheme"] or match["tscheme"]


def _needs_credential(url: str) -> bool:
    return check_ice_url(url) in ("turn", "turns")


def ice_servers(urls: list[str], credential: TurnCredential | None) -> list[dict]:
    """W3C RTCIceServer dictionaries: STUN urls bare, TURN urls sharing the credential.

    e.g. ``[{"urls": ["stun:h:3478"]}, {"urls": ["turn:h:3478?transport=udp", ...],
    "username": "1700000000:viewer-x", "credential": "..."}]``
    """
    stun = [url for url in urls if not _needs_credential(url)]
    turn = [url for url in urls if _needs_credential(url)]
    servers: list[dict] = []
    if stun:
        servers.append({"urls": stun})
    if turn:
        if credential is None:
            raise ValueError("TURN urls need a credential")
        servers.append({"urls": turn, "username": credential.username, "credential": credential.password})
    return servers


def link_headers(urls: list[str], credential: TurnCredential | None) -> list[str]:
    """WHEP ``Link`` header values, one per URL (send each as its own ``Link`` header).

    The form is that of RFC 9725 (WHIP) section 4.6, which the WHEP draft reuses word for word:

        Link: <stun:stun.example.net>; rel="ice-server"
        Link: <turn:turn.example.net?transport=udp>; rel="ice-server";
              username="user"; credential="myPassword"; credential-type="password"

    "username: If the Link header field represents a TURN server, and credential-type is
    "password", then this attribute specifies the username to use with that TURN server."
    "credential: If the "credential-type" attribute is missing or has a "password" value, the
    credential attribute represents a long-term authentication password, as described in
    [RFC8489], Section 10.2."  The values are RFC 8288 quoted-strings; names and base64
    passwords hold no '"' or '\\', so no escaping is needed (names are checked by mint()).
    """
    headers = []
    for url in urls:
        if not _needs_credential(url):
            headers.append(f'<{url}>; rel="ice-server"')
            continue
        if credential is None:
            raise ValueError("TURN urls need a credential")
        headers.append(f'<{url}>; rel="ice-server"; username="{credential.username}"; '
                       f'credential="{credential.password}"; credential-type="password"')
    return headers


# -- the shared secret -------------------------------------------------------------------------

def check_secret(secret: bytes, origin: str) -> bytes:
    """``secret`` if it is fit to share with coturn; otherwise a TurnSecretError naming ``origin``."""
    if not secret:
        raise TurnSecretError(f"{origin}: the TURN secret is empty")
    if not _SECRET_CHARS.fullmatch(secret):
        raise TurnSecretError(f"{origin}: the TURN secret must be one line of printable ASCII without "
                              "blanks (coturn reads it from turnserver.conf); "
                              "generate one with: openssl rand -hex 32")
    if len(secret) < SECRET_MIN_LENGTH:
        raise TurnSecretError(f"{origin}: the TURN secret is too short ({len(secret)} characters, at least "
                              f"{SECRET_MIN_LENGTH}); generate one with: openssl rand -hex 32")
    return secret


def load_secret(path: Path | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The shared TURN secret: from ``path`` if given, else from ``INKCAST_TURN_SECRET``.

    Surrounding blanks and the trailing newline are stripped. A file that every user of the
    machine may read (or write) is refused: the secret opens the relay to anyone holding it.
    Group access is allowed, so coturn and signaling can share the file through a group.
    """
    environ = os.environ if environ is None else environ
    if path is None:
        text = environ.get(SECRET_ENV)
        if text is None:
            raise TurnSecretError(f"no TURN secret: set {SECRET_ENV} or give a secret file")
        return check_secret(text.strip().encode("utf-8"), SECRET_ENV)
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise TurnSecretError(f"{path}: the TURN secret file is not a regular file")
            if mode & (stat.S_IROTH | stat.S_IWOTH):
                raise TurnSecretError(f"{path}: the TURN secret file is open to every user "
                                      f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
            data = file.read()
    except OSError as exc:
        raise TurnSecretError(f"{path}: cannot read the TURN secret file: {exc.strerror}") from None
    return check_secret(data.strip(), str(path))


@dataclass(frozen=True)
class TurnSettings:
    """What signaling holds to hand out TURN credentials: the relay's URLs, the secret, a ttl.

    ``urls`` lists STUN and TURN URIs, e.g. ``stun:turn.example.org:3478``,
    ``turn:turn.example.org:3478?transport=udp``, ``...?transport=tcp``,
    ``turns:turn.example.org:5349?transport=tcp``. The secret never shows in repr().
    """

    urls: list[str]
    secret: bytes = field(repr=False)
    ttl: float = 3600.0

    def __post_init__(self) -> None:
        needs_secret = [url for url in self.urls if _needs_credential(url)]
        if needs_secret:
            check_secret(self.secret, "TurnSettings")
        if not (self.ttl > 0 and math.isfinite(self.ttl)):
            raise ValueError(f"TURN credential ttl must be a positive number of seconds, not {self.ttl!r}")

    @classmethod
    def load(cls, urls: list[str], secret_file: Path | None, ttl: float = 3600.0,
             environ: Mapping[str, str] | None = None) -> TurnSettings:
        """Settings whose secret comes from ``secret_file`` or ``INKCAST_TURN_SECRET``."""
        return cls(list(urls), load_secret(secret_file, environ), ttl)

    def mint(self, name: str, *, not_after: float | None = None, now: float | None = None) -> TurnCredential:
        return mint(self.secret, name, self.ttl, not_after=not_after, now=now)

    def ice_servers(self, credential: TurnCredential | None) -> list[dict]:
        return ice_servers(self.urls, credential)

    def link_headers(self, credential: TurnCredential | None) -> list[str]:
        return link_headers(self.urls, credential)
