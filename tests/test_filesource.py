"""Raw framebuffer dumps as a source: re-read every capture, sized exactly, layouts by name or spec."""

import numpy as np
import pytest

from streamer.filesource import FileSource
from streamer.layouts import LAYOUTS, RM2_BGRA, get_layout
from streamer.pixelformat import FLIP_VERTICAL, I420Converter, PixelFormat
from streamer.replay import finished_frame
from streamer.source import open_source


def hershey_frame(layout):
    return finished_frame(None, layout)


@pytest.fixture(scope="module")
def gray16_frame():
    return hershey_frame(LAYOUTS["rm2-3.6-gray16"])


def test_a_dump_reads_back_and_converts(tmp_path, gray16_frame):
    layout = LAYOUTS["rm2-3.6-gray16"]
    dump = tmp_path / "fb.raw"
    dump.write_bytes(gray16_frame)
    with open_source("file", layout_name=layout.name, path=dump) as src:
        assert src.layout is layout and "fb.raw" in src.description
        buf = bytearray(layout.frame_bytes)
        src.read_into(buf)
        assert buf == gray16_frame
        y = np.empty((1872, 1404), np.uint8)
        u = np.empty((936, 702), np.uint8)
        I420Converter(layout, y, u, u.copy()).convert(buf)
        assert (y < 128).sum() > 10000 and y[-10, -10] == 235


def test_a_changing_file_shows_its_changes(tmp_path, gray16_frame):
    layout = LAYOUTS["rm2-3.6-gray16"]
    dump = tmp_path / "fb.raw"
    dump.write_bytes(gray16_frame)
    with FileSource(dump, layout) as src:
        buf = bytearray(layout.frame_bytes)
        src.read_into(buf)
        with open(dump, "r+b") as f:  # another process rewriting the dump in place
            f.seek(1000)
            f.write(b"\x00\x00" * 50)
        src.read_into(buf)
        assert buf[1000:1100] == b"\x00" * 100 and buf[:1000] == gray16_frame[:1000]


def test_a_file_of_the_wrong_size_is_a_clear_error(tmp_path):
    dump = tmp_path / "short.raw"
    dump.write_bytes(b"\xff" * (RM2_BGRA.frame_bytes - 4))
    with pytest.raises(ValueError) as exc:
        FileSource(dump, RM2_BGRA)
    msg = str(exc.value)
    assert str(RM2_BGRA.frame_bytes - 4) in msg and str(RM2_BGRA.frame_bytes) in msg and "rm2-3.24-bgra" in msg
    big = tmp_path / "double.raw"
    big.write_bytes(b"\xff" * (RM2_BGRA.frame_bytes * 2))
    with pytest.raises(ValueError, match="bytes"):
        FileSource(big, RM2_BGRA)


def test_a_file_that_shrinks_later_is_an_error(tmp_path):
    dump = tmp_path / "fb.raw"
    dump.write_bytes(b"\xff" * RM2_BGRA.frame_bytes)
    with FileSource(dump, RM2_BGRA) as src:
        dump.write_bytes(b"\xff" * 10)
        with pytest.raises(OSError, match="shrink"):
            src.read_into(bytearray(RM2_BGRA.frame_bytes))


def test_an_explicit_size_and_format(tmp_path):
    frame = hershey_frame(RM2_BGRA)
    dump = tmp_path / "fb.bgra"
    dump.write_bytes(frame)
    with open_source("file", layout_name="1404x1872:bgra32:flip-v", path=dump) as src:
        lay = src.layout
        assert (lay.pixel_format, lay.width, lay.height) == (PixelFormat.BGRA32, 1404, 1872)
        assert lay.orientation == FLIP_VERTICAL
        buf = bytearray(lay.frame_bytes)
        src.read_into(buf)
        assert buf == frame
    lay = get_layout("1408x1872:rgb565:stride=2816")
    assert lay.frame_bytes == 1408 * 1872 * 2


@pytest.mark.parametrize("spec", ["nonsense", "1404x1872:bgr24", "1404x1872:bgra32:sideways", "0x10:gray8"])
def test_bad_layout_specs_are_explained(spec):
    with pytest.raises(ValueError, match="layout|format|size"):
        get_layout(spec)


def test_open_source_arguments(tmp_path):
    with pytest.raises(ValueError, match="needs --layout"):
        open_source("file", layout_name=None, path=tmp_path / "x")
    with pytest.raises(ValueError, match="needs --file"):
        open_source("file", layout_name="rm2-3.24-bgra", path=None)
    with pytest.raises(ValueError, match="unknown source kind"):
        open_source("camera", layout_name=None, path=None)
    with pytest.raises(FileNotFoundError):
        open_source("file", layout_name="rm2-3.24-bgra", path=tmp_path / "missing.raw")
