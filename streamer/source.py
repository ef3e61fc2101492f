"""Where frames come from: the Source protocol, and one factory for the three kinds.

A source fills a caller-owned buffer with one native frame in its ``layout``; the pipeline
allocates its buffers once from ``layout.frame_bytes`` and reuses them for every capture.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from .pixelformat import Layout

KINDS = ("replay", "device", "file")


@runtime_checkable
class Source(Protocol):
    layout: Layout
    description: str  # one line for logs, e.g. "replay of Lines_v2.rm as rm2-3.24-bgra"

    def read_into(self, buf) -> None:
        """Fill ``buf`` (len == layout.frame_bytes, writable) with the current screen."""

    def close(self) -> None: ...


class PreadSource:
    """A screen read with one ``preadv`` per frame from a file (a dump, /proc/<pid>/mem, /dev/fb0)
    at ``offset``, straight into the caller's buffer."""

    layout: Layout
    description: str

    def __init__(self, path, offset: int, layout: Layout):
        self.layout = layout
        self.offset = offset
        self._fd = os.open(path, os.O_RDONLY)

    def read_into(self, buf) -> None:
        n = os.preadv(self._fd, [buf], self.offset)
        if n != self.layout.frame_bytes:
            raise OSError(self.short_read(n))

    def short_read(self, n: int) -> str:
        return f"short read of the screen: {n} of {self.layout.frame_bytes} bytes at {self.offset:#x}"

    def close(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(kind: str, *, layout_name: str | None, path: Path | None, loop: bool = True,
                pause: float = 3.0, root: Path = Path("/"), clock=time.monotonic) -> Source:
    """A source of ``kind`` ("replay", "device" or "file").

    replay: ``path`` is a .rm page (None: the built-in Hershey page), drawn in ``layout_name``
    (default rm2-3.24-bgra). device: the tablet below ``root``; ``layout_name`` forces a layout.
    file: a raw dump at ``path`` in ``layout_name`` (a known name or WIDTHxHEIGHT:FORMAT[...]).
    """
    from .layouts import DEFAULT_REPLAY_LAYOUT, get_layout

    if kind == "replay":
        from .replay import open_replay

        layout = get_layout(layout_name or DEFAULT_REPLAY_LAYOUT)
        return open_replay(Path(path) if path is not None else None, layout, loop=loop, pause=pause, clock=clock)
    if kind == "device":
        from .device import DeviceSource

        return DeviceSource.open(Path(root), layout_name)
    if kind == "file":
        from .filesource import FileSource

        if path is None:
            raise ValueError("--source file needs --file PATH, a raw framebuffer dump")
        if not layout_name:
            raise ValueError("--source file needs --layout: a known name (inkcast layouts) or WIDTHxHEIGHT:FORMAT")
        return FileSource(path, layout_name)
    raise ValueError(f"unknown source kind {kind!r}: use one of {', '.join(KINDS)}")
