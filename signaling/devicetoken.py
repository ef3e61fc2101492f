"""The token tablets present when they register.

Set by configuration, or generated on first start: then only its hash is stored and the
token itself is printed once. There is no built-in default.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

HASH_FILE = "device-token.sha256"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DeviceTokens:
    def __init__(self, digest: str):
        self._digest = digest

    @classmethod
    def from_token(cls, token: str) -> "DeviceTokens":
        if len(token) < 16:
            raise ValueError("a device token must be at least 16 characters")
        return cls(_digest(token))

    def check(self, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(_digest(presented), self._digest)


def load_or_create(configured: str, state_dir: Path) -> tuple[DeviceTokens, str | None]:
    """The device tokens to accept, and the token itself when it was just generated."""
    if configured:
        return DeviceTokens.from_token(configured), None
    path = state_dir / HASH_FILE
    if path.exists():
        digest = path.read_text().strip()
        if len(digest) == 64:
            return DeviceTokens(digest), None
        logger.error("%s is not a SHA-256 hex digest; generating a new device token", path)
    token = secrets.token_urlsafe(24)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_digest(token) + "\n")
    return DeviceTokens(_digest(token)), token
