"""The file source: a raw framebuffer dump in a named (or explicitly described) layout.

The file is read again, with ``os.preadv`` into the caller's buffer, on every capture, so a dump
that another process keeps rewriting shows its changes.
"""

from __future__ import annotations

import os
from pathlib import Path

from .layouts import get_layout
from .pixelformat import Layout
from .source import PreadSource


class FileSource(PreadSource):
    def __init__(self, path: Path | str, layout: Layout | str):
        self.path = Path(path)
        super().__init__(self.path, 0, get_layout(layout) if isinstance(layout, str) else layout)
        self.description = f"file {self.path.name} as {self.layout.name}"
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

    def short_read(self, n: int) -> str:
        return f"{self.path}: read {n} of {self.layout.frame_bytes} bytes (did the file shrink?)"
