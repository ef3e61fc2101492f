"""Which of a viewer's keyframe requests (PLI/FIR) need a keyframe.

Chrome asks for a keyframe whenever it has decoded no frame for 3 s while packets arrived in
the last 5 s (libwebrtc's VideoReceiveStream2::OnDecodableFrameTimeout). On a page that rests
between strokes, that is one request 3 s after every burst of ink: answering each would
re-encode and re-send the whole page to every viewer whenever the pen pauses. Such a request
is not needed when the viewer's own receiver report says it got our last packet: it holds
every frame. A request while frames flow, or from a viewer whose report lags behind what we
sent (a lost tail of the last frame, which no later packet would reveal), gets its keyframe.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from aiortc.rtp import RtcpRrPacket, RtcpSrPacket, is_rtcp

logger = logging.getLogger(__name__)

# Requests later than this after our last packet can be the receiver's timeout: loss-driven
# requests come within a few round trips of the loss.
QUIET = 1.5


def keyframe_needed(now: float, last_sent_at: float | None, last_sent_seq: int | None,
                    reported_highest_seq: int | None) -> bool:
    """Whether a keyframe request at ``now`` must be answered (all inputs from one viewer)."""
    if last_sent_at is None or last_sent_seq is None or reported_highest_seq is None:
        return True
    if now - last_sent_at < QUIET:
        return True
    # The report's extended highest sequence number, compared on 16 bits as RTP wraps.
    return (last_sent_seq - reported_highest_seq) & 0xFFFF != 0


@dataclass
class FeedbackCounts:
    honoured: int = 0
    not_needed: int = 0


class ViewerFeedback:
    """Watches one aiortc sender: its last RTP packet out, the viewer's receiver reports in."""

    def __init__(self, sender, on_keyframe_needed: Callable[[], None], name: str = "",
                 clock: Callable[[], float] = time.monotonic,
                 on_not_needed: Callable[[], None] = lambda: None):
        self.name = name
        self.counts = FeedbackCounts()
        self._sender = sender
        self._on_needed = on_keyframe_needed
        self._on_not_needed = on_not_needed
        self._clock = clock
        self._last_sent_at: float | None = None
        self._last_sent_seq: int | None = None
        self._reported_seq: int | None = None
        # aiortc's sender turns PLI and FIR into _send_keyframe(); receiver reports reach it
        # through _handle_rtcp_packet; its packets leave through its transport's _send_rtp.
        self._handle_rtcp = sender._handle_rtcp_packet
        sender._handle_rtcp_packet = self._on_rtcp
        sender._send_keyframe = self._on_keyframe_request
        self._watched_transport = None

    def watch_transport(self) -> None:
        """Call once the sender has its transport (after setLocalDescription)."""
        transport = self._sender.transport
        if transport is None or transport is self._watched_transport:
            return
        send = transport._send_rtp
        ssrc = self._sender._ssrc

        async def send_rtp(data: bytes) -> None:
            await send(data)
            if len(data) >= 12 and not is_rtcp(data) and int.from_bytes(data[8:12], "big") == ssrc:
                self._last_sent_seq = int.from_bytes(data[2:4], "big")
                self._last_sent_at = self._clock()

        transport._send_rtp = send_rtp
        self._watched_transport = transport

    async def _on_rtcp(self, packet) -> None:
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self._sender._ssrc:
                    self._reported_seq = report.highest_sequence & 0xFFFF
        await self._handle_rtcp(packet)

    def _on_keyframe_request(self) -> None:
        now = self._clock()
        if keyframe_needed(now, self._last_sent_at, self._last_sent_seq, self._reported_seq):
            self.counts.honoured += 1
            self._on_needed()
        else:
            self.counts.not_needed += 1
            self._on_not_needed()
            logger.debug("viewer %s asked for a keyframe %.1f s into a still screen, holding every "
                         "packet: not needed", self.name, now - self._last_sent_at)
