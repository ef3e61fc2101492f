"""The whole demo stack in the test's event loop: signaling, a replaying tablet, a link."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inkcast.demo import Demo, DemoConfig
from streamer.pixelformat import I420Converter
from streamer.source import open_source


class ReplayClock:
    """Real time until frozen; the replay draws by it, so a frozen clock is a still screen."""

    def __init__(self):
        self._offset = 0.0
        self._frozen: float | None = None

    def __call__(self) -> float:
        return self._frozen if self._frozen is not None else time.monotonic() + self._offset

    def freeze(self, at: float | None = None) -> None:
        self._frozen = self() if at is None else at

    def jump(self, seconds: float) -> None:
        if self._frozen is not None:
            self._frozen += seconds
        else:
            self._offset += seconds


@dataclass
class Stack:
    demo: Demo
    url: str
    clock: ReplayClock

    @property
    def base(self) -> str:
        return self.url.split("/view")[0]

    @property
    def token(self) -> str:
        return self.url.split("#", 1)[1]

    @property
    def stream(self):
        return self.demo.stream

    @property
    def source(self):
        return self.demo.stream.source

    def expected_gray(self) -> np.ndarray:
        """What the tablet shows now, upright, as full-range gray (what a viewer should see)."""
        layout = self.source.layout
        frame = np.empty(layout.frame_bytes, np.uint8)
        self.source.read_into(frame)
        y = np.empty((layout.page_height, layout.page_width), np.uint8)
        u = np.empty((layout.page_height // 2, layout.page_width // 2), np.uint8)
        v = np.empty_like(u)
        I420Converter(layout, y, u, v).convert(frame)
        return np.clip((y.astype(np.float64) - 16) * 255 / 219, 0, 255)

    async def finish_page(self) -> None:
        """Draw the rest of the page at once and hold it still."""
        self.clock.freeze()
        self.clock.jump(self.source.duration + 60)
        await self.settle()

    async def settle(self, quiet: float = 0.6, timeout: float = 10.0) -> None:
        """Wait until the stream has encoded nothing new for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        seen, since = self.stream.stats.frames_encoded, time.monotonic()
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                raise AssertionError("the stream did not settle")
            await asyncio.sleep(0.05)
            if self.stream.stats.frames_encoded != seen:
                seen, since = self.stream.stats.frames_encoded, time.monotonic()


@asynccontextmanager
async def demo_stack(state_dir: Path, page: Path | None = None, layout: str = "rm2-3.24-bgra",
                     loop: bool = False, pause: float = 3.0, signal_overrides: dict | None = None,
                     signal_hooks: dict | None = None, **tablet_overrides):
    clock = ReplayClock()
    source = open_source("replay", layout_name=layout, path=page, loop=loop, pause=pause, clock=clock)
    overrides = {"refresh_interval": 0.0, **tablet_overrides}
    demo = Demo(DemoConfig(port=0, layout=layout), state_dir, source=source, signal_overrides=signal_overrides,
                signal_hooks=signal_hooks, **overrides)
    try:
        url = await demo.start()
        yield Stack(demo, url, clock)
    finally:
        await demo.stop()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ink_agreement(expected: np.ndarray, seen: np.ndarray, paper: float = 230, tolerance: float = 48) -> float:
    """Of the pixels the tablet shows as ink (anything darker than paper), the share the viewer
    shows within ``tolerance`` gray levels; a blank page scores 0 where PSNR alone would pass."""
    ink = expected < paper
    if not ink.any():
        raise AssertionError("the tablet's picture has no ink at all: nothing to compare")
    return float(np.mean(np.abs(seen[ink].astype(np.float64) - expected[ink]) < tolerance))
