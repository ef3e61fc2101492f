"""The one VP8 encoder of a tablet stream.

It owns a single I420 frame whose planes the pixel converter writes into in place, so
nothing is allocated per frame on our side; libvpx copies what it needs while encoding
(``lag-in-frames`` is 0, so no frame is held across calls).
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass

import av
import numpy as np

# RTP's video clock: packets carry pts in this time base and aiortc converts nothing.
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


@dataclass(frozen=True)
class Vp8Settings:
    bitrate: int = 2_000_000
    # A page of handwriting is mostly flat paper: a low qmax keeps thin strokes crisp at
    # little cost, and the frame rate is low, so there are bits to spare.
    qmin: int = 4
    qmax: int = 30
    crf: int = 8
    # libvpx's fastest realtime preset: the tablet is a 1 GHz ARM.
    cpu_used: int = 16
    # Skip macroblocks whose change is below this SAD: unchanged paper costs nothing.
    static_thresh: int = 1000
    # One thread: libvpx threads only pay off on idle cores, and the tablet has none to spare
    # (measured: 2 threads on a busy 2-core machine made P-frames 25x slower).
    threads: int = 1


def _plane_view(plane) -> np.ndarray:
    """A writable numpy view of one frame plane, without its line padding."""
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


class Vp8Encoder:
    # libvpx encoders opened in this process: the fan-out promise ("one encoder per stream,
    # whatever the number of viewers") is checked against it.
    instances = 0

    def __init__(self, width: int, height: int, settings: Vp8Settings = Vp8Settings()):
        if width % 2 or height % 2:
            raise ValueError(f"I420 needs even dimensions, got {width}x{height}")
        self.width = width
        self.height = height
        self.settings = settings
        self.frame = av.VideoFrame(width, height, "yuv420p")
        self.y, self.u, self.v = (_plane_view(p) for p in self.frame.planes)
        self.y[:] = 235
        self.u[:] = 128
        self.v[:] = 128
        self._codec = self._open_codec()
        self._last_pts = -1
        self.frames_encoded = 0
        self.keyframes_encoded = 0
        self.bytes_encoded = 0

    def _open_codec(self):
        s = self.settings
        codec = av.CodecContext.create("libvpx", "w")
        Vp8Encoder.instances += 1
        codec.width = self.width
        codec.height = self.height
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.bit_rate = s.bitrate
        codec.qmin = s.qmin
        codec.qmax = s.qmax
        # Keyframes only when asked for (a new viewer, PLI/FIR, the idle refresh).
        codec.gop_size = 1 << 30
        codec.thread_count = max(1, s.threads)
        codec.options = {
            "deadline": "realtime",
            "cpu-used": str(s.cpu_used),
            "lag-in-frames": "0",
            "crf": str(s.crf),
            "static-thresh": str(s.static_thresh),
            "undershoot-pct": "100",
            "overshoot-pct": "15",
            "partitions": "0",
            "error-resilient": "1",
        }
        return codec

    def encode(self, pts: int, keyframe: bool) -> list[av.Packet]:
        """Encode the current planes at ``pts`` (90 kHz); returns the packet(s) of this frame."""
        # libvpx refuses non-increasing timestamps; two captures within one 90 kHz tick can happen.
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        self.frame.pts = pts
        self.frame.time_base = VIDEO_TIME_BASE
        self.frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        packets = self._codec.encode(self.frame)
        for packet in packets:
            packet.time_base = VIDEO_TIME_BASE
            self.frames_encoded += 1
            self.bytes_encoded += packet.size
            if packet.is_keyframe:
                self.keyframes_encoded += 1
        return packets
