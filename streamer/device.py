"""The device source: the real tablet's screen, read from where its firmware keeps it.

rM1 has a real framebuffer, ``/dev/fb0``. On rM2 and Paper Pro the screen is drawn by xochitl in
its own memory: find the xochitl process, find the mapping its layout is anchored to in
``/proc/<pid>/maps``, and read ``/proc/<pid>/mem`` there with ``os.preadv`` straight into the
caller's buffer. Which layout applies comes from the model and firmware (``layouts.KNOWN``); the
first frame is checked, because a firmware update that moves the buffer gives noise or zeros,
and streaming that would be worse than a clear error.

Everything is read below ``root`` so tests can build a fake ``/proc`` and ``/sys``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .layouts import (
    AFTER_ANCHOR,
    FB0,
    KNOWN,
    LAYOUTS,
    MODELS,
    WALK_HEADERS,
    KnownLayout,
    Version,
    entry_for_layout,
    find_known,
    get_layout,
    parse_version,
)
from .pixelformat import Layout, PixelFormat, native_bytes, native_view
from .source import PreadSource

XOCHITL = "/usr/bin/xochitl"
WHAT_TO_DO = ("Force a layout with --layout NAME (known: {known}) if you know the right one, or report "
              "the model and firmware on the inkcast issue tracker so that it gets a table entry.")


class UnsupportedDevice(Exception):
    """This tablet's screen cannot be read (unknown model or firmware, or the frame looks wrong)."""


@dataclass(frozen=True)
class DeviceInfo:
    machine: str  # /sys/devices/soc0/machine, e.g. "reMarkable 2.0"
    firmware: str  # e.g. "3.24.0.149", or "" if not found

    @property
    def model(self) -> str | None:
        return MODELS.get(self.machine)

    @property
    def version(self) -> Version | None:
        try:
            return parse_version(self.firmware) if self.firmware else None
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"model {self.machine or 'unknown'!r}, firmware {self.firmware or 'unknown'}"


def _fail(info: DeviceInfo, what: str) -> UnsupportedDevice:
    return UnsupportedDevice(f"{what} ({info}). " + WHAT_TO_DO.format(known=", ".join(LAYOUTS)))


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _key_value(text: str | None, key: str) -> str:
    for line in (text or "").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() == key:
            return value.strip().strip("\"'")
    return ""


def read_device_info(root: Path = Path("/")) -> DeviceInfo:
    machine = (_read_text(root / "sys/devices/soc0/machine") or "").replace("\x00", "").strip()
    firmware = _key_value(_read_text(root / "etc/os-release"), "IMG_VERSION") or \
        _key_value(_read_text(root / "usr/share/remarkable/update.conf"), "REMARKABLE_RELEASE_VERSION")
    return DeviceInfo(machine, firmware)


def find_xochitl(root: Path = Path("/")) -> int | None:
    """The pid whose executable is exactly /usr/bin/xochitl (not xochitl_pdf_renderer)."""
    proc = root / "proc"
    try:
        names = sorted((n for n in os.listdir(proc) if n.isdigit()), key=int)
    except OSError:
        return None
    for name in names:
        try:
            if os.readlink(proc / name / "exe") == XOCHITL:
                return int(name)
        except OSError:  # kernel threads have no exe; other users' processes may be unreadable
            continue
    return None


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    perms: str
    path: str


def parse_maps(text: str) -> list[Mapping]:
    maps = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5 or "-" not in fields[0]:
            continue
        lo, _, hi = fields[0].partition("-")
        try:
            maps.append(Mapping(int(lo, 16), int(hi, 16), fields[1], fields[5].strip() if len(fields) > 5 else ""))
        except ValueError:
            continue
    return maps


def frame_problem(buf, layout: Layout) -> str | None:
    """Why a frame does not look like a screen (None if it does): zeros, or noise."""
    raw = np.frombuffer(buf, np.uint8, count=layout.frame_bytes)
    if not raw.any():
        return "the frame is all zeros, so the offset is wrong for this firmware"
    # A screen is mostly paper: one value dominates. Noise (a wrong offset into other data) has
    # no dominant value. Sample a 64 x 64 grid of pixels; cheap, and enough to tell.
    px = native_view(buf, layout)
    rows = np.linspace(0, layout.height - 1, 64).astype(int)
    cols = np.linspace(0, layout.width - 1, 64).astype(int)
    grid = px[np.ix_(rows, cols)]
    if layout.pixel_format is PixelFormat.BGRA32:
        values = grid.reshape(-1, 4).copy().view("<u4").ravel()
    else:
        values = grid.ravel()
    counts = np.unique(values, return_counts=True)[1]
    top = counts.max() / values.size
    if top < 0.25:
        return f"the frame looks like noise (its most common pixel value covers only {top:.0%} of it)"
    if layout.pixel_format is PixelFormat.BGRA32:
        alpha = grid[..., 3].ravel()
        share = np.unique(alpha, return_counts=True)[1].max() / alpha.size
        if share < 0.99:
            return "the frame looks like noise (its alpha bytes are not constant, so pixels are misaligned)"
    if layout.pixel_format is PixelFormat.GRAY16:
        b = native_bytes(buf, layout)[np.ix_(rows, cols)]
        share = np.mean((b[..., 1] == 0) & (b[..., 0] <= 31))
        if share < 0.99:
            return "the frame looks like noise (values outside the gray16 range 0..30)"
    return None


def _locate(root: Path, info: DeviceInfo, entry: KnownLayout) -> tuple[Path, int, str]:
    """(file to pread, address of the frame, what it is) for a table entry."""
    layout = entry.layout
    if entry.locate == FB0:
        path = root / "dev/fb0"
        if not path.exists():
            raise _fail(info, "no /dev/fb0 to read the screen from")
        return path, layout.offset, "/dev/fb0"
    pid = find_xochitl(root)
    if pid is None:
        raise _fail(info, f"xochitl is not running (no process whose exe is {XOCHITL}); is the tablet UI up?")
    maps_text = _read_text(root / f"proc/{pid}/maps")
    if maps_text is None:
        raise _fail(info, f"cannot read /proc/{pid}/maps (the streamer must run as root)")
    maps = parse_maps(maps_text)
    mem = root / f"proc/{pid}/mem"
    anchored = [i for i, m in enumerate(maps) if m.path == entry.anchor]
    if not anchored:
        raise _fail(info, f"xochitl (pid {pid}) has no {entry.anchor} mapping, "
                          "so this firmware draws its screen differently")
    if entry.locate == AFTER_ANCHOR:
        i = anchored[0]
        if i + 1 >= len(maps):
            raise _fail(info, f"nothing is mapped after {entry.anchor} in xochitl (pid {pid})")
        region = maps[i + 1]
        address = region.start + layout.offset
    elif entry.locate == WALK_HEADERS:
        last = maps[anchored[-1]]
        follow = [m for m in maps if m.start == last.end and m.perms.startswith("r")]
        if not follow:
            raise _fail(info, f"no readable mapping right after the last {entry.anchor} in xochitl (pid {pid})")
        region = follow[0]
        address = _walk_headers(mem, region, layout) + layout.offset
        if address < 0:
            raise _fail(info, f"walking allocation headers after {entry.anchor} did not find a frame-sized block")
    else:
        raise ValueError(f"unknown locate method {entry.locate!r}")
    if address + layout.frame_bytes > region.end:
        raise _fail(info, f"a {layout.name} frame at {address:#x} would run past the mapping ending at {region.end:#x}")
    return mem, address, f"xochitl pid {pid} at {address:#x}"


def _walk_headers(mem: Path, region: Mapping, layout: Layout, max_steps: int = 100) -> int:
    # goMarkableStream's Paper Pro method: malloc-style blocks, a little-endian length at +8
    # (low bits are flags, hence -2); hop block to block until one is at least a frame long.
    offset, length = 0, 2
    try:
        fd = os.open(mem, os.O_RDONLY)
    except OSError:
        return -1
    try:
        for _ in range(max_steps):
            if length >= layout.frame_bytes:
                return region.start + offset
            offset += length - 2
            at = region.start + offset + 8
            if at + 8 > region.end:
                return -1
            header = os.pread(fd, 8, at)
            if len(header) < 4:
                return -1
            length = int.from_bytes(header[:4], "little")
            if length < 2 or length > region.end - region.start:
                return -1
        return -1
    finally:
        os.close(fd)


class DeviceSource(PreadSource):
    """The tablet's own screen. Build with :meth:`open`."""

    def __init__(self, info: DeviceInfo, entry: KnownLayout, path: Path, address: int, where: str):
        super().__init__(path, address, entry.layout)
        self.info = info
        self.address = address
        self.description = f"{info.machine} {info.firmware or '(firmware unknown)'} as {self.layout.name}, {where}"

    @classmethod
    def open(cls, root: Path = Path("/"), layout_name: str | None = None) -> DeviceSource:
        info = read_device_info(root)
        entry = cls._entry(info, layout_name)
        path, address, where = _locate(root, info, entry)
        source = cls(info, entry, path, address, where)
        try:
            first = bytearray(entry.layout.frame_bytes)  # once, at open: the validation frame
            source.read_into(first)
            problem = frame_problem(first, entry.layout)
        except OSError as exc:
            source.close()
            raise _fail(info, f"reading the {entry.layout.name} frame failed: {exc}") from exc
        if problem:
            source.close()
            forced = f"the forced layout {entry.layout.name}" if layout_name else f"layout {entry.layout.name}"
            raise _fail(info, f"{forced}: {problem}")
        return source

    @staticmethod
    def _entry(info: DeviceInfo, layout_name: str | None) -> KnownLayout:
        if not info.machine:
            raise UnsupportedDevice("not a reMarkable: /sys/devices/soc0/machine is missing. On a computer, "
                                    "--source replay writes a page as a tablet would (inkcast demo runs the lot)")
        if layout_name:
            layout = get_layout(layout_name)
            try:
                known = entry_for_layout(layout.name)
            except KeyError:  # an explicit WxH:format spec: locate it the way this model's entries do
                model_entries = [k for k in KNOWN if k.model == info.model] or [k for k in KNOWN if k.model == "rM2"]
                known = model_entries[-1]
            return KnownLayout(known.model, (0,), None, layout, known.locate, known.anchor)
        if info.model is None:
            raise _fail(info, "unknown tablet model")
        version = info.version
        if version is None:
            raise _fail(info, "cannot tell the firmware version (no IMG_VERSION in /etc/os-release, "
                              "no REMARKABLE_RELEASE_VERSION in /usr/share/remarkable/update.conf)")
        entry = find_known(info.model, version)
        if entry is None:
            raise _fail(info, f"no known screen layout for {info.model} firmware {info.firmware}")
        return entry


