"""Viewer links: unguessable, expiring, revocable capabilities to watch one tablet.

A link's token is 256 random bits shown once, when it is minted; only its SHA-256 is
kept, so the state file does not hold working links.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

logger = logging.getLogger(__name__)


class LinkError(Exception):
    """Why a token does not open a stream; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ViewerLink:
    id: str
    tablet: str
    expires_at: float
    created_at: float
    label: str = ""
    revoked: bool = False

    def public(self) -> dict:
        return asdict(self)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LinkStore:
    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time):
        self._path = path
        self._clock = clock
        self._by_digest: dict[str, ViewerLink] = {}
        if path is not None and path.exists():
            self._load(path)

    def mint(self, tablet: str, ttl: float, label: str = "") -> tuple[str, ViewerLink]:
        if ttl <= 0:
            raise ValueError("a link's lifetime must be positive")
        now = self._clock()
        token = secrets.token_urlsafe(32)
        link = ViewerLink(id=secrets.token_hex(6), tablet=tablet, expires_at=now + ttl, created_at=now, label=label)
        self._by_digest[_digest(token)] = link
        self._forget_expired(now)
        self._save()
        logger.info("minted link %s for %s, valid %.0f s", link.id, tablet, ttl)
        return token, link

    def check(self, token: str | None) -> ViewerLink:
        if not token:
            raise LinkError(401, "this needs a viewer link's token (Authorization: Bearer ...)")
        link = self._by_digest.get(_digest(token))
        if link is None:
            raise LinkError(401, "unknown viewer link: ask whoever shared it for a new one")
        if link.revoked:
            raise LinkError(401, "this viewer link was revoked")
        if self._clock() >= link.expires_at:
            raise LinkError(401, "this viewer link has expired")
        return link

    def still_valid(self, link: ViewerLink) -> bool:
        return not link.revoked and self._clock() < link.expires_at

    def revoke(self, link_id: str) -> ViewerLink:
        for link in self._by_digest.values():
            if link.id == link_id:
                link.revoked = True
                self._save()
                logger.info("revoked link %s of %s", link.id, link.tablet)
                return link
        raise KeyError(link_id)

    def links(self, tablet: str | None = None) -> list[ViewerLink]:
        return [l for l in self._by_digest.values() if tablet is None or l.tablet == tablet]

    def _forget_expired(self, now: float) -> None:
        # Expired links stay a day, so that "expired" can be told apart from "unknown".
        for digest, link in list(self._by_digest.items()):
            if now - link.expires_at > 86400:
                del self._by_digest[digest]

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            for digest, fields in data.items():
                self._by_digest[digest] = ViewerLink(**fields)
        except (ValueError, TypeError) as exc:
            logger.error("ignoring unreadable link store %s: %s", path, exc)

    def _save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({d: l.public() for d, l in self._by_digest.items()}, f)
        os.replace(tmp, self._path)
