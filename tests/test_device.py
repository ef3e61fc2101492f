"""Finding and reading the tablet's screen, against fake /proc and /sys trees built from real data."""

import os
import tracemalloc

import numpy as np
import pytest

from streamer.device import DeviceSource, UnsupportedDevice, frame_problem, parse_maps, read_device_info
from streamer.layouts import KNOWN, LAYOUTS, RM2_BGRA, find_known, parse_version
from streamer.source import open_source
from support.fakedevice import (
    PDF_RENDERER_PID,
    XOCHITL_PID,
    make_tablet,
    render_page,
    rm2_maps,
    write_sparse,
)


def firmware_in(entry) -> str:
    """A realistic version string inside the entry's range."""
    major, minor = (entry.since + (0,))[:2]
    return f"{major}.{minor}.2.{1000 + 17 * minor}"


@pytest.fixture(scope="module")
def frames(request):
    """A real page (Lines_v2.rm) rendered by the replay renderer in every known layout.

    Without the fixture pages the built-in Hershey page stands in: these tests are about
    finding and reading the frame, which any real-looking page exercises.
    """
    try:
        page = request.getfixturevalue("rm_fixtures") / "Lines_v2.rm"
    except pytest.skip.Exception:
        page = None
    return {name: render_page(page, layout) for name, layout in LAYOUTS.items()}


def entry_id(entry):
    return f"{entry.model}-{'.'.join(map(str, entry.since))}-{entry.layout.name}"


@pytest.mark.parametrize("entry", KNOWN, ids=entry_id)
def test_each_table_entry_is_detected_and_read_back(tmp_path, frames, entry):
    frame = frames[entry.layout.name]
    tablet = make_tablet(tmp_path, entry, frame, firmware=firmware_in(entry))
    with DeviceSource.open(tmp_path) as src:
        assert src.layout is entry.layout
        assert src.address == tablet.address
        buf = bytearray(entry.layout.frame_bytes)
        src.read_into(buf)
        assert buf == frame
        assert entry.layout.name in src.description


def test_the_pdf_renderer_is_not_xochitl(tmp_path, frames):
    entry = find_known("rM2", (3, 24))
    make_tablet(tmp_path, entry, frames[entry.layout.name], firmware="3.24.0.147")
    assert os.readlink(tmp_path / f"proc/{PDF_RENDERER_PID}/exe") == "/usr/bin/xochitl_pdf_renderer"
    with DeviceSource.open(tmp_path) as src:
        assert f"pid {XOCHITL_PID}" in src.description


def test_firmware_from_update_conf_when_os_release_lacks_it(tmp_path, frames):
    entry = find_known("rM2", (3, 5))
    make_tablet(tmp_path, entry, frames[entry.layout.name], firmware="2.15.1.1189", firmware_file="update.conf")
    info = read_device_info(tmp_path)
    assert (info.machine, info.firmware) == ("reMarkable 2.0", "2.15.1.1189")
    with DeviceSource.open(tmp_path) as src:
        assert src.layout.name == "rm2-2.0-gray8"


def test_the_screen_is_reread_on_every_capture(tmp_path, frames):
    entry = find_known("rM2", (3, 24))
    frame = frames[entry.layout.name]
    tablet = make_tablet(tmp_path, entry, frame, firmware="3.24.0.149")
    with DeviceSource.open(tmp_path) as src:
        buf = bytearray(src.layout.frame_bytes)
        src.read_into(buf)
        assert buf == frame
        changed = bytearray(frame)
        changed[5000:5004] = b"\x00\x00\x00\xff"
        write_sparse(tmp_path / f"proc/{XOCHITL_PID}/mem", {tablet.address: bytes(changed)})
        src.read_into(buf)
        assert buf == changed


def test_reading_allocates_nothing(tmp_path, frames):
    entry = find_known("rM2", (3, 24))
    make_tablet(tmp_path, entry, frames[entry.layout.name], firmware="3.24.0.149")
    with DeviceSource.open(tmp_path) as src:
        buf = bytearray(src.layout.frame_bytes)
        src.read_into(buf)
        tracemalloc.start()
        try:
            for _ in range(3):
                src.read_into(buf)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 4096, peak


def test_table_boundaries():
    assert find_known("rM2", parse_version("3.5.2.1807")).layout.name == "rm2-2.0-gray8"
    assert find_known("rM2", parse_version("3.6.0.1806")).layout.name == "rm2-3.6-gray16"
    assert find_known("rM2", parse_version("3.23.0.64")).layout.name == "rm2-3.6-gray16"
    assert find_known("rM2", parse_version("3.24.0.147")).layout.name == "rm2-3.24-bgra"
    assert find_known("rM2", parse_version("3.27.0.20")).layout.name == "rm2-3.27-bgra"
    assert find_known("rM2", parse_version("3.28.0.172")).layout.name == "rm2-3.24-bgra"
    assert find_known("Paper Pro", parse_version("3.19.1.8")).layout.name == "rmpp-1624-bgra"
    assert find_known("Paper Pro", parse_version("3.20.0.92")).layout.name == "rmpp-3.20-bgra"
    assert find_known("rM2", parse_version("1.8.1.1")) is None
    assert find_known("rM3", parse_version("3.24.0.1")) is None


def assert_names_device(exc, machine, firmware):
    msg = str(exc.value)
    assert machine in msg and firmware in msg, msg
    assert "--layout" in msg and "issue tracker" in msg


def test_unknown_model(tmp_path, frames):
    entry = find_known("rM2", (3, 24))
    make_tablet(tmp_path, entry, frames[entry.layout.name], firmware="3.24.0.149", machine="reMarkable Hypothetical 9")
    with pytest.raises(UnsupportedDevice, match="unknown tablet model") as exc:
        DeviceSource.open(tmp_path)
    assert_names_device(exc, "reMarkable Hypothetical 9", "3.24.0.149")


def test_unknown_firmware(tmp_path):
    entry = find_known("rM2", (3, 24))
    make_tablet(tmp_path, entry, None, firmware="1.8.1.1")
    with pytest.raises(UnsupportedDevice, match="no known screen layout") as exc:
        DeviceSource.open(tmp_path)
    assert_names_device(exc, "reMarkable 2.0", "1.8.1.1")


def test_firmware_that_cannot_be_read(tmp_path):
    entry = find_known("rM2", (3, 24))
    make_tablet(tmp_path, entry, None, firmware="beta")
    with pytest.raises(UnsupportedDevice, match="cannot tell the firmware") as exc:
        DeviceSource.open(tmp_path)
    assert_names_device(exc, "reMarkable 2.0", "beta")


def test_missing_xochitl(tmp_path, frames):
    entry = find_known("rM2", (3, 24))
    make_tablet(tmp_path, entry, frames[entry.layout.name], firmware="3.24.0.149", xochitl=False)
    with pytest.raises(UnsupportedDevice, match="xochitl is not running") as exc:
        DeviceSource.open(tmp_path)
    assert_names_device(exc, "reMarkable 2.0", "3.24.0.149")


@pytest.mark.parametrize("since", [(3, 24), (3, 20)], ids=["rM2", "Paper Pro"])
def test_maps_without_the_anchor(tmp_path, frames, since):
    entry = find_known("rM2" if since == (3, 24) else "Paper Pro", since)
    make_tablet(tmp_path, entry, frames[entry.layout.name], firmware="3.24.0.149", with_anchor=False)
    with pytest.raises(UnsupportedDevice, match=f"no {entry.anchor} mapping") as exc:
        DeviceSource.open(tmp_path)
    assert_names_device(exc, "reMarkable", "3.24.0.149")


@pytest.mark.parametrize("entry", [find_known("rM2", (3, 24)), find_known("rM2", (3, 10)),
                                   find_known("Paper Pro", (3, 22)), find_known("rM1", (3, 0))], ids=entry_id)
def test_an_all_zero_frame_is_refused(tmp_path, entry):
    make_tablet(tmp_path, entry, None, firmware=firmware_in(entry))
    with pytest.raises(UnsupportedDevice, match="all zeros") as exc:
        DeviceSource.open(tmp_path)
    assert_names_device(exc, "reMarkable", firmware_in(entry))


@pytest.mark.parametrize("entry", [find_known("rM2", (3, 24)), find_known("rM2", (3, 10)), find_known("rM2", (3, 0)),
                                   find_known("Paper Pro", (3, 22)), find_known("rM1", (3, 0))], ids=entry_id)
def test_a_noise_frame_is_refused(tmp_path, entry):
    noise = np.random.default_rng(3).integers(0, 256, entry.layout.frame_bytes, dtype=np.uint8).tobytes()
    make_tablet(tmp_path, entry, noise, firmware=firmware_in(entry))
    with pytest.raises(UnsupportedDevice, match="noise") as exc:
        DeviceSource.open(tmp_path)
    assert_names_device(exc, "reMarkable", firmware_in(entry))


def test_other_data_where_the_firmware_entry_looks_is_refused(tmp_path):
    # Firmware 3.27 makes the table look 4.7 MB into the mapping; here that memory holds other
    # data (as after an update that moved the buffer), which must not be streamed.
    entry = find_known("rM2", (3, 24))
    tablet = make_tablet(tmp_path, entry, None, firmware="3.27.0.20")
    write_sparse(tmp_path / f"proc/{XOCHITL_PID}/mem", {tablet.address: os.urandom(RM2_BGRA.frame_bytes)})
    with pytest.raises(UnsupportedDevice, match="layout rm2-3.27-bgra: the frame looks like noise"):
        DeviceSource.open(tmp_path)


def test_a_forced_layout_overrides_the_table(tmp_path, frames):
    entry = find_known("rM2", (3, 24))
    make_tablet(tmp_path, entry, frames[entry.layout.name], firmware="1.8.1.1")  # unknown to the table
    with open_source("device", layout_name="rm2-3.24-bgra", path=None, root=tmp_path) as src:
        assert src.layout is RM2_BGRA


def test_a_forced_wrong_layout_fails_validation(tmp_path, frames):
    entry = find_known("rM2", (3, 24))
    make_tablet(tmp_path, entry, frames[entry.layout.name], firmware="3.24.0.149")
    with pytest.raises(UnsupportedDevice, match="forced layout rm2-3.6-gray16"):
        DeviceSource.open(tmp_path, "rm2-3.6-gray16")


def test_rm1_without_fb0(tmp_path):
    entry = find_known("rM1", (3, 0))
    make_tablet(tmp_path, entry, None, firmware="3.3.2.1666")
    (tmp_path / "dev/fb0").unlink()
    with pytest.raises(UnsupportedDevice, match="/dev/fb0") as exc:
        DeviceSource.open(tmp_path)
    assert_names_device(exc, "reMarkable 1.0", "3.3.2.1666")


def test_not_a_remarkable(tmp_path):
    with pytest.raises(UnsupportedDevice, match="not a reMarkable"):
        DeviceSource.open(tmp_path)


def test_maps_parsing_is_realistic():
    maps = parse_maps(rm2_maps(0x73a55000, 0x73f59000, 0x1000000))
    assert len(maps) > 40
    paths = [m.path for m in maps]
    i = paths.index("/dev/fb0")
    assert maps[i + 1].path == "" and maps[i + 1].start == 0x73f59000 and maps[i].end == maps[i + 1].start
    assert "[heap]" in paths and "[stack]" in paths and "/usr/bin/xochitl" in paths


def test_frame_problem_accepts_real_pages(frames):
    for name, frame in frames.items():
        assert frame_problem(frame, LAYOUTS[name]) is None, name


def test_the_layout_listing_names_every_entry():
    from streamer.layouts import describe_layouts

    text = describe_layouts()
    assert all(entry.layout.name in text for entry in KNOWN)
    assert "rM2, 3.24 - <3.27" in text and "Paper Pro, >= 3.20" in text
