"""The state of signaling: which tablets are online, and which viewer sessions they serve.

All of it lives here, in one object the handlers share; the handlers only translate
between HTTP/WebSocket and these calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .links import ViewerLink

logger = logging.getLogger(__name__)

ENDED_KEPT = 1000


class SignalError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass
class ViewerSession:
    id: str
    tablet: str
    link: ViewerLink
    created_at: float


@dataclass
class TabletConnection:
    name: str
    ws: Any  # aiohttp WebSocketResponse, or anything with an async send_json
    info: dict
    connected_at: float = field(default_factory=time.time)
    pending: dict[str, asyncio.Future] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)

    async def send(self, message: dict) -> None:
        await self.ws.send_json(message)


class Registry:
    def __init__(self, state_dir: Path | None = None, max_viewers: int = 20):
        self._known_path = state_dir / "tablets.json" if state_dir else None
        self.max_viewers = max_viewers
        self.tablets: dict[str, TabletConnection] = {}
        self.sessions: dict[str, ViewerSession] = {}
        self.known: set[str] = set()
        # Ids of sessions that ended lately, oldest first: a hang-up racing the end is no error.
        self._ended: dict[str, None] = {}
        if self._known_path and self._known_path.exists():
            try:
                self.known = set(json.loads(self._known_path.read_text()))
            except ValueError as exc:
                logger.error("ignoring unreadable %s: %s", self._known_path, exc)

    # -- tablets -------------------------------------------------------------------------

    async def register(self, name: str, ws: Any, info: dict) -> TabletConnection:
        old = self.tablets.get(name)
        conn = TabletConnection(name, ws, info)
        self.tablets[name] = conn
        if old is not None:
            # The same tablet again (it changed network, or woke up) before its old
            # connection timed out: the newest one wins.
            logger.info("tablet %s reconnected; dropping its previous connection", name)
            conn.sessions = old.sessions
            self._fail_pending(old, SignalError(503, "the tablet reconnected while answering; try again"))
            await old.ws.close()
        for session_id in info.get("viewers") or []:
            # Viewers the tablet still serves from before a signaling restart.
            if session_id in self.sessions:
                conn.sessions.add(session_id)
        if name not in self.known:
            self.known.add(name)
            self._save_known()
        logger.info("tablet %s online (%s, %sx%s)", name, info.get("layout"), info.get("width"), info.get("height"))
        return conn

    def unregister(self, conn: TabletConnection) -> None:
        if self.tablets.get(conn.name) is conn:
            del self.tablets[conn.name]
            logger.info("tablet %s offline", conn.name)
        self._fail_pending(conn, SignalError(503, "the tablet went offline while answering", retry_after=5))

    def _fail_pending(self, conn: TabletConnection, error: SignalError) -> None:
        for future in conn.pending.values():
            if not future.done():
                future.set_exception(error)
        conn.pending.clear()

    def state(self, name: str) -> str:
        if name in self.tablets:
            return "online"
        return "offline" if name in self.known else "unknown"

    # -- viewers -------------------------------------------------------------------------

    async def offer(self, name: str, sdp: str, link: ViewerLink, timeout: float) -> tuple[ViewerSession, str]:
        """Forward a viewer's offer to its tablet; the session and the tablet's answer."""
        conn = self.tablets.get(name)
        if conn is None:
            if name in self.known:
                raise SignalError(503, f"tablet {name} is offline", retry_after=5)
            raise SignalError(404, f"no tablet named {name}")
        if len(conn.sessions) >= self.max_viewers:
            raise SignalError(503, f"tablet {name} already has {len(conn.sessions)} viewers", retry_after=30)
        session = ViewerSession(secrets.token_urlsafe(16), name, link, time.time())
        future = asyncio.get_running_loop().create_future()
        conn.pending[session.id] = future
        try:
            await conn.send({"type": "offer", "id": session.id, "sdp": sdp})
            answer = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            await self._tell(conn, {"type": "close", "id": session.id})
            raise SignalError(504, f"tablet {name} did not answer within {timeout:g} s") from None
        except ConnectionError:
            raise SignalError(503, f"tablet {name} went offline", retry_after=5) from None
        finally:
            conn.pending.pop(session.id, None)
        self.sessions[session.id] = session
        conn.sessions.add(session.id)
        return session, answer

    def on_tablet_message(self, conn: TabletConnection, message: dict) -> None:
        kind = message["type"]
        session_id = str(message.get("id", ""))
        if kind in ("answer", "error"):
            future = conn.pending.get(session_id)
            if future is None or future.done():
                logger.info("tablet %s: late %s for %s ignored", conn.name, kind, session_id)
                return
            if kind == "answer" and isinstance(message.get("sdp"), str):
                future.set_result(message["sdp"])
            else:
                status = message.get("status")
                status = status if isinstance(status, int) and 400 <= status < 600 else 502
                future.set_exception(SignalError(status, f"tablet {conn.name}: {message.get('message', 'refused the offer')}"))
        elif kind == "closed":
            self._forget(session_id)

    async def end_session(self, session_id: str, why: str) -> ViewerSession:
        session = self._forget(session_id)
        if session is None:
            raise SignalError(404, "no such viewer session")
        conn = self.tablets.get(session.tablet)
        if conn is not None:
            await self._tell(conn, {"type": "close", "id": session_id})
        logger.info("viewer session %s on %s ended (%s)", session_id, session.tablet, why)
        return session

    def recently_ended(self, session_id: str) -> bool:
        return session_id in self._ended

    def _forget(self, session_id: str) -> ViewerSession | None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            self._ended[session_id] = None
            while len(self._ended) > ENDED_KEPT:
                self._ended.pop(next(iter(self._ended)))
            conn = self.tablets.get(session.tablet)
            if conn is not None:
                conn.sessions.discard(session_id)
        return session

    async def _tell(self, conn: TabletConnection, message: dict) -> None:
        try:
            await conn.send(message)
        except ConnectionError:
            pass

    def _save_known(self) -> None:
        if self._known_path is not None:
            self._known_path.parent.mkdir(parents=True, exist_ok=True)
            self._known_path.write_text(json.dumps(sorted(self.known)))
