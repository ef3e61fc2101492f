"""Native pixels -> upright I420: values, orientation per layout, dirty regions, no allocations."""

import tracemalloc

import av
import numpy as np
import pytest

from streamer.changes import ChangeDetector
from streamer.layouts import KNOWN, LAYOUTS, RM1, RM2_BGRA, RMPP, get_layout
from streamer.pixelformat import (
    ORIENTATIONS,
    I420Converter,
    Layout,
    PixelFormat,
    Rect,
    gray_to_y,
    native_view,
    page_view,
)
from streamer.raster import Canvas
from streamer.rmpage import Ink

ALL_LAYOUTS = sorted(LAYOUTS.values(), key=lambda lay: lay.name)

# How each stored image becomes the upright page, written independently of streamer's
# Orientation class from what the public tools do: reStream's ffmpeg filters for rM2
# (transpose=2 = rotate counter-clockwise; transpose=3 = "clock_flip"), a vertically flipped
# texture for the BGRA layouts, nothing for rM1 (plus the 1404-of-1408 crop).
UPRIGHT_FROM_STORED = {
    PixelFormat.RGB565: lambda s: s[:, :1404],
    PixelFormat.GRAY8: lambda s: np.rot90(s),
    PixelFormat.GRAY16: lambda s: np.rot90(s[::-1]),
    PixelFormat.BGRA32: lambda s: s[::-1],
}
STORED_FROM_UPRIGHT = {
    PixelFormat.GRAY8: lambda p: np.rot90(p, -1),
    PixelFormat.GRAY16: lambda p: np.rot90(p, -1)[::-1],
    PixelFormat.BGRA32: lambda p: p[::-1],
}


def planes(layout, pad=0):
    """Y, U, V as PyAV would hand them: views into buffers with line padding."""
    pw, ph = layout.page_width, layout.page_height
    y = np.full((ph, pw + pad), 7, np.uint8)[:, :pw]
    u = np.full((ph // 2, pw // 2 + pad), 7, np.uint8)[:, : pw // 2]
    v = np.full((ph // 2, pw // 2 + pad), 7, np.uint8)[:, : pw // 2]
    return y, u, v


def encode_gray_page(page: np.ndarray, layout: Layout) -> bytearray:
    """An upright 8-bit gray page -> a native frame, encoded by the test's own rules."""
    buf = bytearray(layout.frame_bytes)
    fmt = layout.pixel_format
    if fmt is PixelFormat.RGB565:
        stored = np.full((layout.height, layout.width), 255, np.uint16)
        stored[:, :1404] = page
        g = stored
        packed = ((g >> 3) << 11) | ((g >> 2) << 5) | (g >> 3)
        np.frombuffer(buf, "<u2").reshape(layout.height, layout.width)[:] = packed
        return buf
    stored = STORED_FROM_UPRIGHT[fmt](page)
    assert stored.shape == (layout.height, layout.width), layout.name
    if fmt is PixelFormat.GRAY8:
        np.frombuffer(buf, np.uint8).reshape(stored.shape)[:] = stored
    elif fmt is PixelFormat.GRAY16:
        raw = np.frombuffer(buf, np.uint8).reshape(layout.height, layout.width, 2)
        raw[..., 0] = (stored.astype(np.uint16) * 30 + 127) // 255
    else:
        raw = np.frombuffer(buf, np.uint8).reshape(layout.height, layout.width, 4)
        raw[..., 0] = raw[..., 1] = raw[..., 2] = stored
        raw[..., 3] = 255
    return buf


def l_marker_page(layout) -> np.ndarray:
    page = np.full((layout.page_height, layout.page_width), 255, np.uint8)
    page[40:240, 40:60] = 0  # the upright stroke of an "L"...
    page[220:240, 40:160] = 0  # ...and its foot
    return page


def check_l(y: np.ndarray, ink=16, paper=235):
    ph, pw = y.shape
    assert y[100, 50] == ink and y[230, 140] == ink, "the L is not in the top-left corner"
    # exactly where it was drawn: no shift or crop error of even one pixel
    assert (y[100, 39], y[100, 40], y[100, 59], y[100, 60]) == (paper, ink, ink, paper)
    assert (y[39, 50], y[40, 50], y[239, 150], y[240, 150]) == (paper, ink, ink, paper)
    assert (y[230, 159], y[230, 160]) == (ink, paper)
    assert y[100, 140] == paper, "the L's empty corner is inked"
    # where a flipped or rotated L would have landed
    for row, col in ((ph - 100, 50), (100, pw - 50), (230, pw - 140), (ph - 230, pw - 140), (50, 100)):
        assert y[row, col] == paper, f"ink at ({row}, {col}): the picture is mirrored or rotated"


ONE_PER_FORMAT_AND_SIZE = [LAYOUTS["rm2-2.0-gray8"], LAYOUTS["rm2-3.6-gray16"], RM1, RM2_BGRA, RMPP]


@pytest.mark.parametrize("layout", ONE_PER_FORMAT_AND_SIZE, ids=lambda lay: lay.name)
def test_l_marker_lands_top_left_after_conversion(layout):
    buf = encode_gray_page(l_marker_page(layout), layout)
    y, u, v = planes(layout, pad=16)
    I420Converter(layout, y, u, v).convert(buf)
    check_l(y)
    assert (u == 128).all() and (v == 128).all()  # black and white have no chroma


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=lambda lay: lay.name)
def test_renderer_writes_the_stored_orientation(layout):
    canvas = Canvas(layout)  # the replay's renderer: it must write what the tablet would store
    canvas.begin(Ink((0, 0, 0), 0))
    canvas.segment(50, 40, 10, 50, 240, 10)
    canvas.segment(50, 230, 10, 150, 230, 10)
    canvas.end()
    stored = native_view(canvas.frame, layout)
    fmt = layout.pixel_format
    if fmt is PixelFormat.BGRA32:
        upright = stored[::-1, : layout.visible_rect.x1, 1]
    else:
        upright = UPRIGHT_FROM_STORED[fmt](stored)
    dark = upright < upright.max() / 2
    assert dark[100, 50] and dark[230, 140] and not dark[100, 140], layout.name
    assert not dark[-100, 50] and not dark[100, -50] and not dark[-230, -140]


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=lambda lay: lay.name)
def test_ink_and_paper_levels(layout):
    canvas = Canvas(layout)
    canvas.begin(Ink((0, 0, 0), 0))
    canvas.segment(300, 300, 12, 600, 300, 12)
    canvas.end()
    y, u, v = planes(layout)
    I420Converter(layout, y, u, v).convert(canvas.frame)
    assert y[300, 450] == 16  # black ink
    assert y[900, 900] == 235  # paper
    assert abs(int(u[450, 450]) - 128) <= 1 and abs(int(v[450, 450]) - 128) <= 1


def test_colour_strokes_have_the_right_chroma_on_paper_pro():
    canvas = Canvas(RMPP)
    for row, rgb in ((200, (214, 41, 41)), (400, (40, 88, 204)), (600, (0, 152, 0))):
        canvas.begin(Ink(rgb, 0))
        canvas.segment(200, row, 20, 800, row, 20)
        canvas.end()
    y, u, v = planes(RMPP)
    I420Converter(RMPP, y, u, v).convert(canvas.frame)
    red_u, red_v = int(u[100, 250]), int(v[100, 250])
    blue_u, blue_v = int(u[200, 250]), int(v[200, 250])
    green_u, green_v = int(u[300, 250]), int(v[300, 250])
    assert red_v > 170 and red_u < 128  # red: Cr strongly positive
    assert blue_u > 170 and blue_v < 128  # blue: Cb strongly positive
    assert green_u < 128 and green_v < 128  # green: both negative
    assert 16 < y[200, 500] < 235


def test_colour_on_a_grayscale_tablet_is_gray():
    # rM2 firmware 3.24 stores BGRA, but its panel is gray: the replay shows colours as gray.
    canvas = Canvas(RM2_BGRA)
    canvas.begin(Ink((214, 41, 41), 51))
    canvas.segment(200, 200, 20, 800, 200, 20)
    canvas.end()
    y, u, v = planes(RM2_BGRA)
    I420Converter(RM2_BGRA, y, u, v).convert(canvas.frame)
    assert (u == 128).all() and (v == 128).all()
    assert y[200, 500] == gray_to_y(51)


def test_bgra_matches_pyav_bt601_limited():
    layout = get_layout("64x48:bgra32")
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(blocks, 8, 0), 8, 1)  # 8x8 blocks: chroma siting cannot matter
    buf = bytearray(layout.frame_bytes)
    px = native_view(buf, layout)
    px[..., 0], px[..., 1], px[..., 2], px[..., 3] = rgb[..., 2], rgb[..., 1], rgb[..., 0], 255
    y, u, v = planes(layout)
    I420Converter(layout, y, u, v).convert(buf)
    ref = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    ry, ru, rv = (np.frombuffer(bytes(p), np.uint8).reshape(-1, p.line_size) for p in ref.planes)
    # compare at the centre of each block, where no chroma filter reaches a neighbour
    for mine, theirs, step in ((y, ry, 8), (u, ru, 4), (v, rv, 4)):
        a = mine[step // 2::step, step // 2::step][:6, :8].astype(int)
        b = theirs[step // 2::step, step // 2::step][:6, :8].astype(int)
        assert np.abs(a - b).max() <= 2, (a - b)


def test_gray_levels_map_to_limited_range_luma():
    g8 = get_layout("256x2:gray8")
    buf = bytearray(np.tile(np.arange(256, dtype=np.uint8), 2).tobytes())
    y, u, v = planes(g8)
    I420Converter(g8, y, u, v).convert(buf)
    want = gray_to_y(np.arange(256))
    assert y[0, 0] == 16 and y[0, 255] == 235
    assert np.abs(y[0].astype(int) - want).max() <= 1

    g16 = get_layout("32x2:gray16")
    raw = np.zeros((2, 32, 2), np.uint8)
    raw[..., 0] = np.arange(32)  # 0..30 is black..white; 31 is beyond white
    y, u, v = planes(g16)
    I420Converter(g16, y, u, v).convert(bytearray(raw.tobytes()))
    assert y[0, 0] == 16 and y[0, 30] == 235 and y[0, 31] == 235
    assert np.abs(y[0, :31].astype(int) - gray_to_y(np.arange(31) * 255 / 30)).max() <= 1


def test_rgb565_luma_matches_the_8bit_matrix():
    lay = get_layout("256x256:rgb565")
    p = np.arange(65536, dtype=np.uint16)
    y, u, v = planes(lay)
    I420Converter(lay, y, u, v).convert(bytearray(p.astype("<u2").tobytes()))
    r5, g6, b5 = p >> 11, (p >> 5) & 63, p & 31
    r, g, b = (r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)
    want = ((66 * r.astype(int) + 129 * g + 25 * b + 128) >> 8) + 16
    assert np.abs(y.ravel().astype(int) - want).max() <= 1
    assert y.ravel()[0] == 16 and y.ravel()[-1] == 235


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=lambda lay: lay.name)
def test_dirty_rect_conversion_equals_full_conversion(layout):
    canvas = Canvas(layout)
    before = bytearray(canvas.frame)
    y, u, v = planes(layout, pad=8)
    conv = I420Converter(layout, y, u, v)
    conv.convert(before)
    canvas.begin(Ink((40, 88, 204), 102))
    canvas.segment(301, 403, 7, 523, 611, 3)  # odd coordinates: the box must grow to even
    canvas.end()
    rect = ChangeDetector(layout).compare(canvas.frame, before)
    assert rect is not None
    updated = conv.convert(canvas.frame, rect)
    assert updated.x0 % 2 == 0 and updated.y1 % 2 == 0 and updated.area < layout.page_width * layout.page_height / 10
    fy, fu, fv = planes(layout)
    I420Converter(layout, fy, fu, fv).convert(canvas.frame)
    assert np.array_equal(y, fy) and np.array_equal(u, fu) and np.array_equal(v, fv)


def test_conversion_returns_page_coordinates_of_a_native_box():
    # rM2 gray16 stores the page anti-transposed: native column x is page row (1872 - 1 - x).
    lay = LAYOUTS["rm2-3.6-gray16"]
    conv = I420Converter(lay, *planes(lay))
    assert conv.convert(bytearray(lay.frame_bytes), Rect(10, 20, 11, 21)) == Rect(1382, 1860, 1384, 1862)
    assert conv.convert(bytearray(lay.frame_bytes), Rect(2000, 0, 2100, 10)).is_empty  # outside


@pytest.mark.parametrize("layout", [RM2_BGRA, LAYOUTS["rm2-3.6-gray16"], RM1], ids=lambda lay: lay.name)
def test_conversion_allocates_nothing_frame_sized(layout):
    frame = Canvas(layout).frame
    conv = I420Converter(layout, *planes(layout))
    conv.convert(frame)
    tracemalloc.start()
    try:
        conv.convert(frame)
        conv.convert(frame, Rect(0, 0, 500, 500))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"{peak} bytes allocated converting a {layout.frame_bytes}-byte frame"


@pytest.mark.parametrize("name", sorted(ORIENTATIONS))
def test_orientation_rects_follow_the_pixels(name):
    o = ORIENTATIONS[name]
    stored = np.arange(7 * 5).reshape(7, 5)  # 5 wide, 7 tall, every value unique
    page = o.apply(stored)
    assert page.shape[::-1] == o.page_size(5, 7)
    box = Rect(1, 2, 4, 6)
    mapped = o.to_page(box, 5, 7)
    rows, cols = box.slices()
    prows, pcols = mapped.slices()
    assert sorted(page[prows, pcols].ravel()) == sorted(stored[rows, cols].ravel())
    assert o.to_stored(mapped, 5, 7) == box


def test_layout_pages_are_upright_portrait():
    for entry in KNOWN:
        lay = entry.layout
        assert lay.page_height > lay.page_width, lay.name
    assert (RM1.page_width, RM1.page_height) == (1404, 1872)
    assert all((LAYOUTS[n].page_width, LAYOUTS[n].page_height) == (1404, 1872)
               for n in ("rm2-2.0-gray8", "rm2-3.6-gray16", "rm2-3.24-bgra"))
    assert (RMPP.page_width, RMPP.page_height) == (1632, 2154)


def test_page_view_is_a_writable_zero_copy_view():
    buf = bytearray(RM2_BGRA.frame_bytes)
    view = page_view(buf, RM2_BGRA)
    view[0, 0] = (1, 2, 3, 4)  # the page's top-left is the stored bottom-left
    assert buf[RM2_BGRA.stride * (RM2_BGRA.height - 1):][:4] == bytes((1, 2, 3, 4))


def test_rects():
    r = Rect(3, 5, 9, 10)
    assert (r.width, r.height) == (6, 5)
    assert r.even() == Rect(2, 4, 10, 10)
    assert r.union(Rect(0, 0, 1, 1)) == Rect(0, 0, 9, 10)
    assert r.union(None) == r
    assert r.intersect(Rect(20, 20, 30, 30)).is_empty
    assert r.clip(8, 8) == Rect(3, 5, 8, 8)


def test_bad_planes_and_sizes_are_refused():
    with pytest.raises(ValueError, match="plane"):
        I420Converter(RM2_BGRA, np.zeros((10, 10), np.uint8), *planes(RM2_BGRA)[1:])
    with pytest.raises(ValueError, match="even"):
        lay = get_layout("15x10:gray8")
        I420Converter(lay, np.zeros((10, 15), np.uint8), np.zeros((5, 7), np.uint8), np.zeros((5, 7), np.uint8))
    with pytest.raises(ValueError, match="smaller"):
        native_view(bytearray(100), RM2_BGRA)
