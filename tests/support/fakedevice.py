"""A fake tablet below a tmp directory: /sys, /etc, /proc with xochitl, and its memory.

Built from what real tablets show: the machine names and release files of rM1/rM2/Paper Pro,
``/proc/<pid>/maps`` laid out like a real xochitl (its binary, heap, Qt and C libraries, the
``/dev/fb0`` or ``/dev/dri/card0`` mappings and the anonymous mapping after them, stack,
vectors), a ``xochitl_pdf_renderer`` decoy and other processes. ``/proc/<pid>/mem`` is a sparse
file whose offsets are the virtual addresses, so a frame 2.6 MB into a mapping 1.9 GB up costs
only the frame's own bytes on disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from streamer.layouts import AFTER_ANCHOR, FB0, WALK_HEADERS, KnownLayout

XOCHITL_PID = 312
PDF_RENDERER_PID = 298  # lower than xochitl's, so "first process mentioning xochitl" picks it

MACHINES = {"rM1": "reMarkable 1.0", "rM2": "reMarkable 2.0", "Paper Pro": "reMarkable Ferrari",
            "Paper Pro Move": "reMarkable Chiappa"}


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def write_machine(root: Path, machine: str) -> None:
    write(root / "sys/devices/soc0/machine", machine + "\n")


def write_firmware(root: Path, firmware: str, where: str = "os-release") -> None:
    if where == "os-release":
        write(root / "etc/os-release", (
            'ID=codex\nNAME="Codex Linux"\nVERSION="4.0.1208 (kirkstone)"\nVERSION_ID=4.0.1208\n'
            'PRETTY_NAME="Codex Linux 4.0.1208 (kirkstone)"\nDISTRO_CODENAME="kirkstone"\n'
            f'IMG_VERSION="{firmware}"\n'))
    else:  # older firmware: no IMG_VERSION, the version only in update.conf
        write(root / "etc/os-release", 'ID=codex\nNAME="Codex Linux"\nVERSION_ID=3.1.266\n')
        write(root / "usr/share/remarkable/update.conf", (
            "[General]\n#REMARKABLE_RELEASE_APPID={98DA7DF2-4E3E-4744-9DE6-EC931886ABAB}\n"
            "SERVER=https://updates.cloud.remarkable.engineering/service/update2\nGROUP=Prod\n"
            f"PLATFORM=reMarkable2\nREMARKABLE_RELEASE_VERSION={firmware}\n"))


def add_process(root: Path, pid: int, exe: str | None, maps: str = "") -> Path:
    d = root / "proc" / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    if exe is not None:
        os.symlink(exe, d / "exe")  # absolute and dangling below root, like readlink sees it
    write(d / "maps", maps)
    write(d / "comm", (Path(exe).name if exe else f"kworker/{pid}") + "\n")
    return d


def _line(start: int, end: int, perms: str, offset: int = 0, dev: str = "00:00", inode: int = 0,
          path: str = "", width: int = 8) -> str:
    head = f"{start:0{width}x}-{end:0{width}x} {perms} {offset:08x} {dev} {inode}"
    return f"{head:<{73 if width == 8 else 81}}{path}".rstrip() if path else head + " "


def _libs(base: int, names: list[str], width: int) -> list[str]:
    out, at = [], base
    for i, name in enumerate(names):
        inode = 4000 + 17 * i
        size = 0x1000 * (32 + 23 * (i % 7))
        out += [_line(at, at + size, "r-xp", 0, "b3:02", inode, name, width),
                _line(at + size, at + size + 0x10000, "---p", size, "b3:02", inode, name, width),
                _line(at + size + 0x10000, at + size + 0x12000, "r--p", size, "b3:02", inode, name, width),
                _line(at + size + 0x12000, at + size + 0x13000, "rw-p", size + 0x2000, "b3:02", inode, name, width)]
        at += size + 0x14000
    return out


ARM_LIBS = ["/usr/lib/libQt5Quick.so.5.15.7", "/usr/lib/libQt5Qml.so.5.15.7", "/usr/lib/libQt5Gui.so.5.15.7",
            "/usr/lib/libQt5Network.so.5.15.7", "/usr/lib/libQt5Core.so.5.15.7", "/usr/lib/libz.so.1.2.13",
            "/usr/lib/libstdc++.so.6.0.30", "/lib/libm.so.6", "/lib/libgcc_s.so.1", "/lib/libc.so.6"]


def rm2_maps(anchor_start: int, after_start: int, after_size: int, *, with_fb0: bool = True) -> str:
    """A 32-bit xochitl: ``/dev/fb0`` then the anonymous mapping holding the screen."""
    lines = [
        _line(0x00010000, 0x00bd2000, "r-xp", 0, "b3:02", 1583, "/usr/bin/xochitl"),
        _line(0x00be1000, 0x00c2d000, "r--p", 0x00bc1000, "b3:02", 1583, "/usr/bin/xochitl"),
        _line(0x00c2d000, 0x00c35000, "rw-p", 0x00c0d000, "b3:02", 1583, "/usr/bin/xochitl"),
        _line(0x00c35000, 0x00c3c000, "rw-p"),
        _line(0x01bd9000, 0x04a3e000, "rw-p", path="[heap]"),
        _line(0x5e400000, 0x5e4fe000, "rw-p"),
        _line(0x5e4fe000, 0x5e500000, "---p"),
        _line(0x62c00000, 0x62d00000, "rw-s", 0, "00:05", 3081, "/dev/shm/qipc_sharedmemory_xochitl"),
    ]
    if with_fb0:
        lines.append(_line(anchor_start, after_start, "rw-s", 0, "00:06", 247, "/dev/fb0"))
    else:
        lines.append(_line(anchor_start, after_start, "rw-p"))
    lines += [
        _line(after_start, after_start + after_size, "rw-p"),
        _line(after_start + after_size, after_start + after_size + 0x801000, "rw-p"),
        _line(0x76a00000, 0x76a21000, "rw-p"),
        _line(0x76a21000, 0x76b00000, "---p"),
    ]
    lines += _libs(0x76b20000, ARM_LIBS, 8)
    lines += [
        _line(0x76fc8000, 0x76fe9000, "r-xp", 0, "b3:02", 2101, "/lib/ld-linux-armhf.so.3"),
        _line(0x76ff4000, 0x76ff5000, "r-xp", path="[sigpage]"),
        _line(0x76ff5000, 0x76ff6000, "r--p", 0x21000, "b3:02", 2101, "/lib/ld-linux-armhf.so.3"),
        _line(0x76ff6000, 0x76ff7000, "rw-p", 0x22000, "b3:02", 2101, "/lib/ld-linux-armhf.so.3"),
        _line(0x7ebd3000, 0x7ebf4000, "rw-p", path="[stack]"),
        _line(0xffff0000, 0xffff1000, "r-xp", path="[vectors]"),
    ]
    return "\n".join(lines) + "\n"


def rmpp_maps(card0_start: int, card0_count: int, tile: int, after_size: int) -> str:
    """A 64-bit xochitl: a run of ``/dev/dri/card0`` buffers, then the mapping holding the screen."""
    w = 10
    lines = [
        _line(0x5578a10000, 0x557a2c1000, "r-xp", 0, "b3:05", 1583, "/usr/bin/xochitl", w),
        _line(0x557a2d0000, 0x557a34a000, "r--p", 0x18b0000, "b3:05", 1583, "/usr/bin/xochitl", w),
        _line(0x557a34a000, 0x557a356000, "rw-p", 0x192a000, "b3:05", 1583, "/usr/bin/xochitl", w),
        _line(0x557bd00000, 0x557e1c4000, "rw-p", path="[heap]", width=w),
        _line(0x7f7a000000, 0x7f7a021000, "rw-p", width=w),
        _line(0x7f7a021000, 0x7f7e000000, "---p", width=w),
    ]
    at = card0_start
    for i in range(card0_count):
        lines.append(_line(at, at + tile, "rw-s", 0x100000 * i, "00:06", 287, "/dev/dri/card0", w))
        at += tile
    lines += [_line(at, at + after_size, "rw-p", width=w),
              _line(at + after_size, at + after_size + 0x1000, "---p", width=w)]
    lines += _libs(0x7f8e200000, [n.replace("/lib/", "/usr/lib/") for n in ARM_LIBS], w)
    lines += [
        _line(0x7f8f7d0000, 0x7f8f7fb000, "r-xp", 0, "b3:05", 2101, "/usr/lib/ld-linux-aarch64.so.1", w),
        _line(0x7f8f800000, 0x7f8f802000, "r--p", path="[vvar]", width=w),
        _line(0x7f8f802000, 0x7f8f803000, "r-xp", path="[vdso]", width=w),
        _line(0x7fe7a10000, 0x7fe7a31000, "rw-p", path="[stack]", width=w),
    ]
    return "\n".join(lines) + "\n"


def write_sparse(path: Path, chunks: dict[int, bytes], size: int | None = None) -> None:
    """Write ``chunks`` at their addresses; ``size`` extends the file (mapped pages read as 0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "r+b" if path.exists() else "wb") as f:
        for at, data in sorted(chunks.items()):
            f.seek(at)
            f.write(data)
        if size is not None and size > f.seek(0, os.SEEK_END):
            f.truncate(size)


@dataclass
class FakeTablet:
    root: Path
    address: int  # where the frame was put
    pid: int | None


RM2_FB0 = 0x73a55000
RM2_AFTER = 0x73f59000
RMPP_CARD0 = 0x7f80000000
RMPP_TILE = 1757184  # the size of each card0 buffer on a real Paper Pro (goMarkableStream #158)


def make_tablet(root: Path, entry: KnownLayout, frame: bytes | None, *, firmware: str,
                machine: str | None = None, firmware_file: str = "os-release", xochitl: bool = True,
                with_anchor: bool = True) -> FakeTablet:
    """A fake tablet for ``entry``'s model, with ``frame`` where that entry's method finds it."""
    write_machine(root, machine if machine is not None else MACHINES[entry.model])
    write_firmware(root, firmware, firmware_file)
    layout = entry.layout
    add_process(root, 1, "/lib/systemd/systemd", "")
    add_process(root, 2, None)  # kthreadd: no exe link
    add_process(root, 201, "/usr/sbin/dropbear", "")
    if entry.locate == FB0:
        fb = bytearray(layout.frame_bytes * 2)  # double-buffered, like the real 1408 x 3840 fb0
        if frame is not None:
            fb[: len(frame)] = frame
        write(root / "dev/fb0", bytes(fb))
        return FakeTablet(root, 0, None)

    pdf = add_process(root, PDF_RENDERER_PID, "/usr/bin/xochitl_pdf_renderer",
                      rm2_maps(RM2_FB0 + 0x100000, RM2_AFTER + 0x100000, 0x400000, with_fb0=False))
    write_sparse(pdf / "mem", {0x10000: b"\x7fELF"})
    if entry.locate == AFTER_ANCHOR:
        size = max(layout.offset + layout.frame_bytes + 0x1000, 0x1000000)
        maps = rm2_maps(RM2_FB0, RM2_AFTER, size, with_fb0=with_anchor)
        mapped_end = RM2_AFTER + size
        address = RM2_AFTER + layout.offset
        chunks = {RM2_FB0: os.urandom(4096)}  # what /dev/fb0 itself holds on an rM2: noise
        if frame is not None:
            chunks[address] = frame
    elif entry.locate == WALK_HEADERS:
        count = 12
        maps = rmpp_maps(RMPP_CARD0, count, RMPP_TILE, 0x2000000)
        mapped_end = RMPP_CARD0 + count * RMPP_TILE + 0x2000000
        if not with_anchor:
            maps = maps.replace("/dev/dri/card0", "/dev/dri/renderD128")
        start = RMPP_CARD0 + count * RMPP_TILE
        # Two small blocks, then the frame's block; lengths carry the mmapped flag (2).
        blocks = [0x1000, 0x10000]
        chunks, at = {}, 0
        for size in blocks:
            chunks[start + at + 8] = (size + 2).to_bytes(8, "little")
            at += size
        chunks[start + at + 8] = (layout.frame_bytes + 0x1000 + 2).to_bytes(8, "little")
        address = start + at + layout.offset
        if frame is not None:
            chunks[address] = frame
    else:
        raise ValueError(entry.locate)
    if xochitl:
        d = add_process(root, XOCHITL_PID, "/usr/bin/xochitl", maps)
        write_sparse(d / "mem", chunks, mapped_end)
    return FakeTablet(root, address, XOCHITL_PID if xochitl else None)


def render_page(page_path: Path | None, layout) -> bytes:
    """A page (None: the built-in one) drawn to its end by the replay, as native frame bytes."""
    from streamer.replay import finished_frame

    return finished_frame(page_path, layout)
