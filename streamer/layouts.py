"""The one table of known framebuffer layouts, and lookups into it.

Supporting a new firmware is one line in ``KNOWN``. Offsets are *observed* by public tools, not
documented by reMarkable; the device source validates the first frame and fails loudly.

Where each entry comes from (public sources read while writing this table):

* rM1: ``/dev/fb0`` is a real framebuffer, RGB565 little-endian, 1408 x 1872 stored, 1404
  visible (reStream ``rgb565le`` 1408x1872; RCU crops ``copy(0, 0, 1404, 1872)``). Upright.
* rM2 < 3.6: xochitl's memory, the mapping that follows ``/dev/fb0``, +8 bytes (reStream
  ``rm2_fb_offset`` = next mapping + 8; RCU and goMarkableStream agree). 1872 x 1404, 1 byte,
  16 levels. Upright page = stored rotated 90 degrees counter-clockwise (reStream portrait uses
  ffmpeg ``transpose=2``; RCU rotates by -90). DEVICES.md says "< 3.4"; RCU and
  goMarkableStream issue #58 ("works fine on 3.5", broke on 3.6.0.1806) put the switch at 3.6.
* rM2 3.6 - 3.23: same place, 2 bytes per pixel; the first byte holds 0..30 (white = 30), the
  second is zero (RCU ``DisplayRM2_3_6``: every other byte, ``(b >> 1) * 17``; reStream
  ``gray16be`` with ``colorlevels ... max=29/255``; goMarkableStream's palette treats 30 as
  white). Stored flipped relative to the < 3.6 image (RCU reverses the buffer then each row),
  so upright = anti-transpose (reStream ``transpose=3``; RCU's two reversals then -90).
* rM2 3.24 - 3.26: BGRA, 1404 x 1872 portrait, next mapping + 8 + 2,629,632
  (goMarkableStream ``newFormatPointerOffset`` on top of its ``+ 8``; PR #141, issue #140 on
  3.24.0.147; reSnap PR #27). Rows stored bottom-up ("texture flipped"). Tools disagree by 4
  bytes, i.e. one pixel: harmless for the picture, the validation cannot tell them apart.
* rM2 3.27: reStream PR #124 moved the offset to 4,705,256 after issue #123 (picture wrapped
  around). reStream PR #131 later reports the offset "sometimes changes after running for a
  while" and that the 3.24 value works after a restart, and issue #133 says 3.28 uses the 3.24
  settings again. Kept as its own entry; the 3.27 transform is NOT confirmed (DEVICES.md
  mentions a different transpose), assumed as 3.24.
* Paper Pro ("reMarkable Ferrari"): BGRA, 1624 x 2154 up to 3.19, 1632 x 2154 from 3.20
  (goMarkableStream issue #134). Found by walking allocation length headers from the end of the
  last ``/dev/dri/card0`` mapping (goMarkableStream ``pointer_arm64.go``; fails on 3.25 for
  some users, issue #158). The block's length sits at +8 like a malloc chunk header, so the
  pixels are taken from +16 (goMarkableStream reads from the block start: 4 pixels earlier).
  Flipped like the rM2 BGRA texture (goMarkableStream sets ``TextureFlipped`` for both) - not
  independently confirmed.
* Paper Pro Move ("reMarkable Chiappa"): BGRA, 960 stored, 954 x 1696 visible
  (goMarkableStream ``move_profile.go``). Locating and orientation unverified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .pixelformat import (
    ANTI_TRANSPOSE,
    FLIP_VERTICAL,
    ORIENTATIONS,
    ROTATE_CCW,
    UPRIGHT,
    Layout,
    PixelFormat,
    Rect,
)

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """'3.24.0.149' -> (3, 24, 0, 149); surrounding quotes and spaces are ignored."""
    parts = text.strip().strip("\"'").split(".")
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"not a firmware version: {text!r}") from None


def _bgra(name: str, width: int, height: int, **kw) -> Layout:
    return Layout(name, PixelFormat.BGRA32, width, height, width * 4, **kw)


RM1 = Layout("rm1-rgb565", PixelFormat.RGB565, 1408, 1872, 1408 * 2, UPRIGHT, visible=Rect(0, 0, 1404, 1872))
RM2_GRAY8 = Layout("rm2-2.0-gray8", PixelFormat.GRAY8, 1872, 1404, 1872, ROTATE_CCW, offset=8)
RM2_GRAY16 = Layout("rm2-3.6-gray16", PixelFormat.GRAY16, 1872, 1404, 1872 * 2, ANTI_TRANSPOSE, offset=8)
RM2_BGRA = _bgra("rm2-3.24-bgra", 1404, 1872, orientation=FLIP_VERTICAL, offset=8 + 2_629_632)
RM2_BGRA_327 = _bgra("rm2-3.27-bgra", 1404, 1872, orientation=FLIP_VERTICAL, offset=4_705_256)
RMPP_1624 = _bgra("rmpp-1624-bgra", 1624, 2154, orientation=FLIP_VERTICAL, offset=16, color=True)
RMPP = _bgra("rmpp-3.20-bgra", 1632, 2154, orientation=FLIP_VERTICAL, offset=16, color=True)
RMPP_MOVE = _bgra("rmppm-bgra", 960, 1696, orientation=FLIP_VERTICAL, visible=Rect(0, 0, 954, 1696), offset=16,
                  color=True)

# /sys/devices/soc0/machine -> model family
MODELS = {
    "reMarkable 1.0": "rM1",
    "reMarkable Prototype 1": "rM1",
    "reMarkable 2.0": "rM2",
    "reMarkable Ferrari": "Paper Pro",
    "reMarkable Chiappa": "Paper Pro Move",
}

# How the frame is found. "fb0": read /dev/fb0 itself. "after-anchor": in xochitl's maps, the
# mapping right after the one of ``anchor``, plus layout.offset. "walk-headers": from the end of
# the last ``anchor`` mapping, follow allocation length headers to the frame.
FB0, AFTER_ANCHOR, WALK_HEADERS = "fb0", "after-anchor", "walk-headers"


@dataclass(frozen=True)
class KnownLayout:
    model: str  # family, a value of MODELS
    since: Version  # first firmware, inclusive
    until: Version | None  # first firmware no longer covered, exclusive; None = open-ended
    layout: Layout
    locate: str = AFTER_ANCHOR
    anchor: str = "/dev/fb0"

    def covers(self, model: str, firmware: Version) -> bool:
        return model == self.model and self.since <= firmware and (self.until is None or firmware < self.until)


# The newest entry of each model is open-ended: minor updates have kept the layout (3.28 went
# back to 3.24's), and the first-frame validation catches the ones that do not.
KNOWN: tuple[KnownLayout, ...] = (
    KnownLayout("rM1", (1, 0), None, RM1, FB0),
    KnownLayout("rM2", (2, 0), (3, 6), RM2_GRAY8),
    KnownLayout("rM2", (3, 6), (3, 24), RM2_GRAY16),
    KnownLayout("rM2", (3, 24), (3, 27), RM2_BGRA),
    KnownLayout("rM2", (3, 27), (3, 28), RM2_BGRA_327),
    KnownLayout("rM2", (3, 28), None, RM2_BGRA),
    KnownLayout("Paper Pro", (3, 0), (3, 20), RMPP_1624, WALK_HEADERS, "/dev/dri/card0"),
    KnownLayout("Paper Pro", (3, 20), None, RMPP, WALK_HEADERS, "/dev/dri/card0"),
    KnownLayout("Paper Pro Move", (3, 0), None, RMPP_MOVE, WALK_HEADERS, "/dev/dri/card0"),
)

LAYOUTS: dict[str, Layout] = {k.layout.name: k.layout for k in KNOWN}

DEFAULT_REPLAY_LAYOUT = RM2_BGRA.name


def find_known(model: str, firmware: Version) -> KnownLayout | None:
    """The table entry for a model family and firmware, or None."""
    for entry in KNOWN:
        if entry.covers(model, firmware):
            return entry
    return None


def entry_for_layout(name: str) -> KnownLayout:
    """The first table entry using a layout (how a forced --layout is located on the device)."""
    for entry in KNOWN:
        if entry.layout.name == name:
            return entry
    raise KeyError(name)


_SPEC = re.compile(r"^(\d+)x(\d+):([a-z0-9]+)((?::[a-z0-9=-]+)*)$")


def get_layout(spec: str) -> Layout:
    """A layout by name, or an explicit ``WIDTHxHEIGHT:FORMAT[:stride=N][:ORIENTATION]`` spec.

    e.g. ``rm2-3.24-bgra``, or ``1404x1872:bgra32:flip-v`` for a raw dump of known shape.
    """
    if spec in LAYOUTS:
        return LAYOUTS[spec]
    m = _SPEC.match(spec.strip().lower())
    if not m:
        raise ValueError(f"unknown layout {spec!r}: use one of {', '.join(LAYOUTS)} "
                         f"or WIDTHxHEIGHT:FORMAT[:stride=N][:ORIENTATION] (formats "
                         f"{', '.join(f.value for f in PixelFormat)}; orientations {', '.join(ORIENTATIONS)})")
    width, height, fmt_name, extra = int(m[1]), int(m[2]), m[3], m[4]
    try:
        fmt = PixelFormat(fmt_name)
    except ValueError:
        formats = ", ".join(f.value for f in PixelFormat)
        raise ValueError(f"unknown pixel format {fmt_name!r} in {spec!r}: use {formats}") from None
    stride, orientation = width * fmt.bytes_per_pixel, UPRIGHT
    for part in filter(None, extra.split(":")):
        if part.startswith("stride="):
            stride = int(part[len("stride="):])
        elif part in ORIENTATIONS:
            orientation = ORIENTATIONS[part]
        else:
            raise ValueError(f"unknown option {part!r} in layout {spec!r}")
    return Layout(spec, fmt, width, height, stride, orientation, color=fmt is PixelFormat.BGRA32)


def describe_layouts() -> str:
    """A table of the known layouts and where each applies, for ``inkcast layouts``."""
    def versions(entry: KnownLayout) -> str:
        since = ".".join(map(str, entry.since))
        return f">= {since}" if entry.until is None else f"{since} - <{'.'.join(map(str, entry.until))}"

    # One row per layout: a layout that came back in a later firmware lists both ranges.
    ranges: dict[str, list[str]] = {}
    for entry in KNOWN:
        ranges.setdefault(entry.layout.name, []).append(versions(entry))
    rows = [f"{'layout':16} {'format':7} {'stored':>10} {'page':>10}  model, firmware"]
    for entry in KNOWN:
        lay = entry.layout
        if lay.name not in ranges:
            continue
        rows.append(f"{lay.name:16} {lay.pixel_format.value:7} {f'{lay.width}x{lay.height}':>10} "
                    f"{f'{lay.page_width}x{lay.page_height}':>10}  {entry.model}, {' and '.join(ranges.pop(lay.name))}")
    return "\n".join(rows)
