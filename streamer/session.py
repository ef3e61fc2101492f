"""The tablet's side of signaling: one outbound WebSocket, answers to viewers' offers.

The tablet only dials out. Over the WebSocket the signaling server forwards each viewer's
WHEP offer; the tablet answers it with a peer connection whose only track is that viewer's
share of the one encoder. Losing the WebSocket does not touch running peer connections
(media does not go through signaling); the session redials by itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import aiohttp
from aiortc import (RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection,
                    RTCSessionDescription)
from aiortc.rtcrtpsender import RTCRtpSender

from signaling import protocol
from .stream import TabletStream
from .viewerfeedback import ViewerFeedback

logger = logging.getLogger(__name__)

ANSWER_TIMEOUT = 10.0


@dataclass
class SessionSettings:
    signal_url: str  # ws(s)://host:port/tablet
    name: str
    device_token: str
    max_viewers: int = 20
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0
    heartbeat: float = 15.0
    # Only relayed candidates (tests of the TURN path; networks that forbid direct UDP).
    relay_only: bool = False
    hello: dict = field(default_factory=dict)


class OfferError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Viewer:
    id: str
    pc: RTCPeerConnection
    track: Any
    feedback: ViewerFeedback | None = None


# How to open the WebSocket: the default dials directly; the tailnet passes its own.
Connector = Callable[[aiohttp.ClientSession, str, dict], Awaitable[aiohttp.ClientWebSocketResponse]]


async def direct_connect(http: aiohttp.ClientSession, url: str, headers: dict, heartbeat: float):
    return await http.ws_connect(url, headers=headers, heartbeat=heartbeat, max_msg_size=protocol.MAX_MESSAGE)


class TabletSession:
    def __init__(self, stream: TabletStream, settings: SessionSettings,
                 http_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
                 connect=direct_connect):
        self.stream = stream
        self.settings = settings
        self._http_factory = http_factory
        self._connect = connect
        self.viewers: dict[str, _Viewer] = {}
        self.ice_servers: list[dict] = []
        self.registered = asyncio.Event()
        self.viewer_url: str | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connections = 0
        self._link_waiter: asyncio.Future | None = None
        self._answering: set[asyncio.Task] = set()

    # -- the signaling connection ------------------------------------------------------

    async def run(self) -> None:
        delay = self.settings.reconnect_min
        async with self._http_factory() as http:
            while True:
                try:
                    await self._connect_once(http)
                    delay = self.settings.reconnect_min
                except asyncio.CancelledError:
                    raise
                except aiohttp.WSServerHandshakeError as exc:
                    if exc.status == 401:
                        logger.error("signaling refused the device token (401): check --device-token "
                                     "(INKCAST_DEVICE_TOKEN); retrying in %.0f s", self.settings.reconnect_max)
                        delay = self.settings.reconnect_max
                    else:
                        logger.warning("signaling refused the connection: %s %s", exc.status, exc.message)
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError, protocol.ProtocolError) as exc:
                    logger.warning("signaling connection failed: %s", exc or type(exc).__name__)
                self.registered.clear()
                self._ws = None
                wait = delay * random.uniform(0.8, 1.2)
                logger.info("redialing signaling in %.1f s", wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.settings.reconnect_max)

    async def _connect_once(self, http: aiohttp.ClientSession) -> None:
        s = self.settings
        headers = {"Authorization": f"Bearer {s.device_token}"}
        ws = await self._connect(http, s.signal_url, headers, s.heartbeat)
        self._ws = ws
        self.connections += 1
        try:
            layout = self.stream.layout
            await ws.send_json({"type": "hello", "name": s.name, "layout": layout.name,
                                "width": layout.page_width, "height": layout.page_height,
                                "viewers": list(self.viewers), **s.hello})
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if msg.type == aiohttp.WSMsgType.ERROR:
                        raise protocol.ProtocolError(f"websocket error: {ws.exception()}")
                    continue
                try:
                    message = protocol.parse(msg.data)
                except protocol.ProtocolError as exc:
                    logger.warning("ignoring a message from signaling: %s", exc)
                    continue
                await self._on_message(ws, message)
        finally:
            if not ws.closed:
                await ws.close()
            logger.info("signaling connection closed (code %s)", ws.close_code)

    async def _on_message(self, ws, message: dict) -> None:
        kind = message["type"]
        if kind == "welcome":
            self.ice_servers = message.get("ice_servers") or []
            self.viewer_url = message.get("viewer_url")
            self.registered.set()
            logger.info("registered with signaling as %r", self.settings.name)
        elif kind == "ice_servers":
            self.ice_servers = message.get("ice_servers") or []
        elif kind == "offer":
            # Each offer is answered in its own task: a slow ICE gathering must not hold
            # up the next viewer or the heartbeat.
            task = asyncio.create_task(self._answer(ws, message))
            self._answering.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._answering.discard)
        elif kind == "close":
            await self.close_viewer(message.get("id", ""), "signaling")
        elif kind == "link":
            if self._link_waiter is not None and not self._link_waiter.done():
                self._link_waiter.set_result(message)
        elif kind == "error":
            logger.warning("signaling: %s", message.get("message"))

    async def mint_link(self, ttl: float, timeout: float = 10.0) -> dict:
        """Ask signaling for a viewer link to this tablet (needs a live connection)."""
        if self._ws is None or self._ws.closed:
            raise ConnectionError("not connected to signaling")
        self._link_waiter = asyncio.get_running_loop().create_future()
        await self._ws.send_json({"type": "mint_link", "ttl": ttl})
        return await asyncio.wait_for(self._link_waiter, timeout)

    async def _answer(self, ws, message: dict) -> None:
        viewer_id = str(message.get("id", ""))
        try:
            sdp = await asyncio.wait_for(self.answer_offer(viewer_id, message.get("sdp", "")), ANSWER_TIMEOUT)
            reply = {"type": "answer", "id": viewer_id, "sdp": sdp}
        except OfferError as exc:
            logger.warning("offer %s refused: %s", viewer_id, exc.message)
            reply = {"type": "error", "id": viewer_id, "status": exc.status, "message": exc.message}
        except asyncio.TimeoutError:
            await self.close_viewer(viewer_id, "timeout")
            reply = {"type": "error", "id": viewer_id, "status": 504, "message": "the tablet timed out answering"}
        except Exception as exc:  # a bug here must not take down the session
            logger.exception("answering offer %s failed", viewer_id)
            await self.close_viewer(viewer_id, "error")
            reply = {"type": "error", "id": viewer_id, "status": 500, "message": f"the tablet failed: {exc}"}
        if not ws.closed:
            await ws.send_json(reply)

    # -- peer connections ----------------------------------------------------------------

    def _rtc_configuration(self) -> RTCConfiguration:
        servers = []
        for entry in self.ice_servers:
            urls = entry.get("urls")
            urls = [urls] if isinstance(urls, str) else list(urls or [])
            if self.settings.relay_only:
                urls = [u for u in urls if u.startswith(("turn:", "turns:"))]
            if urls:
                servers.append(RTCIceServer(urls=urls, username=entry.get("username"),
                                            credential=entry.get("credential")))
        # An explicit list, even empty: aiortc's default is a public STUN server.
        policy = RTCIceTransportPolicy.RELAY if self.settings.relay_only else RTCIceTransportPolicy.ALL
        return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)

    async def answer_offer(self, viewer_id: str, sdp: str) -> str:
        if not viewer_id:
            raise OfferError(400, "offer without an id")
        if viewer_id in self.viewers:
            raise OfferError(409, "a viewer with this id is already connected")
        if len(self.viewers) >= self.settings.max_viewers:
            raise OfferError(503, f"the tablet already has {len(self.viewers)} viewers")
        pc = RTCPeerConnection(self._rtc_configuration())
        track = self.stream.track(viewer_id)
        viewer = _Viewer(viewer_id, pc, track)
        self.viewers[viewer_id] = viewer

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            logger.info("viewer %s: %s", viewer_id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self.close_viewer(viewer_id, pc.connectionState)

        try:
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as exc:
                raise OfferError(400, f"the tablet could not read the offer: {exc}") from None
            transceivers = [t for t in pc.getTransceivers() if t.kind == "video"]
            if not transceivers:
                raise OfferError(400, "the offer has no video section")
            transceiver = transceivers[0]
            # aiortc keeps the offer's direction seen from our side: the viewer must receive.
            if getattr(transceiver, "_offerDirection", "sendonly") not in ("sendonly", "sendrecv"):
                raise OfferError(400, "the offer does not receive video; a viewer must (recvonly)")
            pc.addTrack(track)
            capabilities = RTCRtpSender.getCapabilities("video")
            vp8 = [c for c in capabilities.codecs if c.mimeType in ("video/VP8", "video/rtx")]
            transceiver.setCodecPreferences(vp8)
            # PLI and FIR from this viewer reach the one shared encoder, not a per-sender one,
            # when the viewer really lacks a picture.
            viewer.feedback = ViewerFeedback(
                transceiver.sender, lambda: self.stream.request_keyframe("pli"), viewer_id,
                on_not_needed=self.stream.keyframe_request_not_needed)
            try:
                answer = await pc.createAnswer()
            except Exception as exc:
                raise OfferError(400, f"the offer cannot receive VP8 video: {exc}") from None
            await pc.setLocalDescription(answer)
            viewer.feedback.watch_transport()
            if "VP8" not in pc.localDescription.sdp:
                raise OfferError(400, "the offer does not accept VP8 video")
            return pc.localDescription.sdp
        except BaseException:
            await self.close_viewer(viewer_id, "offer failed")
            raise

    async def close_viewer(self, viewer_id: str, why: str) -> None:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return
        logger.info("closing viewer %s (%s)", viewer_id, why)
        viewer.track.stop()
        await viewer.pc.close()
        if self._ws is not None and not self._ws.closed and why != "signaling":
            try:
                await self._ws.send_json({"type": "closed", "id": viewer_id, "reason": why})
            except ConnectionError:
                pass

    async def close(self) -> None:
        for viewer_id in list(self.viewers):
            await self.close_viewer(viewer_id, "shutdown")
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()

