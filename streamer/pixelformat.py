"""Native framebuffer pixels, and their conversion to the I420 planes the VP8 encoder eats.

A tablet keeps its screen in a firmware-specific layout: a pixel format, a size and stride, an
orientation (rM2 firmware stores the portrait page rotated or flipped) and sometimes a crop (rM1
stores 1408 columns and shows 1404). :class:`Layout` describes one such layout;
:func:`native_view` and :func:`page_view` look at a native buffer without copying it, and
:class:`I420Converter` turns (a changed region of) it into upright BT.601 limited-range planes.

Everything that runs per captured frame works into buffers allocated once: numpy views of the
native buffer, ``out=`` arithmetic into preallocated uint16 scratch, and only the changed region.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class PixelFormat(enum.Enum):
    """How one stored pixel is encoded."""

    BGRA32 = "bgra32"  # bytes B, G, R, A (rM2 >= 3.24, Paper Pro)
    GRAY16 = "gray16"  # 2 bytes; the first holds 0..30 (white = 30), the second is 0 (rM2 3.6 - 3.23)
    GRAY8 = "gray8"  # 1 byte, 16 levels stored as 0x00, 0x11, ... 0xff (rM2 < 3.6)
    RGB565 = "rgb565"  # little-endian 5:6:5 (rM1 /dev/fb0)

    @property
    def bytes_per_pixel(self) -> int:
        return _BYTES_PER_PIXEL[self]


_BYTES_PER_PIXEL = {PixelFormat.BGRA32: 4, PixelFormat.GRAY16: 2, PixelFormat.GRAY8: 1, PixelFormat.RGB565: 2}


@dataclass(frozen=True)
class Rect:
    """A half-open pixel box: columns x0 <= x < x1, rows y0 <= y < y1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def full(cls, width: int, height: int) -> Rect:
        return cls(0, 0, width, height)

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def is_empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    def union(self, other: Rect | None) -> Rect:
        if other is None or other.is_empty:
            return self
        if self.is_empty:
            return other
        return Rect(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def intersect(self, other: Rect) -> Rect:
        r = Rect(max(self.x0, other.x0), max(self.y0, other.y0), min(self.x1, other.x1), min(self.y1, other.y1))
        return r if not r.is_empty else Rect(r.x0, r.y0, r.x0, r.y0)

    def clip(self, width: int, height: int) -> Rect:
        return self.intersect(Rect(0, 0, width, height))

    def translate(self, dx: int, dy: int) -> Rect:
        return Rect(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def even(self) -> Rect:
        """Grown outwards to even coordinates: I420 chroma covers 2x2 blocks."""
        return Rect(self.x0 & ~1, self.y0 & ~1, (self.x1 + 1) & ~1, (self.y1 + 1) & ~1)

    def slices(self) -> tuple[slice, slice]:
        """(rows, columns), for indexing a 2-D array."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


@dataclass(frozen=True)
class Orientation:
    """How the stored image maps to the upright page the user sees.

    page = stored, transposed if ``transpose`` (page rows are stored columns), then with its rows
    in reverse order if ``flip_vertical`` and its columns reversed if ``flip_horizontal``. These
    three flags express all eight rotations/mirrors, and each is a numpy view (no copy).
    """

    transpose: bool = False
    flip_vertical: bool = False
    flip_horizontal: bool = False

    def page_size(self, stored_width: int, stored_height: int) -> tuple[int, int]:
        return (stored_height, stored_width) if self.transpose else (stored_width, stored_height)

    def apply(self, stored: np.ndarray) -> np.ndarray:
        """The upright view of a stored (rows, columns[, channels]) array."""
        page = stored.swapaxes(0, 1) if self.transpose else stored
        if self.flip_vertical:
            page = page[::-1]
        if self.flip_horizontal:
            page = page[:, ::-1]
        return page

    def to_page(self, rect: Rect, stored_width: int, stored_height: int) -> Rect:
        x0, y0, x1, y1 = rect.x0, rect.y0, rect.x1, rect.y1
        if self.transpose:
            x0, y0, x1, y1 = y0, x0, y1, x1
        w, h = self.page_size(stored_width, stored_height)
        if self.flip_horizontal:
            x0, x1 = w - x1, w - x0
        if self.flip_vertical:
            y0, y1 = h - y1, h - y0
        return Rect(x0, y0, x1, y1)

    def to_stored(self, rect: Rect, stored_width: int, stored_height: int) -> Rect:
        w, h = self.page_size(stored_width, stored_height)
        x0, y0, x1, y1 = rect.x0, rect.y0, rect.x1, rect.y1
        if self.flip_horizontal:
            x0, x1 = w - x1, w - x0
        if self.flip_vertical:
            y0, y1 = h - y1, h - y0
        if self.transpose:
            x0, y0, x1, y1 = y0, x0, y1, x1
        return Rect(x0, y0, x1, y1)


UPRIGHT = Orientation()
FLIP_VERTICAL = Orientation(flip_vertical=True)
ROTATE_CCW = Orientation(transpose=True, flip_vertical=True)  # page = np.rot90(stored)
ROTATE_CW = Orientation(transpose=True, flip_horizontal=True)  # page = np.rot90(stored, -1)
ANTI_TRANSPOSE = Orientation(transpose=True, flip_vertical=True, flip_horizontal=True)  # ffmpeg transpose=3

ORIENTATIONS = {
    "upright": UPRIGHT,
    "flip-v": FLIP_VERTICAL,
    "flip-h": Orientation(flip_horizontal=True),
    "rotate-180": Orientation(flip_vertical=True, flip_horizontal=True),
    "rotate-ccw": ROTATE_CCW,
    "rotate-cw": ROTATE_CW,
    "transpose": Orientation(transpose=True),
    "anti-transpose": ANTI_TRANSPOSE,
}


@dataclass(frozen=True)
class Layout:
    """Where and how a device keeps its screen in memory."""

    name: str  # e.g. "rm2-3.24-bgra"
    pixel_format: PixelFormat
    width: int  # stored pixels per row
    height: int  # stored rows
    stride: int  # bytes per stored row
    orientation: Orientation = UPRIGHT
    visible: Rect | None = None  # crop of the stored image, in stored coordinates
    offset: int = 0  # bytes from the start of the mapping that holds the frame (device layouts)
    color: bool = False  # the panel shows colour (Paper Pro); grayscale panels show inks as gray

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"layout {self.name}: size must be positive, got {self.width}x{self.height}")
        if self.stride < self.width * self.bytes_per_pixel:
            raise ValueError(f"layout {self.name}: stride {self.stride} < {self.width} px x {self.bytes_per_pixel} B")
        if self.visible is not None and self.visible != self.visible.clip(self.width, self.height):
            raise ValueError(f"layout {self.name}: visible {self.visible} outside {self.width}x{self.height}")

    @property
    def bytes_per_pixel(self) -> int:
        return self.pixel_format.bytes_per_pixel

    @property
    def frame_bytes(self) -> int:
        return self.stride * self.height

    @property
    def visible_rect(self) -> Rect:
        return self.visible if self.visible is not None else Rect.full(self.width, self.height)

    @property
    def page_width(self) -> int:
        r = self.visible_rect
        return self.orientation.page_size(r.width, r.height)[0]

    @property
    def page_height(self) -> int:
        r = self.visible_rect
        return self.orientation.page_size(r.width, r.height)[1]

    def native_to_page(self, rect: Rect) -> Rect:
        """A box of stored pixels as a box of the upright page (clipped to the visible crop)."""
        vis = self.visible_rect
        r = rect.intersect(vis).translate(-vis.x0, -vis.y0)
        if r.is_empty:
            return Rect(0, 0, 0, 0)
        return self.orientation.to_page(r, vis.width, vis.height)

    def page_to_native(self, rect: Rect) -> Rect:
        vis = self.visible_rect
        r = rect.clip(self.page_width, self.page_height)
        return self.orientation.to_stored(r, vis.width, vis.height).translate(vis.x0, vis.y0)


def native_view(buf, layout: Layout) -> np.ndarray:
    """A zero-copy array over a native frame buffer: one element per stored pixel.

    Shapes: BGRA32 (height, width, 4) uint8; GRAY16 and RGB565 (height, width) little-endian
    uint16; GRAY8 (height, width) uint8. Writable when ``buf`` is.
    """
    fmt = layout.pixel_format
    size = len(memoryview(buf).cast("B"))
    if size < layout.frame_bytes:
        raise ValueError(f"buffer of {size} bytes is smaller than a {layout.name} frame ({layout.frame_bytes})")
    if fmt is PixelFormat.BGRA32:
        return np.ndarray((layout.height, layout.width, 4), np.uint8, buf, 0, (layout.stride, 4, 1))
    if fmt is PixelFormat.GRAY8:
        return np.ndarray((layout.height, layout.width), np.uint8, buf, 0, (layout.stride, 1))
    return np.ndarray((layout.height, layout.width), np.dtype("<u2"), buf, 0, (layout.stride, 2))


def native_bytes(buf, layout: Layout) -> np.ndarray:
    """The same frame as (height, width, bytes_per_pixel) uint8."""
    bpp = layout.bytes_per_pixel
    return np.ndarray((layout.height, layout.width, bpp), np.uint8, buf, 0, (layout.stride, bpp, 1))


def page_view(array_or_buf, layout: Layout) -> np.ndarray:
    """The upright, cropped view of a native frame (a buffer, or an array from native_view)."""
    arr = array_or_buf
    if not (isinstance(arr, np.ndarray) and arr.shape[:2] == (layout.height, layout.width)):
        arr = native_view(array_or_buf, layout)
    rows, cols = layout.visible_rect.slices()
    return layout.orientation.apply(arr[rows, cols])


# BT.601 limited range ("studio swing"), what a browser assumes for VP8 without colour metadata.
# Integer forms with a >>8, all intermediates fit uint16 so that scratch stays 2 bytes per pixel.
#   Y  = ((66 R + 129 G + 25 B + 128) >> 8) + 16
#   Cb = ((-38 R - 74 G + 112 B + 128) >> 8) + 128,  Cr = ((112 R - 94 G - 18 B + 128) >> 8) + 128
_Y_BIAS = 128 + (16 << 8)
_C_BIAS = 128 + (128 << 8)
# Gray needs no matrix: Y = 16 + 219 g / 255. As multiply-shift (found by exhaustive search:
# endpoints exact, never more than 1 off, faster than np.take which converts indices to intp):
_GRAY8_MUL, _GRAY8_ADD = 220, 4204  # g in 0..255
_GRAY16_MAX = 30  # the useful byte reads 0..30 (white): "1/8 brightness"; gain 255/30 folded in
_GRAY16_MUL, _GRAY16_ADD = 1866, 4266  # b in 0..30 -> 16 + 219 b / 30
# RGB565 straight from the 5/6/5 fields: (R5*544 + G6*523 + B5*206 + 4176) >> 8 equals the
# 8-bit-expanded matrix within 1, with exact black (16) and white (235).
_R5_MUL, _G6_MUL, _B5_MUL, _RGB565_ADD = 544, 523, 206, 4176

# Rows converted per pass (even, so chroma rows pair up). Scratch covers one band, not the page:
# a 32-row band of a 1404-wide BGRA frame (180 KB) plus its uint16 scratch (180 KB) fits the
# 512 KB L2 of the rM2's Cortex-A7s; here (x86) it also runs ~1.4x faster than whole frames.
BAND_ROWS = 32


def gray_to_y(gray: np.ndarray | int) -> np.ndarray:
    """Reference mapping for tests: 8-bit gray to limited-range luma, rounded."""
    return np.round(16 + 219 * np.asarray(gray, dtype=np.float64) / 255).astype(np.uint8)


class I420Converter:
    """Native frame -> upright I420 planes, one region at a time.

    ``y`` is (page_height, page_width) uint8, ``u`` and ``v`` half that in each direction; all
    three may be strided views (PyAV planes with line padding). All scratch is allocated here.
    Gray formats (and RGB565: the rM1 panel is gray) fill U = V = 128 once and then write luma
    only; BGRA32 computes chroma from 2x2-averaged RGB.
    """

    def __init__(self, layout: Layout, y: np.ndarray, u: np.ndarray, v: np.ndarray):
        pw, ph = layout.page_width, layout.page_height
        if pw % 2 or ph % 2:
            raise ValueError(f"layout {layout.name}: page {pw}x{ph} is not even; I420 needs even sizes")
        for name, plane, shape in (("y", y, (ph, pw)), ("u", u, (ph // 2, pw // 2)), ("v", v, (ph // 2, pw // 2))):
            if plane.shape != shape or plane.dtype != np.uint8:
                raise ValueError(f"{name} plane must be uint8 {shape}, got {plane.dtype} {plane.shape}")
        self.layout = layout
        self.y, self.u, self.v = y, u, v
        self._page = Rect.full(pw, ph)
        fmt = layout.pixel_format
        self._acc = np.empty((BAND_ROWS, pw), np.uint16)
        self._views: dict[int, tuple[object, np.ndarray]] = {}
        if fmt is PixelFormat.BGRA32:
            self._tmp = np.empty((BAND_ROWS, pw), np.uint16)
            self._half = [np.empty((BAND_ROWS // 2, pw // 2), np.uint16) for _ in range(5)]  # R G B acc tmp
            self._convert = self._bgra
        else:
            u.fill(128)
            v.fill(128)
            if fmt is PixelFormat.RGB565:
                self._tmp = np.empty((BAND_ROWS, pw), np.uint16)
                self._convert = self._rgb565
            elif fmt is PixelFormat.GRAY16:
                self._convert = self._gray16
            else:
                self._convert = self._gray8

    def _page_source(self, native_buf) -> np.ndarray:
        # The upright view of a buffer is cached per buffer object: the pipeline alternates
        # between a couple of capture buffers, and building a view per frame is needless work.
        key = id(native_buf)
        hit = self._views.get(key)
        if hit is not None and hit[0] is native_buf:
            return hit[1]
        layout = self.layout
        if layout.pixel_format is PixelFormat.GRAY16:
            arr = native_bytes(native_buf, layout)[:, :, 0]  # the useful byte
        else:
            arr = native_view(native_buf, layout)
        rows, cols = layout.visible_rect.slices()
        view = layout.orientation.apply(arr[rows, cols])
        if len(self._views) >= 4:
            self._views.clear()
        self._views[key] = (native_buf, view)
        return view

    def convert(self, native_buf, rect: Rect | None = None) -> Rect:
        """Update the planes from ``native_buf`` inside ``rect`` (native coordinates; None = all).

        Returns the region of the page that was rewritten (even-aligned, page coordinates).
        """
        page = self._page if rect is None else self.layout.native_to_page(rect).even().intersect(self._page)
        if page.is_empty:
            return page
        src = self._page_source(native_buf)
        for y0 in range(page.y0, page.y1, BAND_ROWS):
            self._convert(src, Rect(page.x0, y0, page.x1, min(y0 + BAND_ROWS, page.y1)))
        return page

    def _scratch(self, plane: np.ndarray, r: Rect) -> np.ndarray:
        return plane[: r.height, : r.width]

    def _gray8(self, src: np.ndarray, r: Rect) -> None:
        rows, cols = r.slices()
        acc = self._scratch(self._acc, r)
        np.multiply(src[rows, cols], _GRAY8_MUL, out=acc, dtype=np.uint16)
        np.add(acc, _GRAY8_ADD, out=acc)
        np.right_shift(acc, 8, out=acc)
        np.copyto(self.y[rows, cols], acc, casting="unsafe")

    def _gray16(self, src: np.ndarray, r: Rect) -> None:
        rows, cols = r.slices()
        acc = self._scratch(self._acc, r)
        np.minimum(src[rows, cols], _GRAY16_MAX, out=acc, dtype=np.uint16)  # garbage above white stays white
        np.multiply(acc, _GRAY16_MUL, out=acc)
        np.add(acc, _GRAY16_ADD, out=acc)
        np.right_shift(acc, 8, out=acc)
        np.copyto(self.y[rows, cols], acc, casting="unsafe")

    def _rgb565(self, src: np.ndarray, r: Rect) -> None:
        rows, cols = r.slices()
        p = src[rows, cols]
        acc, tmp = self._scratch(self._acc, r), self._scratch(self._tmp, r)
        np.right_shift(p, 11, out=acc)
        np.multiply(acc, _R5_MUL, out=acc)
        np.right_shift(p, 5, out=tmp)
        np.bitwise_and(tmp, 0x3F, out=tmp)
        np.multiply(tmp, _G6_MUL, out=tmp)
        np.add(acc, tmp, out=acc)
        np.bitwise_and(p, 0x1F, out=tmp)
        np.multiply(tmp, _B5_MUL, out=tmp)
        np.add(acc, tmp, out=acc)
        np.add(acc, _RGB565_ADD, out=acc)
        np.right_shift(acc, 8, out=acc)
        np.copyto(self.y[rows, cols], acc, casting="unsafe")

    def _bgra(self, src: np.ndarray, r: Rect) -> None:
        rows, cols = r.slices()
        px = src[rows, cols]
        b, g, rd = px[..., 0], px[..., 1], px[..., 2]
        acc, tmp = self._scratch(self._acc, r), self._scratch(self._tmp, r)
        np.multiply(rd, 66, out=acc, dtype=np.uint16)
        np.multiply(g, 129, out=tmp, dtype=np.uint16)
        np.add(acc, tmp, out=acc)
        np.multiply(b, 25, out=tmp, dtype=np.uint16)
        np.add(acc, tmp, out=acc)
        np.add(acc, _Y_BIAS, out=acc)
        np.right_shift(acc, 8, out=acc)
        np.copyto(self.y[rows, cols], acc, casting="unsafe")

        # Chroma: average each 2x2 block of R, G and B (r is even-aligned), then the matrix.
        hrows, hcols = slice(r.y0 // 2, r.y1 // 2), slice(r.x0 // 2, r.x1 // 2)
        hh, hw = r.height // 2, r.width // 2
        mr, mg, mb, hacc, htmp = (h[:hh, :hw] for h in self._half)
        for chan, mean in ((rd, mr), (g, mg), (b, mb)):
            np.add(chan[0::2, 0::2], chan[0::2, 1::2], out=mean, dtype=np.uint16)
            np.add(mean, chan[1::2, 0::2], out=mean)
            np.add(mean, chan[1::2, 1::2], out=mean)
            np.add(mean, 2, out=mean)
            np.right_shift(mean, 2, out=mean)
        # Cb: the bias goes in before the subtractions so nothing wraps below zero.
        np.multiply(mb, 112, out=hacc)
        np.add(hacc, _C_BIAS, out=hacc)
        np.multiply(mr, 38, out=htmp)
        np.subtract(hacc, htmp, out=hacc)
        np.multiply(mg, 74, out=htmp)
        np.subtract(hacc, htmp, out=hacc)
        np.right_shift(hacc, 8, out=hacc)
        np.copyto(self.u[hrows, hcols], hacc, casting="unsafe")
        # Cr
        np.multiply(mr, 112, out=hacc)
        np.add(hacc, _C_BIAS, out=hacc)
        np.multiply(mg, 94, out=htmp)
        np.subtract(hacc, htmp, out=hacc)
        np.multiply(mb, 18, out=htmp)
        np.subtract(hacc, htmp, out=hacc)
        np.right_shift(hacc, 8, out=hacc)
        np.copyto(self.v[hrows, hcols], hacc, casting="unsafe")
