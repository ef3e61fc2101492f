"""Real aiortc viewers for tests: they make real offers and decode the real stream."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription


def no_servers() -> RTCConfiguration:
    # aiortc's default ICE servers are public STUN servers: tests talk to loopback only.
    return RTCConfiguration(iceServers=[])


async def make_offer(pc: RTCPeerConnection | None = None) -> tuple[RTCPeerConnection, str]:
    pc = pc or RTCPeerConnection(no_servers())
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


class AiortcViewer:
    """A WHEP viewer built on aiortc: connects, counts decoded frames, keeps the last one."""

    def __init__(self, base_url: str, tablet: str, token: str):
        self.base_url = base_url
        self.tablet = tablet
        self.token = token
        self.pc: RTCPeerConnection | None = None
        self.location: str | None = None
        self.frames = 0
        self.last_frame: np.ndarray | None = None  # the last decoded picture, full-range gray
        self.first_frame_at: float | None = None
        self.size: tuple[int, int] | None = None
        self._reader: asyncio.Task | None = None
        self._got_frame = asyncio.Event()

    async def connect(self, http: aiohttp.ClientSession) -> None:
        self.pc, sdp = await make_offer()

        @self.pc.on("track")
        def on_track(track):
            self._reader = asyncio.ensure_future(self._read(track))

        async with http.post(f"{self.base_url}/whep/{self.tablet}", data=sdp,
                             headers={"Content-Type": "application/sdp",
                                      "Authorization": f"Bearer {self.token}"}) as response:
            body = await response.text()
            if response.status != 201:
                raise AssertionError(f"WHEP offer refused: {response.status} {body}")
            self.location = response.headers["Location"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    async def _read(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()
                self.frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
                self.size = (frame.width, frame.height)
                luma = frame.to_ndarray()[: frame.height]  # yuv420p: the Y rows come first
                self.last_frame = np.clip((luma.astype(np.float64) - 16) * 255 / 219, 0, 255)
                self._got_frame.set()
        except MediaStreamError:
            pass

    async def wait_frames(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.frames < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"only {self.frames} frames decoded, wanted {count}")
            self._got_frame.clear()
            try:
                await asyncio.wait_for(self._got_frame.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def close(self, http: aiohttp.ClientSession | None = None) -> None:
        if http is not None and self.location:
            async with http.delete(f"{self.base_url}{self.location}",
                                   headers={"Authorization": f"Bearer {self.token}"}):
                pass
        if self._reader:
            self._reader.cancel()
        if self.pc:
            await self.pc.close()
