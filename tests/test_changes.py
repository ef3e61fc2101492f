"""The change detector finds exactly the box of what changed, and nothing when nothing did."""

import tracemalloc

import numpy as np
import pytest

from streamer.changes import ChangeDetector
from streamer.layouts import LAYOUTS, RM2_BGRA, get_layout
from streamer.pixelformat import Rect

LAYOUT_NAMES = ["rm1-rgb565", "rm2-2.0-gray8", "rm2-3.6-gray16", "rm2-3.24-bgra", "rmppm-bgra"]


def frame(layout, fill=0xFF):
    return bytearray(bytes([fill]) * layout.frame_bytes)


def poke(buf, layout, x, y, byte=0):
    at = y * layout.stride + x * layout.bytes_per_pixel + byte
    buf[at] ^= 0x5A


def reference_box(a, b, layout):
    """The box of differing pixels, the slow obvious way."""
    pa = np.frombuffer(a, np.uint8).reshape(layout.height, layout.stride)[:, : layout.width * layout.bytes_per_pixel]
    pb = np.frombuffer(b, np.uint8).reshape(layout.height, layout.stride)[:, : layout.width * layout.bytes_per_pixel]
    diff = (pa != pb).reshape(layout.height, layout.width, layout.bytes_per_pixel).any(axis=2)
    ys, xs = np.nonzero(diff)
    if len(ys) == 0:
        return None
    return Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_equal_frames_are_unchanged(name):
    layout = LAYOUTS[name]
    det = ChangeDetector(layout)
    a = frame(layout)
    assert det.compare(a, bytearray(a)) is None
    assert det.compare(a, a) is None


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_a_single_changed_pixel_is_found_exactly_at_corners_and_middle(name):
    layout = LAYOUTS[name]
    det = ChangeDetector(layout)
    w, h = layout.width, layout.height
    base = frame(layout)
    for x, y in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (w // 2, h // 3), (1, 1), (w - 2, h - 2)):
        for byte in range(layout.bytes_per_pixel):  # any byte of the pixel, e.g. BGRA's alpha
            cur = bytearray(base)
            poke(cur, layout, x, y, byte)
            assert det.compare(cur, base) == Rect(x, y, x + 1, y + 1), (x, y, byte)


def test_the_very_last_byte():
    layout = RM2_BGRA
    base = frame(layout)
    cur = bytearray(base)
    cur[-1] ^= 1
    w, h = layout.width, layout.height
    assert ChangeDetector(layout).compare(cur, base) == Rect(w - 1, h - 1, w, h)


def test_two_changes_give_their_bounding_box():
    layout = LAYOUTS["rm2-3.6-gray16"]
    base = frame(layout, 30)
    cur = bytearray(base)
    poke(cur, layout, 700, 90)
    poke(cur, layout, 13, 1200, byte=1)
    assert ChangeDetector(layout).compare(cur, base) == Rect(13, 90, 701, 1201)


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_random_regions_match_the_obvious_computation(name):
    layout = LAYOUTS[name]
    det = ChangeDetector(layout)
    rng = np.random.default_rng(sum(map(ord, name)))
    base = bytearray(rng.integers(0, 256, layout.frame_bytes, dtype=np.uint8).tobytes())
    for _ in range(5):
        cur = bytearray(base)
        for _ in range(int(rng.integers(1, 6))):
            x, y = int(rng.integers(0, layout.width)), int(rng.integers(0, layout.height))
            poke(cur, layout, x, y, int(rng.integers(0, layout.bytes_per_pixel)))
        assert det.compare(cur, base) == reference_box(cur, base, layout)


def test_padding_past_the_last_pixel_is_not_a_change():
    layout = get_layout("10x4:gray8:stride=16")
    base = frame(layout)
    cur = bytearray(base)
    cur[layout.stride + 12] ^= 1  # row 1, in the 6 padding bytes
    det = ChangeDetector(layout)
    assert det.compare(cur, base) is None
    cur[layout.stride * 2 + 9] ^= 1
    assert det.compare(cur, base) == Rect(9, 2, 10, 3)


def test_odd_strides_still_work():
    layout = get_layout("7x3:gray8")  # 7-byte rows: no wide word tiles them
    base = frame(layout)
    cur = bytearray(base)
    poke(cur, layout, 6, 2)
    assert ChangeDetector(layout).compare(cur, base) == Rect(6, 2, 7, 3)


def test_compare_allocates_nothing_frame_sized():
    layout = RM2_BGRA
    det = ChangeDetector(layout)
    a, b = frame(layout), frame(layout)
    poke(b, layout, 500, 600)
    det.compare(a, b)
    tracemalloc.start()
    try:
        det.compare(a, b)
        det.compare(a, a)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, peak


def test_short_buffers_are_refused():
    with pytest.raises(ValueError, match="smaller"):
        ChangeDetector(RM2_BGRA).compare(bytearray(10), bytearray(10))
