"""Fan-out of the one encoder's packets to every viewer's aiortc sender.

Each viewer gets its own :class:`ViewerTrack` (an aiortc track whose ``recv`` returns
pre-encoded ``av.Packet``s, which aiortc's sender packetises without re-encoding). The
packets are shared, not copied.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger(__name__)

# A viewer more than this many frames behind is dropped back to the next keyframe.
QUEUE_FRAMES = 30


class ViewerTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, broadcaster: "Broadcaster", name: str):
        super().__init__()
        self.name = name
        self._broadcaster = broadcaster
        self._queue: asyncio.Queue[av.Packet] = asyncio.Queue(QUEUE_FRAMES)
        self._attached = False
        self._waiting_for_keyframe = True
        self.packets_delivered = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if not self._attached:
            # The sender asks for its first frame once DTLS is up: that is when a keyframe
            # is useful to this viewer, not when the offer arrived.
            self._attached = True
            self._broadcaster._attach(self)
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.packets_delivered += 1
        return packet

    def _offer(self, packet: av.Packet) -> None:
        if self._waiting_for_keyframe:
            if not packet.is_keyframe:
                return
            self._waiting_for_keyframe = False
        try:
            self._queue.put_nowait(packet)
        except asyncio.QueueFull:
            # A stalled viewer: drop what it has not sent and restart it from a keyframe,
            # rather than letting it fall ever further behind the pen.
            logger.warning("viewer %s fell %d frames behind; resyncing on a keyframe", self.name, QUEUE_FRAMES)
            while not self._queue.empty():
                self._queue.get_nowait()
            self._waiting_for_keyframe = True
            self._broadcaster.request_keyframe("resync")

    def stop(self) -> None:
        if self.readyState == "live":
            self._broadcaster._detach(self)
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                pass
        super().stop()


class Broadcaster:
    """Holds the viewers of one stream and hands each published packet to all of them."""

    def __init__(self, on_keyframe_request: Callable[[str], None]):
        self._viewers: set[ViewerTrack] = set()
        self._on_keyframe_request = on_keyframe_request
        self._changed = asyncio.Event()

    def track(self, name: str) -> ViewerTrack:
        return ViewerTrack(self, name)

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def publish(self, packets: list[av.Packet]) -> None:
        for viewer in list(self._viewers):
            for packet in packets:
                viewer._offer(packet)

    def request_keyframe(self, reason: str) -> None:
        self._on_keyframe_request(reason)

    async def wait_for_viewers(self) -> None:
        while not self._viewers:
            self._changed.clear()
            await self._changed.wait()

    def _attach(self, viewer: ViewerTrack) -> None:
        self._viewers.add(viewer)
        self._changed.set()
        logger.info("viewer %s attached (%d watching)", viewer.name, len(self._viewers))
        self.request_keyframe("join")

    def _detach(self, viewer: ViewerTrack) -> None:
        if viewer in self._viewers:
            self._viewers.discard(viewer)
            self._changed.set()
            logger.info("viewer %s detached (%d watching)", viewer.name, len(self._viewers))
