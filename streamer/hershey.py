"""The built-in demo page: handwriting from a Hershey stroke font, written at pen speed.

Hershey fonts are single-line vector glyphs (public domain, A. V. Hershey, 1967): every glyph is
a few polylines, which is exactly what a pen draws. The simplex roman glyphs for printable
ASCII live beside this module in ``hershey_rowmans.jhf`` (the classic .jhf encoding), so the
demo needs no file and no network. A slight slant and per-letter wobble make it look written.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .rmpage import PX_PER_MM, RM_HEIGHT, RM_WIDTH, Ink, Page, Stroke, Tool

FONT_FILE = Path(__file__).with_name("hershey_rowmans.jhf")
CAP_TOP, BASELINE = -12, 9  # font units; y grows downwards, 'R' is 0
PEN_SPEED = 130 * PX_PER_MM  # px/s: ~130 mm/s, brisk handwriting
STEP = 3.0  # px between resampled points, about what the digitizer gives at that speed
TRACKING = 0.86  # Hershey's roman is spaced for print; handwriting sits tighter


@dataclass(frozen=True)
class Glyph:
    left: int
    right: int
    strokes: tuple[np.ndarray, ...]  # each (n, 2) in font units

    @property
    def advance(self) -> int:
        return self.right - self.left


def parse_jhf_line(line: str) -> Glyph:
    count = int(line[5:8])
    body = line[8:8 + 2 * count]
    coords = [(ord(body[i]) - ord("R"), ord(body[i + 1]) - ord("R")) for i in range(0, len(body) - 1, 2)]
    left, right = coords[0]
    strokes, current = [], []
    for pair, raw in zip(coords[1:], (body[i:i + 2] for i in range(2, len(body) - 1, 2))):
        if raw == " R":  # pen up
            if current:
                strokes.append(np.array(current, np.float64))
            current = []
        else:
            current.append(pair)
    if current:
        strokes.append(np.array(current, np.float64))
    return Glyph(left, right, tuple(strokes))


@lru_cache(maxsize=1)
def load_font(path: Path = FONT_FILE) -> dict[str, Glyph]:
    lines = [ln.rstrip("\n") for ln in path.read_text("ascii").splitlines() if ln.strip() and not ln.startswith("#")]
    font = {chr(32 + i): parse_jhf_line(ln) for i, ln in enumerate(lines) if 32 + i < 127}
    dash = font["-"]
    # An em dash, which ASCII lacks: the hyphen drawn wider.
    font["\u2014"] = Glyph(dash.left - 6, dash.right + 6, (np.array([[-14.0, 0.0], [14.0, 0.0]]),))
    return font


def _resample(poly: np.ndarray, step: float) -> np.ndarray:
    seg = np.hypot(*np.diff(poly, axis=0).T) if len(poly) > 1 else np.zeros(0)
    if len(poly) < 2 or seg.sum() == 0:
        return poly[:1].copy()
    s = np.concatenate(([0.0], np.cumsum(seg)))
    n = max(2, int(np.ceil(s[-1] / step)) + 1)
    at = np.linspace(0.0, s[-1], n)
    return np.column_stack((np.interp(at, s, poly[:, 0]), np.interp(at, s, poly[:, 1])))


def _timed(poly: np.ndarray, width: float, tool: Tool, ink: Ink, speed: float) -> Stroke:
    xy = _resample(poly, STEP)
    seg = np.hypot(*np.diff(xy, axis=0).T) if len(xy) > 1 else np.zeros(0)
    t = np.concatenate(([0.0], np.cumsum(seg) / speed))
    return Stroke(tool, ink, xy, np.full(len(xy), width), t)


BLACK = Ink((0, 0, 0), 0)
BLUE = Ink((40, 88, 204), 102)
RED = Ink((214, 41, 41), 51)
YELLOW = Ink((255, 237, 117), 150, 0.45)


class _Writer:
    def __init__(self, seed: int = 7):
        self.font = load_font()
        self.rng = np.random.default_rng(seed)
        self.strokes: list[Stroke] = []

    def text(self, text: str, x: float, baseline: float, cap: float, *, ink: Ink = BLACK, width: float = 2.6,
             tool: Tool = Tool.BALLPOINT, slant: float = 0.16) -> tuple[float, float]:
        """Write ``text`` from (x, baseline) with capitals ``cap`` px tall; returns (x0, x1)."""
        scale = cap / (BASELINE - CAP_TOP)
        start = x
        for ch in text:
            glyph = self.font.get(ch, self.font["?"])
            wobble = self.rng.normal(0, 0.02)  # radians
            grow = 1 + self.rng.normal(0, 0.025)
            lift = self.rng.normal(0, cap * 0.02)
            cos, sin = np.cos(wobble), np.sin(wobble)
            origin = x - glyph.left * scale * TRACKING
            for poly in glyph.strokes:
                gx, gy = poly[:, 0] * scale * grow, poly[:, 1] * scale * grow
                gx, gy = gx * cos - gy * sin, gx * sin + gy * cos
                gx = gx - (gy - BASELINE * scale) * slant
                pts = np.column_stack((origin + gx, baseline - BASELINE * scale + gy + lift))
                self.stroke(pts, width, tool, ink)
            x += glyph.advance * scale * TRACKING
        return start, x

    def stroke(self, points, width: float, tool: Tool = Tool.FINELINER, ink: Ink = BLACK) -> None:
        speed = PEN_SPEED * self.rng.uniform(0.85, 1.15)
        self.strokes.append(_timed(np.asarray(points, np.float64), width, tool, ink, speed))

    def box(self, x0: float, y0: float, x1: float, y1: float, **kw) -> None:
        j = lambda: self.rng.normal(0, 1.5)  # noqa: E731 - a hand never draws a ruler line
        self.stroke([(x0, y0), (x1 + j(), y0 + j()), (x1 + j(), y1 + j()), (x0 + j(), y1 + j()), (x0, y0 + 2)], **kw)


def default_page() -> Page:
    """Title, two lines, an underline, a highlight and a small diagram, in page space."""
    w = _Writer()
    left = -RM_WIDTH / 2 + 110
    x0, x1 = w.text("inkcast", left, 230, 56, width=3.2)
    w.text(" \u2014 live from the tablet", x1, 230, 56, width=3.2)
    w.stroke([(x0, 262), ((x0 + x1) / 2, 266), (x1, 259)], 6.0, Tool.MARKER, RED)
    w.text("Handwriting, replayed stroke by stroke", left, 360, 34)
    hx0, hx1 = w.text("at pen speed,", left, 430, 34)
    w.text(" in the tablet's own pixels.", hx1, 430, 34)
    w.stroke([(hx0 - 6, 418), (hx1 + 4, 416)], 34.0, Tool.HIGHLIGHTER, YELLOW)
    # tablet -> browser
    w.box(left, 560, left + 330, 720, width=3.0, ink=BLUE)
    w.text("tablet", left + 70, 660, 40, ink=BLUE, width=3.0, tool=Tool.FINELINER)
    w.stroke([(left + 350, 640), (left + 640, 642)], 3.0)
    w.stroke([(left + 610, 618), (left + 642, 642), (left + 610, 664)], 3.0)
    w.box(left + 660, 560, left + 1060, 720, width=3.0, ink=BLUE)
    w.text("browser", left + 720, 660, 40, ink=BLUE, width=3.0, tool=Tool.FINELINER)
    w.text("VP8", left + 445, 615, 26, width=2.2)
    w.text("no data file needed - this page is a Hershey font", left, 860, 26, width=2.2)
    return Page(tuple(w.strokes), "the built-in Hershey page", RM_WIDTH, RM_HEIGHT)
