"""Drawing strokes, segment by segment, into a frame held in a device's native layout.

The canvas keeps two page-space (upright) planes: ``base``, the paper with every finished
stroke, and ``coverage``, how much of each pixel the stroke being drawn covers (the maximum over
its segments, so joints do not double up and a translucent highlighter stays even). Each new
segment only touches its own small box: coverage there is updated, composited over ``base`` and
encoded into the native frame through the layout's upright view, so the frame's bytes are in
the stored orientation and pixel format, exactly as the tablet would hold them.
"""

from __future__ import annotations

import math

import numpy as np

from .pixelformat import Layout, PixelFormat, Rect, native_view, page_view
from .rmpage import Ink, Tool

NORMAL, MULTIPLY, ERASE = "normal", "multiply", "erase"


def blend_for(tool: Tool) -> str:
    if tool in (Tool.HIGHLIGHTER, Tool.SHADER):
        return MULTIPLY  # text under a highlighter stays dark
    if tool in (Tool.ERASER, Tool.ERASE_AREA):
        return ERASE
    return NORMAL


class Canvas:
    """Page-space painting mirrored into ``frame`` (a bytearray in ``layout``'s native format)."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.frame = bytearray(layout.frame_bytes)
        self.color = layout.color
        self.width, self.height = layout.page_width, layout.page_height
        self._native = page_view(self.frame, layout)  # writable: assignments land in stored order
        channels = 3 if self.color else 1
        self.base = np.empty((self.height, self.width, channels), np.uint8)
        self.coverage = np.zeros((self.height, self.width), np.uint8)
        self._ink: np.ndarray | None = None
        self._opacity = 1.0
        self._blend = NORMAL
        self._box: Rect | None = None
        self.clear()

    def clear(self) -> None:
        """Blank paper, in the whole stored frame (also columns outside the visible crop)."""
        self.base.fill(255)
        self.coverage.fill(0)
        self._box = None
        native_view(self.frame, self.layout)[...] = _white(self.layout)

    def begin(self, ink: Ink, blend: str = NORMAL) -> None:
        self.end()
        rgb = ink.rgb if self.color else (ink.gray,)
        self._ink = np.array(rgb if blend != ERASE else (255,) * len(rgb), np.float32)
        self._opacity = ink.opacity if blend != ERASE else 1.0
        self._blend = blend
        self._box = None

    def segment(self, ax: float, ay: float, ar: float, bx: float, by: float, br: float) -> Rect | None:
        """A capsule from (ax, ay) radius ar to (bx, by) radius br, in page pixels."""
        r = max(ar, br) + 1.0
        box = Rect(max(0, math.floor(min(ax, bx) - r)), max(0, math.floor(min(ay, by) - r)),
                   min(self.width, math.ceil(max(ax, bx) + r) + 1), min(self.height, math.ceil(max(ay, by) + r) + 1))
        if box.is_empty:
            return None
        xs = np.arange(box.x0, box.x1, dtype=np.float32) + (0.5 - ax)
        ys = np.arange(box.y0, box.y1, dtype=np.float32)[:, None] + (0.5 - ay)
        ux, uy = bx - ax, by - ay
        length2 = ux * ux + uy * uy
        if length2 > 1e-9:
            t = np.clip((xs * ux + ys * uy) / length2, 0.0, 1.0)
            ex, ey = xs - t * ux, ys - t * uy
            radius = ar + t * (br - ar)
        else:
            ex, ey, radius = xs + 0 * ys, ys + 0 * xs, ar
        cover = np.clip(radius + 0.5 - np.sqrt(ex * ex + ey * ey), 0.0, 1.0)
        cov = self.coverage[box.slices()]
        np.maximum(cov, (cover * 255 + 0.5).astype(np.uint8), out=cov)
        self._box = box.union(self._box)
        self._show(box)
        return box

    def end(self) -> None:
        """Commit the stroke being drawn into ``base``."""
        if self._box is not None and self._ink is not None:
            rows, cols = self._box.slices()
            self.base[rows, cols] = self._composite(self._box)
            self.coverage[rows, cols] = 0
        self._box = None

    def _composite(self, box: Rect) -> np.ndarray:
        rows, cols = box.slices()
        base = self.base[rows, cols].astype(np.float32)
        a = self.coverage[rows, cols, None].astype(np.float32) * (self._opacity / 255.0)
        if self._blend == MULTIPLY:
            out = base * (1.0 - a * (1.0 - self._ink / 255.0))
        else:
            out = base + (self._ink - base) * a
        return (out + 0.5).astype(np.uint8)

    def _show(self, box: Rect) -> None:
        _encode(self._composite(box), self._native[box.slices()], self.layout.pixel_format)


def _white(layout: Layout):
    fmt = layout.pixel_format
    if fmt is PixelFormat.BGRA32:
        return np.array([255, 255, 255, 255], np.uint8)
    if fmt is PixelFormat.GRAY16:
        return 30
    if fmt is PixelFormat.GRAY8:
        return 0xFF
    return 0xFFFF


def _encode(tile: np.ndarray, native: np.ndarray, fmt: PixelFormat) -> None:
    """Page-space uint8 (h, w, 1 or 3) -> a native upright view, in the device's encoding."""
    if fmt is PixelFormat.BGRA32:
        if tile.shape[2] == 3:
            native[..., 0], native[..., 1], native[..., 2] = tile[..., 2], tile[..., 1], tile[..., 0]
        else:
            native[..., 0] = native[..., 1] = native[..., 2] = tile[..., 0]
        native[..., 3] = 255
        return
    gray = tile[..., 0].astype(np.uint16) if tile.shape[2] == 1 else \
        np.round(tile @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint16)
    if fmt is PixelFormat.RGB565:
        native[...] = ((gray >> 3) << 11) | ((gray >> 2) << 5) | (gray >> 3)
        return
    level = (gray * 15 + 127) // 255  # the rM2 panel has 16 gray levels
    native[...] = level * 2 if fmt is PixelFormat.GRAY16 else level * 17
