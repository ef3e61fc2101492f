"""Signaling on the tailnet: tablets register there only, and are known by their tailnet identity.

The tablet WebSocket is served on a libtailscale listener; the LocalAPI's WhoIs on the peer's
address says which node (name, user, tags) is calling, so the allow-list needs no secret on
the tablet at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from streamer.tailnet import TailnetError, TailnetNode, WhoIs, tailnet_peer

from .registry import SignalError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AllowList:
    tags: frozenset[str] = frozenset()
    nodes: frozenset[str] = frozenset()

    def allows(self, who: WhoIs) -> bool:
        # Node names: the bare host name or the full MagicDNS name, as an admin would write it.
        names = {who.hostname, who.node_name, who.node_name.split(".", 1)[0]}
        return bool(self.tags.intersection(who.tags) or self.nodes.intersection(names))

    def __str__(self) -> str:
        return ", ".join(sorted(self.tags | self.nodes)) or "nobody"


class TailnetIdentity:
    """The ``identify_tablet`` hook of SignalState: the calling node's identity, if allowed."""

    def __init__(self, node: TailnetNode, allow: AllowList):
        self.node = node
        self.allow = allow

    async def __call__(self, request: web.Request) -> str | None:
        peer = tailnet_peer(request)
        if peer is None:
            logger.warning("tablet connection from %s did not come over the tailnet: refused", request.remote)
            return None
        try:
            who = await self.node.whois(peer)
        except TailnetError as exc:
            # Not a verdict on the tablet: it may try again.
            raise SignalError(503, f"cannot check the tablet's tailnet identity now: {exc.errmsg or exc}",
                              retry_after=5) from None
        description = f"tailnet node {who.node_name} of {who.user_login}" + (f" ({', '.join(who.tags)})" if who.tags else "")
        if not self.allow.allows(who):
            logger.warning("%s may not register as a tablet (allowed: %s)", description, self.allow)
            return None
        return description
