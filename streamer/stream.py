"""A tablet stream: source -> change detection -> I420 -> the one VP8 encoder -> every viewer.

Capture, conversion and encoding run on one worker thread so the event loop stays free
for RTP, RTCP and signaling; only finished packets come back to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import av
import numpy as np

from .broadcast import Broadcaster
from .capture import CapturePolicy, CaptureSettings
from .changes import ChangeDetector
from .encoder import Vp8Encoder, Vp8Settings
from .pixelformat import I420Converter
from .source import Source

logger = logging.getLogger(__name__)


@dataclass
class StreamStats:
    captures: int = 0
    changed_frames: int = 0
    frames_encoded: int = 0
    keyframes_encoded: int = 0
    # Encodes of an unchanged screen, made only because a keyframe was asked for.
    requested_keyframes_encoded: int = 0
    refreshes_encoded: int = 0
    keyframe_requests: Counter = field(default_factory=Counter)
    # PLI/FIR of a viewer that already holds every frame (see viewerfeedback).
    keyframe_requests_not_needed: int = 0
    bytes_encoded: int = 0
    packets_published: int = 0
    # Thread CPU seconds spent in the worker, by stage.
    cpu_capture: float = 0.0
    cpu_convert: float = 0.0
    cpu_encode: float = 0.0

    @property
    def cpu_total(self) -> float:
        return self.cpu_capture + self.cpu_convert + self.cpu_encode


@dataclass
class _Step:
    packets: list[av.Packet]
    changed: bool
    keyframe: bool


class TabletStream:
    def __init__(self, source: Source, capture: CaptureSettings = CaptureSettings(),
                 vp8: Vp8Settings = Vp8Settings(), clock: Callable[[], float] = time.monotonic,
                 reopen: Callable[[], Source] | None = None):
        layout = source.layout
        self.source = source
        self.layout = layout
        # How to find the screen again when reading it fails (xochitl restarted, say).
        self._reopen = reopen
        self.clock = clock
        self.stats = StreamStats()
        self.encoder = Vp8Encoder(layout.page_width, layout.page_height, vp8)
        self.converter = I420Converter(layout, self.encoder.y, self.encoder.u, self.encoder.v)
        self.detector = ChangeDetector(layout)
        self.policy = CapturePolicy(capture)
        self.broadcaster = Broadcaster(self.request_keyframe)
        # Double buffer: the screen as last converted, and the capture being compared with it.
        self._shown = np.zeros(layout.frame_bytes, dtype=np.uint8)
        self._captured = np.zeros(layout.frame_bytes, dtype=np.uint8)
        self._keyframe_pending = False
        self._wake = asyncio.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="inkcast-capture")
        self._epoch = clock()
        self._primed = False
        self._closed = False

    # -- requests from viewers -------------------------------------------------------------

    def request_keyframe(self, reason: str) -> None:
        self.stats.keyframe_requests[reason] += 1
        self._keyframe_pending = True
        self._wake.set()

    def keyframe_request_not_needed(self) -> None:
        self.stats.keyframe_requests_not_needed += 1

    def track(self, name: str):
        """A new viewer's track; it joins the stream when its sender asks for the first frame."""
        return self.broadcaster.track(name)

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._closed:
                if not self.broadcaster.viewers:
                    # Nobody is watching: no capture at all.
                    await self.broadcaster.wait_for_viewers()
                now = self.clock()
                due = self.policy.next_capture(now)
                if self._keyframe_pending:
                    due = min(due, self.policy.keyframe_allowed_at(now))
                if due > now:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), due - now)
                        continue  # re-plan: a keyframe request may not be allowed yet
                    except asyncio.TimeoutError:
                        pass
                now = started = self.clock()
                keyframe = self._keyframe_pending and self.policy.keyframe_allowed_at(now) <= now
                refresh = not keyframe and self.policy.refresh_due(now)
                if keyframe:
                    self._keyframe_pending = False
                try:
                    step = await loop.run_in_executor(self._worker, self._step, keyframe or refresh, refresh)
                except OSError as exc:
                    if self._reopen is None:
                        raise
                    await self._recover(exc)
                    continue
                # Periods count from the start of a capture, so a slow step does not lower the rate.
                self.policy.captured(started, step.changed)
                if step.packets:
                    self.policy.sent(self.clock(), step.keyframe)
                    self.stats.packets_published += len(step.packets)
                    self.broadcaster.publish(step.packets)
                    if step.keyframe:
                        # Whoever asked while it was being encoded is watching now and gets it.
                        self._keyframe_pending = False
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("the capture loop of %s stopped", self.source.description)
            raise

    async def _recover(self, error: OSError, wait: float = 2.0) -> None:
        logger.warning("reading the screen failed (%s); looking for it again in %.0f s", error, wait)
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(wait)
            try:
                source = await loop.run_in_executor(self._worker, self._reopen)
            except Exception as exc:  # UnsupportedDevice, OSError: keep trying, say why
                logger.warning("the screen is not readable yet: %s", exc)
                wait = min(wait * 2, 30.0)
                continue
            if source.layout != self.layout:
                source.close()
                raise RuntimeError(f"the screen came back as {source.layout.name}, not {self.layout.name}: restart inkcast")
            self.source.close()
            self.source = source
            self._primed = False
            self._keyframe_pending = True
            logger.info("reading the screen again: %s", source.description)
            return

    def prime(self) -> None:
        """Capture and convert the current screen once, so changes count from here on."""
        self.source.read_into(self._shown)
        self.converter.convert(self._shown, None)
        self._primed = True

    def _step(self, keyframe: bool, refresh: bool) -> _Step:
        stats = self.stats
        if not self._primed:
            self.prime()
        t0 = time.thread_time()
        self.source.read_into(self._captured)
        rect = self.detector.compare(self._captured, self._shown)
        stats.captures += 1
        t1 = time.thread_time()
        stats.cpu_capture += t1 - t0
        changed = rect is not None
        if changed:
            shown = self.converter.convert(self._captured, rect)
            self._shown, self._captured = self._captured, self._shown
            # A change outside the visible page (rM1's hidden columns) is no change to a viewer.
            changed = not shown.is_empty
        if not changed and not keyframe:
            stats.cpu_convert += time.thread_time() - t1
            return _Step([], False, False)
        if changed:
            stats.changed_frames += 1
        elif refresh:
            stats.refreshes_encoded += 1
        else:
            stats.requested_keyframes_encoded += 1
        t2 = time.thread_time()
        pts = round((self.clock() - self._epoch) * 90000)
        packets = self.encoder.encode(pts, keyframe)
        t3 = time.thread_time()
        stats.cpu_convert += t2 - t1
        stats.cpu_encode += t3 - t2
        stats.frames_encoded += 1
        stats.keyframes_encoded += sum(1 for p in packets if p.is_keyframe)
        stats.bytes_encoded += sum(p.size for p in packets)
        return _Step(packets, changed, keyframe)

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._worker.shutdown(wait=True, cancel_futures=True)
        self.source.close()
