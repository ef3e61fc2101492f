"""Which part of the frame changed since the last one: no change, no frame.

A BGRA frame is 10.5 MB and the tablet is a 1 GHz ARM, so the comparison is one pass of
8-byte words into a preallocated mask, then ``any`` along rows and, only over the changed rows,
along columns. Word columns are refined to the exact pixel with a few byte compares at the
two edges. Nothing frame-sized is allocated per call.
"""

from __future__ import annotations

import math

import numpy as np

from .pixelformat import Layout, Rect


def _word_dtype(row_bytes: int, stride: int) -> np.dtype:
    # The widest unsigned word that tiles a row's pixels exactly and keeps every row aligned
    # to it, so no word straddles two rows or the padding after a row.
    for size in (8, 4, 2):
        if row_bytes % size == 0 and stride % size == 0:
            return np.dtype(f"<u{size}")
    return np.dtype(np.uint8)


class ChangeDetector:
    """Bounding box of the bytes that differ between two native frames of one layout."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self._row_bytes = layout.width * layout.bytes_per_pixel  # padding after it is ignored
        self._word = _word_dtype(self._row_bytes, layout.stride)
        self._words_per_row = self._row_bytes // self._word.itemsize
        self._mask = np.empty((layout.height, self._words_per_row), np.bool_)
        self._rows = np.empty(layout.height, np.bool_)
        self._cols = np.empty(self._words_per_row, np.bool_)
        w = self._word.itemsize
        self._edge_mask = np.empty((layout.height, w), np.bool_)
        self._first = np.empty(w, np.bool_)
        self._last = np.empty(w, np.bool_)
        self._views: dict[int, tuple[object, np.ndarray, np.ndarray]] = {}

    def _view(self, buf) -> tuple[np.ndarray, np.ndarray]:
        key = id(buf)
        hit = self._views.get(key)
        if hit is not None and hit[0] is buf:
            return hit[1], hit[2]
        layout = self.layout
        nbytes = len(memoryview(buf).cast("B"))
        if nbytes < layout.frame_bytes:
            raise ValueError(f"frame of {nbytes} bytes is smaller than a {layout.name} frame ({layout.frame_bytes})")
        size = self._word.itemsize
        words = np.ndarray((layout.height, self._words_per_row), self._word, buf, 0, (layout.stride, size))
        raw = np.ndarray((layout.height, self._row_bytes), np.uint8, buf, 0, (layout.stride, 1))
        if len(self._views) >= 4:
            self._views.clear()
        self._views[key] = (buf, words, raw)
        return words, raw

    def compare(self, current, previous) -> Rect | None:
        """The box (native pixel coordinates) of pixels that differ; None if the frames are equal."""
        cur_w, cur_b = self._view(current)
        prev_w, prev_b = self._view(previous)
        np.not_equal(cur_w, prev_w, out=self._mask)
        rows = np.any(self._mask, axis=1, out=self._rows)
        if not rows.any():
            return None
        y0 = int(rows.argmax())
        y1 = len(rows) - int(rows[::-1].argmax())
        cols = np.any(self._mask[y0:y1], axis=0, out=self._cols)
        w0 = int(cols.argmax())
        w1 = len(cols) - int(cols[::-1].argmax())  # exclusive

        # Refine the first and last changed words to their first and last changed byte.
        size = self._word.itemsize
        first = self._edge_bytes(cur_b, prev_b, y0, y1, w0 * size, size, self._first)
        last = self._edge_bytes(cur_b, prev_b, y0, y1, (w1 - 1) * size, size, self._last)
        b0 = w0 * size + int(first.argmax())
        b1 = (w1 - 1) * size + size - int(last[::-1].argmax())  # exclusive

        bpp = self.layout.bytes_per_pixel
        x0 = b0 // bpp
        return Rect(x0, y0, math.ceil(b1 / bpp), y1)

    def _edge_bytes(self, cur: np.ndarray, prev: np.ndarray, y0: int, y1: int, start: int, size: int,
                    out: np.ndarray) -> np.ndarray:
        mask = self._edge_mask[: y1 - y0]
        np.not_equal(cur[y0:y1, start:start + size], prev[y0:y1, start:start + size], out=mask)
        return np.any(mask, axis=0, out=out)
