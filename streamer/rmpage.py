"""A reMarkable notebook page (.rm, format v6) as strokes timed the way they were written.

``rmscene`` reads the file. Each point carries x, y, speed, direction, width and pressure but
no timestamp, so a point's time is derived: the time of a segment is its length divided by the
pen speed stored at its ends.

Units of ``speed``, checked against the fixture pages: taking one unit as 1 cm/s of pen tip
(89 px/s at the tablet's 226 dpi), consecutive points come out a median 4 - 6 ms apart (a
digitizer sampling at ~200 Hz) and the letters of the handwritten fixture take 0.1 - 0.6 s
each, a median tip speed near 10 cm/s: ordinary quick handwriting. The other readings do not
fit: as px/ms the points would be 0.4 - 0.5 ms apart (a 2 kHz digitizer) and the hand would
move at 1 m/s; as rmscene's v5 float (the value / 4) in px/ms, 1.6 - 2 ms apart at 280 mm/s.
The files hold no time between strokes; the replay derives pen-up gaps.

Coordinates are the tablet's page space: x centred on 0, y down from the top; strokes in
groups anchored to typed text are moved by the anchor (an approximation of xochitl's text
layout, the one rmscene's companion renderer rmc uses).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PX_PER_MM = 226 / 25.4  # reMarkable 1 and 2 page space: 226 dpi
SPEED_UNIT_PX_PER_S = 10 * PX_PER_MM  # one unit of a point's speed field: 1 cm/s
MIN_SPEED_UNITS = 0.5  # points at rest report 0; a segment still takes finite time
MAX_POINT_INTERVAL = 0.05  # s; no digitizer gap between two points of one stroke is longer
RM_WIDTH, RM_HEIGHT = 1404, 1872


class Tool(enum.Enum):
    BALLPOINT = "ballpoint"
    FINELINER = "fineliner"
    MARKER = "marker"
    PENCIL = "pencil"
    MECHANICAL_PENCIL = "mechanical pencil"
    BRUSH = "brush"
    CALLIGRAPHY = "calligraphy"
    HIGHLIGHTER = "highlighter"
    SHADER = "shader"
    ERASER = "eraser"
    ERASE_AREA = "erase area"


# rmscene.scene_items.Pen values -> Tool
_PEN_TOOLS = {
    0: Tool.BRUSH, 12: Tool.BRUSH, 1: Tool.PENCIL, 14: Tool.PENCIL, 2: Tool.BALLPOINT, 15: Tool.BALLPOINT,
    3: Tool.MARKER, 16: Tool.MARKER, 4: Tool.FINELINER, 17: Tool.FINELINER, 5: Tool.HIGHLIGHTER,
    18: Tool.HIGHLIGHTER, 6: Tool.ERASER, 7: Tool.MECHANICAL_PENCIL, 13: Tool.MECHANICAL_PENCIL,
    8: Tool.ERASE_AREA, 21: Tool.CALLIGRAPHY, 23: Tool.SHADER,
}


@dataclass(frozen=True)
class Ink:
    """A pen colour as a colour screen shows it, and as the rM1/rM2 grayscale panel shows it."""

    rgb: tuple[int, int, int]
    gray: int
    opacity: float = 1.0  # highlighter and shader are translucent and multiply


def _luma(rgb: tuple[int, int, int]) -> int:
    r, g, b = rgb
    return int(round(0.299 * r + 0.587 * g + 0.114 * b))


# rmscene PenColor values -> colours. The grays for red/blue/green/yellow are what the rM2
# firmware itself stores for them (goMarkableStream's palette of the gray16 framebuffer:
# 6 red, 12 blue, 20 green, 24 yellow on the 0..30 scale); the others use luma.
_PALETTE: dict[int, tuple[tuple[int, int, int], int | None]] = {
    0: ((0, 0, 0), 0),  # black
    1: ((125, 125, 125), 128),  # gray
    2: ((255, 255, 255), 255),  # white
    3: ((251, 247, 25), 204),  # yellow
    4: ((0, 152, 0), 170),  # green
    5: ((255, 192, 203), None),  # pink
    6: ((40, 88, 204), 102),  # blue
    7: ((214, 41, 41), 51),  # red
    8: ((125, 125, 125), 128),  # gray overlap
    10: ((120, 190, 80), 170),  # green 2
    11: ((60, 180, 220), None),  # cyan
    12: ((190, 90, 200), None),  # magenta
    13: ((247, 232, 81), 204),  # yellow 2
}
HIGHLIGHTER_YELLOW = (255, 237, 117)


HIGHLIGHTER_GRAY = 150  # the rM2 panel shows every highlighter colour as one light gray


def ink_for(color: int, rgba: tuple[int, int, int, int] | None, tool: Tool) -> Ink:
    """The ink of a line: its colour, the gray a grayscale panel shows, its opacity."""
    alpha = None
    if rgba is not None:
        rgb, alpha = (int(rgba[0]), int(rgba[1]), int(rgba[2])), rgba[3] / 255
        gray = _luma(rgb)
    else:
        rgb, gray = _PALETTE.get(int(color), ((0, 0, 0), 0))
        if tool is Tool.HIGHLIGHTER and int(color) in (0, 9):
            rgb, gray = HIGHLIGHTER_YELLOW, None
        gray = _luma(rgb) if gray is None else gray
    if tool is Tool.HIGHLIGHTER:
        # Full-alpha highlight colours are still drawn translucent and multiplied by xochitl.
        return Ink(rgb, HIGHLIGHTER_GRAY, alpha if alpha is not None and alpha < 0.99 else 0.45)
    if tool is Tool.SHADER:
        return Ink(rgb, gray, alpha if alpha is not None else 0.25)
    if tool in (Tool.PENCIL, Tool.MECHANICAL_PENCIL):
        return Ink(rgb, gray, 0.85)
    return Ink(rgb, gray)


@dataclass(frozen=True)
class Stroke:
    tool: Tool
    ink: Ink
    xy: np.ndarray  # (n, 2) float page coordinates
    width: np.ndarray  # (n,) stroke width in page pixels
    t: np.ndarray  # (n,) seconds from the first point
    item: tuple[int, int] = (0, 0)  # the .rm item's CrdtId (counter, author); 0s when generated

    @property
    def duration(self) -> float:
        return float(self.t[-1]) if len(self.t) else 0.0

    @property
    def points(self) -> int:
        return len(self.xy)


@dataclass(frozen=True)
class Page:
    strokes: tuple[Stroke, ...]
    name: str = "page"
    paper_width: float = RM_WIDTH  # page space width (x runs -w/2 .. w/2)
    paper_height: float = RM_HEIGHT

    @property
    def ink_duration(self) -> float:
        return sum(s.duration for s in self.strokes)


def point_times(xy: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Seconds from the first point: each segment's length over its mean end-point speed."""
    if len(xy) < 2:
        return np.zeros(len(xy))
    seg = np.hypot(*np.diff(xy, axis=0).T)
    v = np.maximum((speed[1:] + speed[:-1]) / 2, MIN_SPEED_UNITS) * SPEED_UNIT_PX_PER_S
    dt = np.minimum(seg / v, MAX_POINT_INTERVAL)
    return np.concatenate(([0.0], np.cumsum(dt)))


def stroke_width(raw_width: np.ndarray, tool: Tool) -> np.ndarray:
    # v6 stores width as a uint16 of 4 x the drawn width in page pixels (rmscene writes the v5
    # float back as width / 4); a 1x ballpoint comes out ~2 px, 3x ~4.5 px.
    w = raw_width / 4.0
    if tool is Tool.HIGHLIGHTER:
        w = np.maximum(w, 15.0)
    return np.maximum(w, 1.0)


# Text anchors (see module doc): line heights by paragraph style, from rmc.
_TEXT_TOP_Y = -88
_LINE_HEIGHTS = {1: 70, 3: 70, 2: 150, 4: 35, 5: 35, 6: 35, 7: 35}  # PLAIN BOLD HEADING BULLET...
_SPECIAL_ANCHOR_Y = 100  # "top/bottom of text" anchors (0xfffffffffffe/f)


def _anchor_positions(text) -> dict:
    from rmscene import CrdtId
    from rmscene.text import TextDocument

    pos = {CrdtId(0, 281474976710654): _SPECIAL_ANCHOR_Y, CrdtId(0, 281474976710655): _SPECIAL_ANCHOR_Y}
    if text is None:
        return pos
    # rmscene warns about every inline formatting code (bold/italic); not ours to report.
    log = logging.getLogger("rmscene")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        doc = TextDocument.from_scene_item(text)
    finally:
        log.setLevel(level)
    y = text.pos_y + _TEXT_TOP_Y
    for para in doc.contents:
        pos[para.start_id] = y
        for sub in para.contents:
            for k in sub.i:
                pos[k] = y
        y += _LINE_HEIGHTS.get(int(para.style.value), 70)
    return pos


def read_page(path: Path | str) -> Page:
    """Strokes of a v6 .rm page, in writing order, with derived per-point times."""
    from rmscene import read_tree
    from rmscene import scene_items as si

    path = Path(path)
    with open(path, "rb") as f:
        try:
            tree = read_tree(f)
        except Exception as exc:  # rmscene raises whatever its parser met: EOFError, ValueError...
            detail = str(exc)[:60].encode("ascii", "backslashreplace").decode() if str(exc).isprintable() else ""
            raise ValueError(f"{path}: not a readable reMarkable v6 page "
                             f"({type(exc).__name__}{': ' + detail if detail else ''})") from None
    anchors = _anchor_positions(tree.root_text)
    paper_w, paper_h = RM_WIDTH, RM_HEIGHT
    if tree.scene_info is not None and tree.scene_info.paper_size:
        paper_w, paper_h = tree.scene_info.paper_size

    found: list[tuple[tuple[int, ...], Stroke]] = []

    def walk(group, dx: float, dy: float) -> None:
        if group.anchor_id is not None and group.anchor_origin_x is not None:
            dx += group.anchor_origin_x.value
            dy += anchors.get(group.anchor_id.value, 0.0)
        for item_id, child in group.children.items():
            if isinstance(child, si.Group):
                walk(child, dx, dy)
            elif isinstance(child, si.Line) and child.points:
                key = (item_id.part2, item_id.part1)
                found.append((key, _stroke(child, dx, dy, key)))
            elif isinstance(child, si.GlyphRange) and child.rectangles:
                for n, rect in enumerate(child.rectangles):
                    found.append(((item_id.part2, item_id.part1, n), _highlight(child, rect, dx, dy)))

    walk(tree.root, 0.0, 0.0)
    # Creation order: CrdtIds count up as items are made, which is the order they were written.
    found.sort(key=lambda pair: pair[0])
    return Page(tuple(s for _, s in found), path.name, float(paper_w), float(paper_h))


def _stroke(line, dx: float, dy: float, key: tuple[int, int]) -> Stroke:
    pts = np.array([(p.x, p.y, p.speed, p.width) for p in line.points], dtype=np.float64)
    tool = _PEN_TOOLS.get(int(line.tool), Tool.BALLPOINT)
    xy = pts[:, :2] + (dx, dy)
    return Stroke(tool, ink_for(line.color, line.color_rgba, tool), xy, stroke_width(pts[:, 3], tool),
                  point_times(xy, pts[:, 2]), key)


def _highlight(glyphs, rect, dx: float, dy: float) -> Stroke:
    # A highlight of PDF/EPUB text: drawn as one highlighter sweep along the text line.
    y = rect.y + rect.h / 2 + dy
    n = max(2, int(rect.w // 4))
    xy = np.column_stack((np.linspace(rect.x, rect.x + rect.w, n) + dx, np.full(n, y)))
    ink = ink_for(glyphs.color, glyphs.color_rgba, Tool.HIGHLIGHTER)
    return Stroke(Tool.HIGHLIGHTER, ink, xy, np.full(n, float(rect.h)), point_times(xy, np.full(n, 12.0)))
