"""The file source: a raw framebuffer dump in a named (or explicitly described) layout.

The file is read again, with ``os.preadv`` into the caller's buffer, on every capture, so a dump
that another process keeps rewriting shows its changes.
"""

from __future__ import annotations

import os
from pathlib import Path

from .layouts import get_layout
from .pixelformat import Layout


class FileSource:
    def __init__(self, path: Path | str, layout: Layout | str):
        self.path = Path(path)
        self.layout = get_layout(layout) if isinstance(layout, str) else layout
        self.description = f"file {self.path.name} as {self.layout.name}"
        self._fd = os.open(self.path, os.O_RDONLY)
        try:
            self._check_size()
        except Exception:
            self.close()
            raise

    def _check_size(self) -> None:
        size = os.fstat(self._fd).st_size
        need = self.layout.frame_bytes
        if size != need:
            lay = self.layout
            raise ValueError(
                f"{self.path}: {size} bytes, but a {lay.name} frame ({lay.width}x{lay.height} "
                f"{lay.pixel_format.value}, stride {lay.stride}) is {need} bytes; pick the layout the dump "
                f"was taken with, or describe it as WIDTHxHEIGHT:FORMAT[:stride=N][:ORIENTATION]")

    def read_into(self, buf) -> None:
        n = os.preadv(self._fd, [buf], 0)
        if n != self.layout.frame_bytes:
            raise OSError(f"{self.path}: read {n} of {self.layout.frame_bytes} bytes (did the file shrink?)")

    def close(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
