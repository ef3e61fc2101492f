"""Replaying real .rm pages (and the built-in Hershey page) at pen speed, in native pixels."""

import numpy as np
import pytest
from rmscene import read_tree
from rmscene import scene_items as si

from streamer.hershey import default_page, load_font
from streamer.layouts import LAYOUTS, RM1, RM2_BGRA, RMPP
from streamer.pixelformat import I420Converter, PixelFormat, native_bytes, native_view
from streamer.raster import Canvas
from streamer.replay import MAX_GAP, ReplaySource, pen_up_gaps
from streamer.rmpage import read_page
from streamer.source import Source, open_source

PAGES = ["Lines_v2.rm", "Normal_A_stroke_2_layers_v3.3.2.rm", "Color_and_tool_v3.14.4.rm"]


class FakeClock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


def luma(source) -> np.ndarray:
    lay = source.layout
    y = np.empty((lay.page_height, lay.page_width), np.uint8)
    u = np.empty((lay.page_height // 2, lay.page_width // 2), np.uint8)
    buf = bytearray(lay.frame_bytes)
    source.read_into(buf)
    I420Converter(lay, y, u, u.copy()).convert(buf)
    return y


def run_to_end(source, clock):
    luma(source)  # the first read starts the page
    clock.t += source.duration + 0.01
    return luma(source)


def rmscene_lines(path):
    """(points array, group id, anchored) per line straight from rmscene, in creation order."""
    with open(path, "rb") as f:
        tree = read_tree(f)
    out = []

    def walk(group, anchored):
        anchored = anchored or group.anchor_id is not None
        for item_id, child in group.children.items():
            if isinstance(child, si.Group):
                walk(child, anchored)
            elif isinstance(child, si.Line) and child.points:
                pts = np.array([(p.x, p.y) for p in child.points])
                out.append(((item_id.part2, item_id.part1), pts, group.node_id, anchored, int(child.tool)))

    walk(tree.root, False)
    out.sort(key=lambda line: line[0])
    paper = tree.scene_info.paper_size if tree.scene_info and tree.scene_info.paper_size else (1404, 1872)
    return out, paper


@pytest.mark.parametrize("name", PAGES)
def test_page_coordinates_are_rmscenes(rm_fixtures, name):
    page = read_page(rm_fixtures / name)
    lines, paper = rmscene_lines(rm_fixtures / name)
    assert (page.paper_width, page.paper_height) == tuple(map(float, paper))
    strokes = {s.item: s for s in page.strokes}
    offsets = {}
    for key, pts, group, anchored, _ in lines:
        shift = strokes[key].xy - pts
        assert np.ptp(shift, axis=0).max() < 1e-6  # a pure translation
        if not anchored:
            assert np.abs(shift).max() < 1e-6  # exactly rmscene's coordinates
        offsets.setdefault(group, shift[0])
        assert np.allclose(offsets[group], shift[0])  # one offset per group: its text anchor
    assert [s.item for s in page.strokes if s.item in dict((k, 0) for k, *_ in lines)] == [k for k, *_ in lines]


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("layout", [RM2_BGRA, RM1, RMPP, LAYOUTS["rm2-3.6-gray16"]], ids=lambda lay: lay.name)
def test_replay_ends_with_ink_where_the_strokes_are(rm_fixtures, name, layout):
    clock = FakeClock()
    src = open_source("replay", layout_name=layout.name, path=rm_fixtures / name, loop=False, clock=clock)
    y = run_to_end(src, clock)
    assert src.finished
    page = read_page(rm_fixtures / name)
    scale = layout.page_width / page.paper_width
    checked = 0
    for stroke in page.strokes:
        if stroke.tool.value in ("eraser", "erase area"):
            continue
        # pens leave dark ink; highlighters and the shader only darken the paper a little
        ink = y < (233 if stroke.ink.opacity < 0.5 else 200)
        for x, yy in stroke.xy[:: max(1, stroke.points // 8)]:
            col, row = int((x + page.paper_width / 2) * scale), int(yy * scale)
            if 0 <= row < y.shape[0] and 0 <= col < y.shape[1]:
                assert ink[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3].any(), (name, stroke.tool, x, yy)
                checked += 1
    assert checked > 40
    # and away from every stroke the page is paper
    assert y[-40, 40] == 235 and y[-40, -40] == 235 and y[-300, y.shape[1] // 2] == 235


@pytest.mark.parametrize("name", PAGES)
def test_durations_are_plausible(rm_fixtures, name):
    page = read_page(rm_fixtures / name)
    src = ReplaySource(page, RM2_BGRA, clock=FakeClock())
    gaps = pen_up_gaps(page)
    assert 0 < page.ink_duration < src.duration <= page.ink_duration + len(page.strokes) * MAX_GAP
    assert gaps.max() <= MAX_GAP
    intervals = np.concatenate([np.diff(s.t) for s in page.strokes if s.points > 2])
    # a digitizer's few milliseconds between points, not microseconds nor tenths of a second
    assert 0.002 < float(np.median(intervals)) < 0.012
    long_strokes = [s for s in page.strokes if s.points > 20 and s.tool.value != "highlighter"]
    assert all(0.05 < s.duration < 3.0 for s in long_strokes)
    assert 1.0 < src.duration < 60.0


def test_intermediate_times_show_partial_strokes(rm_fixtures):
    page = read_page(rm_fixtures / "Lines_v2.rm")
    clock = FakeClock()
    src = ReplaySource(page, RM2_BGRA, loop=False, clock=clock)
    luma(src)
    timeline = src._strokes
    longest = max(range(len(timeline)), key=lambda i: np.ptp(timeline[i].xy[:, 0]))
    s = timeline[longest]
    half = len(s.t) // 2
    clock.t = float(s.t[half])
    y = luma(src)
    assert not src.finished
    first, last = s.xy[1].astype(int), s.xy[-1].astype(int)
    assert y[first[1] - 2:first[1] + 3, first[0] - 2:first[0] + 3].min() < 100  # drawn already
    assert y[last[1] - 2:last[1] + 3, last[0] - 2:last[0] + 3].min() == 235  # not yet
    later = [t.xy[0].astype(int) for t in timeline[longest + 1:]]
    assert all(y[r - 2:r + 3, c - 2:c + 3].min() == 235 for c, r in later)
    ink_mid = int((y < 200).sum())
    clock.t = src.duration + 1
    assert int((luma(src) < 200).sum()) > ink_mid


def test_only_new_segments_are_drawn(rm_fixtures):
    page = read_page(rm_fixtures / "Lines_v2.rm")
    clock = FakeClock()
    src = ReplaySource(page, RM2_BGRA, loop=False, clock=clock)
    calls = []
    real = src.canvas.segment
    src.canvas.segment = lambda *a: calls.append(a) or real(*a)
    luma(src)
    clock.t = 1.0
    luma(src)
    n1 = len(calls)
    luma(src)  # same time: nothing new
    assert len(calls) == n1
    clock.t = src.duration + 5
    luma(src)
    luma(src)
    assert len(calls) == sum(s.points for s in page.strokes)  # every point exactly once


def test_loop_pauses_clears_and_starts_again():
    page = default_page()
    clock = FakeClock(100.0)
    src = ReplaySource(page, RM2_BGRA, loop=True, pause=3.0, clock=clock)
    luma(src)
    clock.t += src.duration + 1.0  # finished, pausing
    y = luma(src)
    assert src.finished and (y < 128).sum() > 10000
    clock.t += 2.5  # pause over: a fresh page, barely started
    y = luma(src)
    assert not src.finished and (y < 128).sum() < 2000


def test_no_loop_stays_finished():
    clock = FakeClock()
    src = ReplaySource(default_page(), RM2_BGRA, loop=False, pause=0.0, clock=clock)
    luma(src)
    clock.t += src.duration * 3
    assert (luma(src) < 128).sum() > 10000 and src.finished


def test_hershey_page_is_written_and_legible_ish():
    page = default_page()
    assert len(load_font()) >= 95 and page.strokes
    clock = FakeClock()
    src = open_source("replay", layout_name=None, path=None, loop=False, clock=clock)
    assert isinstance(src, Source) and "Hershey" in src.description and src.layout is RM2_BGRA
    assert 15 < src.duration < 60
    counts = []
    for t in np.linspace(0, src.duration + 0.1, 6):
        clock.t = float(t)
        counts.append(int((luma(src) < 128).sum()))
    y = luma(src)
    assert counts == sorted(counts) and counts[0] < counts[-1]  # ink only grows (no eraser)
    ink = y < 128
    assert 20_000 < ink.sum() < 200_000
    rows = np.nonzero(ink.any(axis=1))[0]
    assert 150 < rows.min() and rows.max() < 900  # the writing sits in the upper half
    title = ink[170:240]
    cols = np.nonzero(title.any(axis=0))[0]
    assert cols.max() - cols.min() > 1000  # a title across the page
    # letters, not blobs: the title band is mostly paper between thin strokes
    assert 0.03 < title[:, cols.min():cols.max()].mean() < 0.3
    assert not ink[1000:].any()


def test_native_encodings_are_the_devices(rm_fixtures):
    page = read_page(rm_fixtures / "Color_and_tool_v3.14.4.rm")
    for layout in (LAYOUTS["rm2-3.6-gray16"], RM1, RM2_BGRA, RMPP):
        clock = FakeClock()
        src = ReplaySource(page, layout, loop=False, clock=clock)
        buf = bytearray(layout.frame_bytes)
        src.read_into(buf)
        clock.t = src.duration + 1
        src.read_into(buf)
        if layout.pixel_format is PixelFormat.GRAY16:
            raw = native_bytes(buf, layout)
            assert (raw[..., 1] == 0).all() and (raw[..., 0] <= 30).all() and (raw[..., 0] % 2 == 0).all()
            assert len(np.unique(raw[..., 0])) > 3  # several of the 16 grays
        elif layout.pixel_format is PixelFormat.RGB565:
            assert (native_view(buf, layout)[:, 1404:] == 0xFFFF).all()  # the 4 hidden columns
        else:
            px = native_view(buf, layout)
            assert (px[..., 3] == 255).all()
            coloured = (px[..., 0] != px[..., 2]).any()
            assert coloured == layout.color  # colour on Paper Pro only; rM2 shows gray


def test_wrong_buffer_size_is_refused():
    src = ReplaySource(default_page(), RM2_BGRA, clock=FakeClock())
    with pytest.raises(ValueError, match="bytes"):
        src.read_into(bytearray(100))


def test_canvas_highlighter_keeps_text_dark():
    canvas = Canvas(RMPP)
    from streamer.rmpage import Ink

    canvas.begin(Ink((0, 0, 0), 0))
    canvas.segment(100, 100, 4, 400, 100, 4)
    canvas.end()
    canvas.begin(Ink((255, 237, 117), 150, 0.45), "multiply")
    for x in range(100, 400, 5):  # many overlapping segments: coverage is a max, not a sum
        canvas.segment(x, 100, 20, x + 5, 100, 20)
    canvas.end()
    base = canvas.base
    assert base[100, 250].max() < 10  # the text under it is still black
    hl = base[112, 150:350]
    assert (hl[:, 2] < 200).all() and (hl[:, 0] > 240).all()  # yellowish, not white
    assert np.ptp(hl.astype(int), axis=0).max() <= 2  # even: no darker joints
