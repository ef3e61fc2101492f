"""The replay source: a notebook page drawn stroke by stroke at the pace it was written.

Pixels are produced in a chosen device layout's native format and stored orientation, so that
change detection, conversion and encoding downstream run exactly as on that tablet.

Timing: within a stroke, the per-point times of :mod:`streamer.rmpage` (from the speed field).
Between strokes .rm files keep no time at all, so a pen-up gap is derived from how far the pen
travels to the next stroke (at ~20 cm/s in the air, plus a short lift), capped at
``MAX_GAP`` so that demos stay lively. ``read_into`` advances the drawing to ``clock()``,
drawing only the segments that became due, and copies the native canvas out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .hershey import default_page
from .pixelformat import Layout
from .raster import Canvas, blend_for
from .rmpage import PX_PER_MM, Ink, Page, read_page

MIN_GAP = 0.05  # s: lifting and setting down the pen between letters
MAX_GAP = 1.5  # s: longer pauses are cut short
HOVER_SPEED = 300 * PX_PER_MM  # px/s the hand moves between strokes


@dataclass(frozen=True)
class _Timed:
    xy: np.ndarray  # (n, 2) device page pixels
    radius: np.ndarray  # (n,)
    t: np.ndarray  # (n,) seconds from the start of the replay
    ink: Ink
    blend: str


def pen_up_gaps(page: Page) -> np.ndarray:
    """Seconds between the end of each stroke and the start of the next (first entry: 0)."""
    gaps = [0.0]
    for prev, nxt in zip(page.strokes, page.strokes[1:]):
        travel = float(np.hypot(*(nxt.xy[0] - prev.xy[-1])))
        gaps.append(min(MAX_GAP, MIN_GAP + travel / HOVER_SPEED))
    return np.array(gaps[: len(page.strokes)])


class ReplaySource:
    """A :class:`streamer.source.Source` that writes a page, in a device's native pixels."""

    def __init__(self, page: Page, layout: Layout, *, loop: bool = True, pause: float = 3.0,
                 clock=time.monotonic, description: str | None = None):
        self.layout = layout
        self.page = page
        self.loop = loop
        self.pause = pause
        self.clock = clock
        self.description = description or f"replay of {page.name} as {layout.name}"
        self.canvas = Canvas(layout)
        self._strokes = self._schedule(page, layout)
        self.duration = float(self._strokes[-1].t[-1]) if self._strokes else 0.0
        self._t0: float | None = None
        self._stroke = 0  # next stroke to (continue to) draw
        self._point = 0  # next point of that stroke

    @staticmethod
    def _schedule(page: Page, layout: Layout) -> list[_Timed]:
        # Page space (x centred, paper_width wide) -> the device's upright page pixels.
        scale = layout.page_width / page.paper_width
        shift = np.array([page.paper_width / 2, 0.0])
        timed, t = [], 0.0
        for stroke, gap in zip(page.strokes, pen_up_gaps(page)):
            t += gap
            timed.append(_Timed((stroke.xy + shift) * scale, stroke.width * (scale / 2), t + stroke.t,
                                stroke.ink, blend_for(stroke.tool)))
            t += stroke.duration
        return timed

    @property
    def finished(self) -> bool:
        """Every stroke of the current pass is on the canvas."""
        return self._stroke >= len(self._strokes)

    def restart(self) -> None:
        self.canvas.clear()
        self._stroke = self._point = 0

    def advance(self, t: float) -> None:
        """Draw what is due ``t`` seconds into the pass (only the segments not drawn yet)."""
        canvas = self.canvas
        while self._stroke < len(self._strokes):
            s = self._strokes[self._stroke]
            if s.t[0] > t:
                return
            if self._point == 0:
                canvas.begin(s.ink, s.blend)
            due = int(np.searchsorted(s.t, t, side="right"))
            xy, r = s.xy, s.radius
            for i in range(self._point, due):
                j = max(i - 1, 0)  # point 0 is a dot: the pen touching down
                canvas.segment(xy[j, 0], xy[j, 1], r[j], xy[i, 0], xy[i, 1], r[i])
            self._point = due
            if due < len(s.t):
                return
            canvas.end()
            self._stroke += 1
            self._point = 0

    def read_into(self, buf) -> None:
        now = self.clock()
        if self._t0 is None:
            self._t0 = now  # the page starts when the first frame is asked for
        elapsed = now - self._t0
        cycle = self.duration + self.pause
        if self.loop and cycle > 0 and elapsed >= cycle:
            passes = int(elapsed // cycle)
            self._t0 += passes * cycle
            elapsed -= passes * cycle
            self.restart()
        self.advance(elapsed)
        out = memoryview(buf).cast("B")
        if len(out) != self.layout.frame_bytes:
            raise ValueError(f"buffer of {len(out)} bytes for a {self.layout.name} frame of {self.layout.frame_bytes}")
        out[:] = self.canvas.frame

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_replay(path: Path | None, layout: Layout, **kw) -> ReplaySource:
    page = default_page() if path is None else read_page(path)
    return ReplaySource(page, layout, **kw)


def finished_frame(path: Path | None, layout: Layout) -> bytes:
    """A page (None: the built-in one) drawn to its end, as native frame bytes (tests, benchmarks)."""
    t = [0.0]
    source = open_replay(path, layout, loop=False, clock=lambda: t[0])
    buf = bytearray(layout.frame_bytes)
    source.read_into(buf)  # starts the page
    t[0] = source.duration + 1
    source.read_into(buf)
    return bytes(buf)
