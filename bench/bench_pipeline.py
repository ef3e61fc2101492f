"""Whole-pipeline figures on a real page replay, tablet side only: inkcast against a naive aiortc track.

    .venv/bin/python bench/bench_pipeline.py [--page Color_and_tool_v3.14.4.rm] [--seconds S]
                                             [--repeat N] [--viewers 1,5] [--pipelines inkcast,naive]

Run by hand; prints figures, asserts nothing. Every configuration runs in its own freshly spawned
"tablet" process, whose CPU (all threads: getrusage(RUSAGE_SELF)) is what is measured; its viewers
are real aiortc peers that connect over WHEP with the link token and decode, in another process,
so their decoding is not counted. Loopback only, no ICE servers.

- inkcast: the demo's wiring (``inkcast.demo.Demo``: signaling + ``TabletStream`` + ``TabletSession``),
  one VP8 encoder, packets fanned out.
- naive:   the same signaling and session glue, but each viewer's peer connection gets its own
  ``VideoStreamTrack`` subclass paced at 10 fps by aiortc's ``next_timestamp()`` scheme, which reads
  the replay's native frame, goes through RGB (BGRA -> upright RGB numpy copy -> ``from_ndarray
  rgb24``) and leaves encoding to aiortc (its reformat to yuv420p and one libvpx encoder per viewer).

The replay draws by the wall clock at the page's real pen speed, but its clock is held at 0 until
every viewer has its first frame; the measured window starts there, so the whole page is drawn
inside it, followed by a still tail (loop off).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import platform
import resource
import secrets
import shlex
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "rm"
DEFAULT_PAGE = "Color_and_tool_v3.14.4.rm"
DEFAULT_LAYOUT = "rm2-3.24-bgra"
NAIVE_FPS = 10.0
IDLE_PROBE = 1.5  # s of the registered tablet with no viewers, before the viewers connect
FIRST_FRAME_TIMEOUT = 40.0
RUN_TIMEOUT_EXTRA = 90.0  # s beyond the window before a run is given up

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_pixels, beside this file


# -- helpers shared by the processes ---------------------------------------------------------

def cpu_seconds() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of every live thread of this process, by Python thread name
    (threads not started by Python, e.g. a library's own, are named by their tid)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[names.get(int(tid), f"tid-{tid}")] = (int(fields[11]) + int(fields[12])) / tick
    return out


def thread_groups(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    groups: dict[str, float] = {}
    for name, t in after.items():
        if name == "MainThread":
            g = "event loop"
        elif name.startswith("inkcast-capture"):
            g = "inkcast worker"
        elif name.startswith("asyncio_"):
            g = "default executor"  # aiortc runs its encoders here
        else:
            g = "other threads"
        groups[g] = groups.get(g, 0.0) + t - before.get(name, 0.0)
    return groups


async def recv_async(conn):
    """Receive from a multiprocessing connection without blocking the event loop."""
    loop = asyncio.get_running_loop()
    while not conn.poll():
        ready = asyncio.Event()
        loop.add_reader(conn.fileno(), ready.set)
        try:
            await ready.wait()
        finally:
            loop.remove_reader(conn.fileno())
    return conn.recv()


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(processName)s %(name)s: %(message)s")
    for name in ("aioice", "aiortc", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.ERROR)


# -- the viewers' process ----------------------------------------------------------------------

class Viewer:
    """A WHEP viewer on aiortc that decodes and counts frames (and does nothing else with them)."""

    def __init__(self, base: str, tablet: str, token: str):
        self.base, self.tablet, self.token = base, tablet, token
        self.pc = None
        self.frames = 0
        self.started_at: float | None = None
        self.first_frame_at: float | None = None  # first decoded frame
        self.first_received_at: float | None = None  # last RTP packet (marker) of the first frame
        self.size: tuple[int, int] | None = None
        self._reader = None

    async def connect(self, http) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        self.started_at = time.monotonic()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # aiortc's default is public STUN
        receiver = self.pc.addTransceiver("video", direction="recvonly").receiver
        handle = receiver._handle_rtp_packet

        async def on_rtp(packet, arrival_time_ms):
            # aiortc's jitter buffer hands a frame to the decoder only once the next frame's
            # packets arrive, so on a still screen the first picture is decoded late; when it
            # has been *received* is seen here.
            if packet.marker and self.first_received_at is None:
                self.first_received_at = time.monotonic()
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = on_rtp

        @self.pc.on("track")
        def on_track(track):
            self._reader = asyncio.ensure_future(self._read(track))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with http.post(f"{self.base}/whep/{self.tablet}", data=self.pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp",
                                      "Authorization": f"Bearer {self.token}"}) as response:
            body = await response.text()
            if response.status != 201:
                raise RuntimeError(f"WHEP offer refused: {response.status} {body}")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    async def _read(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()  # decoded by aiortc's receiver
                self.frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
                self.size = (frame.width, frame.height)
        except MediaStreamError:
            pass

    @property
    def ttff(self) -> float | None:
        return None if self.first_frame_at is None else self.first_frame_at - self.started_at

    @property
    def ttfr(self) -> float | None:
        return None if self.first_received_at is None else self.first_received_at - self.started_at

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
        if self.pc:
            await self.pc.close()


def viewers_main(conn, count: int) -> None:
    quiet_logs()
    asyncio.run(_viewers(conn, count))


async def _viewers(conn, count: int) -> None:
    import aiohttp

    where = await recv_async(conn)
    async with aiohttp.ClientSession() as http:
        viewers = [Viewer(where["base"], where["tablet"], where["token"]) for _ in range(count)]
        await asyncio.gather(*(v.connect(http) for v in viewers))  # they join at once
        deadline = time.monotonic() + FIRST_FRAME_TIMEOUT
        while any(v.first_received_at is None for v in viewers) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        conn.send({"ttfr": [v.ttfr for v in viewers]})
        assert await recv_async(conn) == "mark"
        marks = [v.frames for v in viewers]
        c0, w0 = sum(cpu_seconds()), time.monotonic()
        assert await recv_async(conn) == "report"
        cpu = sum(cpu_seconds()) - c0
        conn.send({"cpu": cpu, "wall": time.monotonic() - w0})
        conn.send({"viewers": [{"ttff": v.ttff, "ttfr": v.ttfr, "decoded": v.frames, "decoded_window": v.frames - m,
                                "size": v.size} for v, m in zip(viewers, marks)]})
        assert await recv_async(conn) == "close"
        await asyncio.gather(*(v.close() for v in viewers))
    conn.send("bye")


# -- the tablet's process ----------------------------------------------------------------------

class HeldClock:
    """The replay's clock: 0 until started, then real seconds since the start."""

    def __init__(self):
        self._start: float | None = None

    def __call__(self) -> float:
        return 0.0 if self._start is None else time.monotonic() - self._start

    def start(self) -> None:
        self._start = time.monotonic()


def time_drawing(source) -> dict:
    """Count the thread CPU the replay spends drawing (the stand-in for xochitl, inside read_into)."""
    meter = {"cpu": 0.0}
    advance = source.advance

    def timed(t):
        t0 = time.thread_time()
        try:
            advance(t)
        finally:
            meter["cpu"] += time.thread_time() - t0

    source.advance = timed
    return meter


def make_naive(source):
    """The naive stream: one aiortc VideoStreamTrack per viewer, aiortc encodes each."""
    import av
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.codecs import vpx
    from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, MediaStreamError, VideoStreamTrack
    from aiortc.rtcrtpsender import RTCRtpSender
    from bench_pixels import naive_rgb
    from streamer.session import OfferError, TabletSession, _Viewer

    layout = source.layout

    class NaiveTrack(VideoStreamTrack):
        PTIME = 1 / NAIVE_FPS

        def __init__(self, name: str):
            super().__init__()
            self.name = name
            self.buf = bytearray(layout.frame_bytes)
            self.frames = 0
            self.changed = 0
            self.cpu_read = 0.0
            self.cpu_rgb = 0.0
            self._seen = None

        async def next_timestamp(self):
            # aiortc's VideoStreamTrack.next_timestamp, verbatim but for the frame period (10 fps, not 30).
            if self.readyState != "live":
                raise MediaStreamError
            if hasattr(self, "_timestamp"):
                self._timestamp += int(self.PTIME * VIDEO_CLOCK_RATE)
                wait = self._start + (self._timestamp / VIDEO_CLOCK_RATE) - time.time()
                await asyncio.sleep(wait)
            else:
                self._start = time.time()
                self._timestamp = 0
            return self._timestamp, VIDEO_TIME_BASE

        async def recv(self):
            pts, time_base = await self.next_timestamp()
            t0 = time.thread_time()
            source.read_into(self.buf)
            t1 = time.thread_time()
            frame = av.VideoFrame.from_ndarray(naive_rgb(self.buf, layout), format="rgb24")
            self.cpu_read += t1 - t0
            self.cpu_rgb += time.thread_time() - t1
            # A changed frame: the replay drew something since this track's previous capture
            # (free to check; the orchestrator's dry run checks it against the ChangeDetector).
            seen = (source._stroke, source._point)
            if self._seen is not None and seen != self._seen:
                self.changed += 1
            self._seen = seen
            self.frames += 1
            frame.pts, frame.time_base = pts, time_base
            return frame

    class NaiveStream:
        def __init__(self):
            self.layout = layout
            self.source = source
            self.tracks: list[NaiveTrack] = []

        def track(self, name):
            t = NaiveTrack(name)
            self.tracks.append(t)
            return t

    class NaiveSession(TabletSession):
        """TabletSession's signaling glue; peer connections as plain aiortc makes them."""

        async def answer_offer(self, viewer_id: str, sdp: str) -> str:
            if not viewer_id or viewer_id in self.viewers:
                raise OfferError(400, "bad viewer id")
            pc = RTCPeerConnection(self._rtc_configuration())  # iceServers=[] (signaling hands none)
            track = self.stream.track(viewer_id)
            self.viewers[viewer_id] = _Viewer(viewer_id, pc, track)

            @pc.on("connectionstatechange")
            async def on_state() -> None:
                if pc.connectionState in ("failed", "closed"):
                    await self.close_viewer(viewer_id, pc.connectionState)

            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                transceiver = [t for t in pc.getTransceivers() if t.kind == "video"][0]
                pc.addTrack(track)
                vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs
                       if c.mimeType in ("video/VP8", "video/rtx")]
                transceiver.setCodecPreferences(vp8)  # the same codec as ours
                await pc.setLocalDescription(await pc.createAnswer())
                return pc.localDescription.sdp
            except BaseException:
                await self.close_viewer(viewer_id, "offer failed")
                raise

    # aiortc's own encoder, metered: its encode() (reformat to yuv420p, libvpx, VP8 payloading)
    # runs in the loop's default executor, one call per frame per viewer.
    meter = {"cpu": 0.0, "calls": 0, "keyframes": 0, "opened": 0}
    lock = threading.Lock()
    encode = vpx.Vp8Encoder.encode

    def metered(self, frame, force_keyframe=False):
        before = self.codec
        t0 = time.thread_time()
        try:
            return encode(self, frame, force_keyframe)
        finally:
            dt = time.thread_time() - t0
            with lock:
                meter["cpu"] += dt
                meter["calls"] += 1
                if self.codec is not before:  # (re)opened: first frame, or a bitrate change (REMB)
                    meter["opened"] += 1
                if force_keyframe or self.codec is not before:
                    meter["keyframes"] += 1

    vpx.Vp8Encoder.encode = metered
    return NaiveStream, NaiveSession, meter


async def bytes_sent(session) -> tuple[int, int, list[int]]:
    total = packets = 0
    per = []
    for viewer in list(session.viewers.values()):
        mine = 0
        for sender in viewer.pc.getSenders():
            for stat in (await sender.getStats()).values():
                if stat.type == "outbound-rtp":
                    mine += stat.bytesSent
                    packets += stat.packetsSent
        per.append(mine)
        total += mine
    return total, packets, per


def libvpx_encoders_in_senders(session) -> int:
    n = 0
    for viewer in session.viewers.values():
        for sender in viewer.pc.getSenders():
            enc = getattr(sender, "_RTCRtpSender__encoder", None)
            if getattr(enc, "codec", None) is not None:
                n += 1
    return n


def tablet_main(conn, pipeline: str, count: int, opts: dict) -> None:
    quiet_logs()
    try:
        result = asyncio.run(_tablet(pipeline, count, opts))
    except BaseException as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
        logging.exception("tablet run failed")
    conn.send(result)


async def _tablet(pipeline: str, count: int, opts: dict) -> dict:
    from streamer.source import open_source

    t_begin = time.monotonic()
    ctx = mp.get_context("spawn")
    vconn, child = ctx.Pipe()
    # Started first: it imports aiortc while this process sets up.
    vproc = ctx.Process(target=viewers_main, args=(child, count), daemon=True, name=f"viewers-{pipeline}-{count}")
    vproc.start()

    clock = HeldClock()
    source = open_source("replay", layout_name=opts["layout"], path=Path(opts["page"]), loop=False, clock=clock)
    drawing = time_drawing(source)
    result: dict = {"pipeline": pipeline, "viewers": count}
    signaling_messages = [0]
    with tempfile.TemporaryDirectory(prefix="inkcast-bench-") as state_dir:
        if pipeline == "inkcast":
            from inkcast.demo import Demo, DemoConfig
            from streamer.encoder import Vp8Encoder

            demo = Demo(DemoConfig(port=0, layout=opts["layout"]), Path(state_dir), source=source)
            url = await demo.start()
            session, stream, stop = demo.session, demo.stream, demo.stop
            base, token = url.split("/view")[0], url.split("#", 1)[1]
        else:
            from signaling.app import STATE
            from signaling.config import SignalConfig
            from signaling.main import start as start_signaling
            from streamer.session import SessionSettings

            NaiveStream, NaiveSession, meter = make_naive(source)
            device_token = secrets.token_urlsafe(24)
            sig = SignalConfig(host="127.0.0.1", port=0, state_dir=Path(state_dir), device_token=device_token)
            runner, app = await start_signaling(sig)
            stream = NaiveStream()
            session = NaiveSession(stream, SessionSettings(signal_url=f"ws://127.0.0.1:{sig.port}/tablet",
                                                          name="demo", device_token=device_token))
            task = asyncio.create_task(session.run())
            await asyncio.wait_for(session.registered.wait(), 15)
            token, _ = app[STATE].links.mint("demo", 3600)
            base = app[STATE].public_url

            async def stop():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await session.close()
                await runner.cleanup()

        on_message = session._on_message

        async def counted(ws, message):
            signaling_messages[0] += 1
            await on_message(ws, message)

        session._on_message = counted

        # What the registered tablet costs with nobody watching: signaling + session + idle loop.
        c0 = sum(cpu_seconds())
        await asyncio.sleep(IDLE_PROBE)
        result["idle_cpu_ms_per_s"] = (sum(cpu_seconds()) - c0) / IDLE_PROBE * 1000

        try:
            vconn.send({"base": base, "tablet": "demo", "token": token})
            ready = await asyncio.wait_for(recv_async(vconn), FIRST_FRAME_TIMEOUT + 30)
            result["setup_wall"] = time.monotonic() - t_begin

            # -- the measured window ---------------------------------------------------------
            b0, p0, per0 = await bytes_sent(session)
            s0 = asdict(stream.stats) if pipeline == "inkcast" else None
            n0 = None if pipeline == "inkcast" else (dict(meter), [(t.frames, t.changed, t.cpu_read, t.cpu_rgb)
                                                                   for t in stream.tracks])
            msg0, draw0 = signaling_messages[0], drawing["cpu"]
            th0 = thread_cpu()
            u0, k0 = cpu_seconds()
            w0 = time.monotonic()
            clock.start()
            vconn.send("mark")
            await asyncio.sleep(opts["seconds"])
            w1 = time.monotonic()
            u1, k1 = cpu_seconds()
            th1 = thread_cpu()
            msg1, draw1 = signaling_messages[0], drawing["cpu"]
            b1, p1, per1 = await bytes_sent(session)
            # ---------------------------------------------------------------------------------

            vconn.send("report")
            viewer_cpu = await asyncio.wait_for(recv_async(vconn), 30)
            report = await asyncio.wait_for(recv_async(vconn), 30)
            result.update(
                wall=w1 - w0, cpu=(u1 - u0) + (k1 - k0), cpu_user=u1 - u0, cpu_sys=k1 - k0,
                bytes=b1 - b0, packets=p1 - p0, bytes_per_viewer=[b - a for a, b in zip(per0, per1)],
                draw_cpu=draw1 - draw0, signaling_messages=msg1 - msg0, threads=thread_groups(th0, th1),
                viewer_report=report["viewers"], ttfr=ready["ttfr"], viewer_cpu=viewer_cpu["cpu"], page_finished=source.finished,
                sender_encoders=libvpx_encoders_in_senders(session))
            if pipeline == "inkcast":
                s1 = asdict(stream.stats)
                d = {k: s1[k] - s0[k] for k in ("captures", "changed_frames", "frames_encoded", "keyframes_encoded",
                                                "requested_keyframes_encoded", "refreshes_encoded", "bytes_encoded",
                                                "cpu_capture", "cpu_convert", "cpu_encode")}
                result.update(changed=d["changed_frames"], frames_encoded=d["frames_encoded"],
                              keyframes=d["keyframes_encoded"], stats=d,
                              keyframe_requests=dict(stream.stats.keyframe_requests),
                              encoders=Vp8Encoder.instances)
            else:
                m0, t0 = n0
                tracks = [(t.frames - a, t.changed - b, t.cpu_read - c, t.cpu_rgb - e)
                          for t, (a, b, c, e) in zip(stream.tracks, t0)]
                changed = [t[1] for t in tracks]
                result.update(changed=statistics.mean(changed), changed_per_track=changed,
                              frames_per_track=[t[0] for t in tracks],
                              frames_encoded=meter["calls"] - m0["calls"],
                              keyframes=meter["keyframes"] - m0["keyframes"],
                              reopened=meter["opened"] - m0["opened"],
                              naive_cpu={"read": sum(t[2] for t in tracks), "rgb": sum(t[3] for t in tracks),
                                         "aiortc_encode": meter["cpu"] - m0["cpu"]},
                              encoders=result["sender_encoders"])
        finally:
            vconn.send("close")
            try:
                await asyncio.wait_for(recv_async(vconn), 15)
            except (asyncio.TimeoutError, EOFError):
                pass
            await stop()
            if pipeline == "inkcast":
                await stream.close()
            vproc.join(10)
            if vproc.is_alive():
                vproc.terminate()  # our own child, by its handle
    return result


# -- the orchestrator --------------------------------------------------------------------------

def dry_run(page: Path, layout_name: str, seconds: float) -> dict:
    """The page replayed on a fake clock at 10 fps: how many captures change, by our ChangeDetector
    and by the replay's progress (what the naive track counts), and what one RGB round costs."""
    import av

    from bench_pixels import best_ms, naive_rgb
    from streamer.changes import ChangeDetector
    from streamer.layouts import get_layout
    from streamer.source import open_source

    layout = get_layout(layout_name)
    t = [0.0]
    src = open_source("replay", layout_name=layout_name, path=page, loop=False, clock=lambda: t[0])
    det = ChangeDetector(layout)
    prev, cur = bytearray(layout.frame_bytes), bytearray(layout.frame_bytes)
    src.read_into(prev)
    by_detector = by_progress = steps = 0
    seen = (src._stroke, src._point)
    while t[0] + 1 / NAIVE_FPS <= seconds + 1e-9:
        t[0] += 1 / NAIVE_FPS
        steps += 1
        src.read_into(cur)
        by_detector += det.compare(cur, prev) is not None
        now = (src._stroke, src._point)
        by_progress += now != seen
        seen = now
        prev, cur = cur, prev

    def best(fn, n=5):
        return best_ms(fn, n, timer=time.process_time)

    rgb = naive_rgb(prev, layout)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return {"steps": steps, "by_detector": by_detector, "by_progress": by_progress,
            "duration": src.duration, "strokes": len(src.page.strokes), "description": src.description,
            "ms_rgb": best(lambda: av.VideoFrame.from_ndarray(naive_rgb(prev, layout), format="rgb24")),
            "ms_reformat": best(lambda: frame.reformat(format="yuv420p"))}


def run_one(pipeline: str, count: int, opts: dict) -> dict:
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=tablet_main, args=(theirs, pipeline, count, opts), name=f"tablet-{pipeline}-{count}")
    t0 = time.monotonic()
    proc.start()
    result = {"error": "timed out"}
    if mine.poll(opts["seconds"] + RUN_TIMEOUT_EXTRA):
        result = mine.recv()
    proc.join(15)
    if proc.is_alive():
        proc.terminate()  # our own child, by its handle
        proc.join(5)
    result["run_wall"] = time.monotonic() - t0
    return result


def med(results: list[dict], key) -> float:
    values = [key(r) for r in results]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


FIGURES = [
    # (label, function of a run result, format)
    ("window wall time, s", lambda r: r["wall"], "{:.2f}"),
    ("tablet CPU, s (all threads)", lambda r: r["cpu"], "{:.3f}"),
    ("tablet CPU, % of one core", lambda r: 100 * r["cpu"] / r["wall"], "{:.1f}"),
    ("changed frames (the divisor)", lambda r: r["changed"], "{:.1f}"),
    ("frames encoded, all encoders", lambda r: r["frames_encoded"], "{:.0f}"),
    ("CPU ms / changed frame", lambda r: 1000 * r["cpu"] / r["changed"] if r["changed"] else None, "{:.1f}"),
    ("  the same without replay drawing", lambda r: 1000 * (r["cpu"] - r["draw_cpu"]) / r["changed"]
     if r["changed"] else None, "{:.1f}"),
    ("keyframes encoded, all encoders", lambda r: r["keyframes"], "{:.0f}"),
    ("bytes sent, all viewers, kB", lambda r: r["bytes"] / 1000, "{:.1f}"),
    ("bytes sent / changed frame", lambda r: r["bytes"] / r["changed"] if r["changed"] else None, "{:.0f}"),
]


def fmt(spec: str, v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return spec.format(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", default=DEFAULT_PAGE, help=f"a .rm page (a name in {FIXTURES} or a path)")
    ap.add_argument("--layout", default=DEFAULT_LAYOUT, help="device pixel layout the replay is held in")
    ap.add_argument("--seconds", type=float, default=None,
                    help="measured window per configuration (default: the page's replay duration + 2 s)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each configuration; figures are medians")
    ap.add_argument("--viewers", default="1,5", help="viewer counts, comma-separated")
    ap.add_argument("--pipelines", default="inkcast,naive", help="inkcast, naive or both")
    args = ap.parse_args()

    page = Path(args.page)
    if not page.is_file():
        page = FIXTURES / args.page
    if not page.is_file():
        sys.exit(f"bench_pipeline: no such page: {args.page} (looked in . and {FIXTURES})")
    import aiortc
    import av
    import numpy as np

    print("$ " + shlex.join(sys.orig_argv), flush=True)
    t_start = time.monotonic()
    from streamer.source import open_source

    duration = open_source("replay", layout_name=args.layout, path=page, loop=False).duration
    seconds = args.seconds if args.seconds is not None else duration + 2.0
    dry = dry_run(page, args.layout, seconds)
    counts = [int(x) for x in args.viewers.split(",")]
    pipelines = [p.strip() for p in args.pipelines.split(",")]
    opts = {"page": str(page), "layout": args.layout, "seconds": seconds}
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"python {platform.python_version()}, aiortc {aiortc.__version__}, av {av.__version__}, numpy {np.__version__}")
    print(f"# {dry['description']}: {dry['strokes']} strokes, replay {dry['duration']:.2f} s at the recorded pen "
          f"speed; window {seconds:.2f} s from the moment every viewer has its first frame (loop off, "
          f"{max(0.0, seconds - dry['duration']):.2f} s still tail)")
    print(f"# dry run on a fake clock at {NAIVE_FPS:g} fps over the window: {dry['by_detector']} of {dry['steps']} "
          f"captures differ (ChangeDetector); by replay progress (the naive track's count): {dry['by_progress']}")
    print(f"# viewers: real aiortc peers (WHEP + link token, decoding) in a separate process, not counted; "
          f"signaling server runs inside the tablet process; {args.repeat} run(s) per configuration"
          + (", figures are medians" if args.repeat > 1 else ""), flush=True)

    configs = [(p, n) for n in counts for p in pipelines]
    results: dict[tuple[str, int], list[dict]] = {c: [] for c in configs}
    for rep in range(args.repeat):
        for p, n in configs:  # interleaved, so that a noisy moment spreads over all of them
            r = run_one(p, n, opts)
            if "error" in r:
                print(f"# run {rep + 1} {p} x{n}: FAILED: {r['error']}", flush=True)
                continue
            results[(p, n)].append(r)
            print(f"# run {rep + 1} {p} x{n}: cpu {r['cpu']:.2f} s in {r['wall']:.2f} s, changed {r['changed']:g}, "
                  f"encoded {r['frames_encoded']}, sent {r['bytes'] / 1000:.0f} kB; run wall {r['run_wall']:.1f} s",
                  flush=True)

    # -- the table -------------------------------------------------------------------------
    print()
    head = f"{'figure (measured window, tablet process)':38}"
    for n in counts:
        for p in pipelines:
            head += f" {p + ' x' + str(n):>11}"
        if len(pipelines) == 2:
            head += f" {'naive/ink':>9}"
    print(head)
    print("-" * len(head))
    for label, key, spec in FIGURES:
        line = f"{label:38}"
        for n in counts:
            vals = {}
            for p in pipelines:
                rs = results[(p, n)]
                vals[p] = med(rs, key) if rs else None
                line += f" {fmt(spec, vals[p]):>11}"
            if len(pipelines) == 2:
                a, b = vals.get("inkcast"), vals.get("naive")
                ratio = b / a if a and b is not None and a == a and b == b else None
                line += f" {fmt('{:.1f}', ratio):>9}"
        print(line)

    # -- the details -------------------------------------------------------------------------
    for (p, n), rs in results.items():
        if not rs:
            continue
        r = sorted(rs, key=lambda x: x["cpu"])[len(rs) // 2]  # the median run by CPU
        print(f"\n## {p} x{n}" + (f" (the median-CPU run of {len(rs)})" if len(rs) > 1 else ""))
        vr = r["viewer_report"]
        print(f"  viewers: time to first frame, from the offer: received "
              f"{', '.join(fmt('{:.2f}', v['ttfr']) for v in vr)} s; decoded "
              f"{', '.join(fmt('{:.2f}', v['ttff']) for v in vr)} s")
        sizes = sorted({"x".join(map(str, v["size"])) if v["size"] else "none" for v in vr})
        print(f"  viewers: frames decoded in window {[v['decoded_window'] for v in vr]}, in all "
              f"{[v['decoded'] for v in vr]}, picture {', '.join(sizes)}")
        print(f"  viewers' process (not counted above): {r['viewer_cpu']:.2f} s CPU in the window, "
              f"{100 * r['viewer_cpu'] / r['wall']:.0f}% of one core")
        print(f"  sent: {r['bytes']} B payload in {r['packets']} RTP packets, per viewer {r['bytes_per_viewer']}; "
              f"user {r['cpu_user']:.3f} s + sys {r['cpu_sys']:.3f} s")
        th = r["threads"]
        print("  CPU by thread, s: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(th.items())))
        if p == "inkcast":
            s = r["stats"]
            cap = s["cpu_capture"]
            print(f"  worker stages (thread CPU), s: capture {cap:.3f} (of which replay drawing {r['draw_cpu']:.3f}, "
                  f"read+compare {cap - r['draw_cpu']:.3f}), convert {s['cpu_convert']:.3f}, "
                  f"encode {s['cpu_encode']:.3f}; rest of the process {r['cpu'] - cap - s['cpu_convert'] - s['cpu_encode']:.3f}")
            ch = max(1, s["changed_frames"])
            print(f"  per changed frame, ms: capture {1000 * cap / ch:.1f} (drawing {1000 * r['draw_cpu'] / ch:.1f}), "
                  f"convert {1000 * s['cpu_convert'] / ch:.1f}, encode {1000 * s['cpu_encode'] / ch:.1f}; "
                  f"per capture {1000 * (cap - r['draw_cpu']) / max(1, s['captures']):.1f} ms read+compare")
            print(f"  captures {s['captures']}, changed {s['changed_frames']}, encoded {s['frames_encoded']} "
                  f"(keyframes {s['keyframes_encoded']}, of which on request of a still screen "
                  f"{s['requested_keyframes_encoded']}, refreshes {s['refreshes_encoded']}), encoded "
                  f"{s['bytes_encoded']} B; keyframe requests over the run {r['keyframe_requests']}")
            print(f"  libvpx encoders: ours {r['encoders']}, in aiortc's senders {r['sender_encoders']}")
        else:
            c = r["naive_cpu"]
            enc = max(1, r["frames_encoded"])
            print(f"  tracks: frames {r['frames_per_track']}, changed {r['changed_per_track']} "
                  f"(divisor: their mean {r['changed']:g})")
            print(f"  stages (thread CPU), s: read {c['read']:.3f} (incl. replay drawing {r['draw_cpu']:.3f}), "
                  f"BGRA->RGB+from_ndarray {c['rgb']:.3f}, aiortc encode() {c['aiortc_encode']:.3f}; "
                  f"rest of the process {r['cpu'] - c['read'] - c['rgb'] - c['aiortc_encode']:.3f}")
            print(f"  per encoded frame, ms: read {1000 * c['read'] / enc:.1f}, RGB {1000 * c['rgb'] / enc:.1f}, "
                  f"aiortc encode {1000 * c['aiortc_encode'] / enc:.1f} (its rgb24->yuv420p reformat alone: "
                  f"~{dry['ms_reformat']:.1f} ms, measured apart)")
            print(f"  libvpx encoders open in aiortc's senders {r['encoders']}; (re)opened in window {r['reopened']} "
                  f"(aiortc reopens on a >10% bitrate change), keyframes in window {r['keyframes']}")
        print(f"  signaling: {r['signaling_messages']} messages to the tablet in the window; the registered tablet "
              f"with no viewer used {r['idle_cpu_ms_per_s']:.1f} ms CPU/s; page finished in window: {r['page_finished']}; "
              f"setup {r['setup_wall']:.1f} s, run {r['run_wall']:.1f} s")
    print(f"\n# total wall {time.monotonic() - t_start:.0f} s; load avg {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("# figures: CPU = getrusage(RUSAGE_SELF) user+sys of the tablet process over the window (capture worker, "
          "libvpx, aiortc packetisation/SRTP/RTCP, the in-process signaling server); bytes = sum of outbound-rtp "
          "bytesSent (RTP payload) of every sender; inkcast's changed frames = stream.stats.changed_frames; naive's = "
          "mean over its tracks of captures at which the replay had drawn something since that track's last one")


if __name__ == "__main__":
    main()
