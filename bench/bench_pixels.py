"""Pixel-layer figures, run by hand: change detection and I420 conversion per layout.

    .venv/bin/python bench/bench_pixels.py [--repeat 15] [--layouts rm2-3.24-bgra,rmpp-3.20-bgra]

Each figure is the best of ``--repeat`` runs (ms), against a naive baseline measured in the same
run: ``np.array_equal`` for comparing, and for converting the obvious route of an upright RGB
copy handed to PyAV (``VideoFrame.from_ndarray(rgb, "rgb24").reformat("yuv420p")``).
The frame is the built-in Hershey page, rendered by the replay in each layout's native format.
"""

from __future__ import annotations

import argparse
import platform
import time

import av
import numpy as np

from streamer.changes import ChangeDetector
from streamer.layouts import LAYOUTS
from streamer.pixelformat import I420Converter, Layout, PixelFormat, Rect, native_bytes, page_view
from streamer.replay import finished_frame


def best_ms(fn, repeat: int, timer=time.perf_counter) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = timer()
        fn()
        best = min(best, timer() - t)
    return best * 1000


def render(layout: Layout) -> bytearray:
    return bytearray(finished_frame(None, layout))


def naive_rgb(buf, layout: Layout) -> np.ndarray:
    """Upright RGB the straightforward way (a new array per frame)."""
    fmt = layout.pixel_format
    if fmt is PixelFormat.BGRA32:
        return np.ascontiguousarray(page_view(buf, layout)[..., 2::-1])
    if fmt is PixelFormat.GRAY16:
        rows, cols = layout.visible_rect.slices()
        g = layout.orientation.apply(native_bytes(buf, layout)[rows, cols, 0]).astype(np.uint16) * 255 // 30
    elif fmt is PixelFormat.RGB565:
        p = page_view(buf, layout)
        r, gg, b = (p >> 11) << 3, ((p >> 5) & 63) << 2, (p & 31) << 3
        return np.dstack((r, gg, b)).astype(np.uint8)
    else:
        g = page_view(buf, layout)
    return np.repeat(g.astype(np.uint8)[..., None], 3, axis=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    args = ap.parse_args()
    print(f"# {platform.machine()} {platform.processor() or ''} python {platform.python_version()} "
          f"numpy {np.__version__} av {av.__version__}; best of {args.repeat}, ms")
    print(f"{'layout':16} {'MB':>5} | {'cmp same':>8} {'array_eq':>8} {'ratio':>5} | {'cmp 1px':>7} {'cmp page':>8} | "
          f"{'I420 full':>9} {'PyAV rgb':>8} {'ratio':>5} | {'dirty':>6} {'ratio':>6}")
    for name in args.layouts.split(","):
        layout = LAYOUTS[name]
        a = render(layout)
        same = bytearray(a)
        one = bytearray(a)
        one[len(one) // 2] ^= 0x10
        page = bytearray(np.bitwise_xor(np.frombuffer(a, np.uint8), 1).tobytes())  # every byte differs
        det = ChangeDetector(layout)
        na, ns = np.frombuffer(a, np.uint8), np.frombuffer(same, np.uint8)
        t_same = best_ms(lambda: det.compare(a, same), args.repeat)
        t_eq = best_ms(lambda: np.array_equal(na, ns), args.repeat)
        t_one = best_ms(lambda: det.compare(one, a), args.repeat)
        t_page = best_ms(lambda: det.compare(page, a), args.repeat)

        pw, ph = layout.page_width, layout.page_height
        y = np.empty((ph, pw + 32), np.uint8)[:, :pw]  # strided, like PyAV planes
        u = np.empty((ph // 2, pw // 2 + 32), np.uint8)[:, : pw // 2]
        v = np.empty((ph // 2, pw // 2 + 32), np.uint8)[:, : pw // 2]
        conv = I420Converter(layout, y, u, v)
        t_full = best_ms(lambda: conv.convert(a), args.repeat)
        def pyav():
            return av.VideoFrame.from_ndarray(naive_rgb(a, layout), format="rgb24").reformat(format="yuv420p")

        t_pyav = best_ms(pyav, max(3, args.repeat // 3))
        # a pen stroke's worth of change between two captures: ~240 x 80 page pixels
        stroke = layout.page_to_native(Rect(400, 500, 640, 580))
        t_dirty = best_ms(lambda: conv.convert(a, stroke), args.repeat)
        print(f"{name:16} {layout.frame_bytes / 1e6:5.1f} | {t_same:8.2f} {t_eq:8.2f} {t_eq / t_same:5.1f} | "
              f"{t_one:7.2f} {t_page:8.2f} | {t_full:9.2f} {t_pyav:8.2f} {t_pyav / t_full:5.1f} | "
              f"{t_dirty:6.3f} {t_pyav / t_dirty:6.0f}")


if __name__ == "__main__":
    main()
