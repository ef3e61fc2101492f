"""End to end in a real headless Chromium: the demo stack, the viewer page, the picture."""

from __future__ import annotations

import asyncio
import base64
import time

import aiohttp
import numpy as np
import pytest

from streamer.encoder import Vp8Encoder
from support.browser import GRAB_FRAME_JS, INBOUND_STATS_JS, chromium
from support.peers import AiortcViewer
from support.stack import demo_stack, ink_agreement, psnr

pytestmark = pytest.mark.browser


async def open_viewer(context, url: str):
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function("() => window.inkcast && window.inkcast.state === 'live'", timeout=20000)
    return page


async def grab(page) -> np.ndarray:
    shot = await page.evaluate(GRAB_FRAME_JS)
    assert shot is not None, "the video has no picture"
    gray = np.frombuffer(base64.b64decode(shot["gray"]), np.uint8)
    return gray.reshape(shot["height"], shot["width"])


async def picture_matches(page, stack, timeout: float = 8.0) -> tuple[float, float]:
    """Wait until the browser shows the tablet's current picture; PSNR and ink agreement."""
    expected = stack.expected_gray()
    deadline = time.monotonic() + timeout
    while True:
        seen = await grab(page)
        assert seen.shape == expected.shape
        quality = psnr(seen, expected), ink_agreement(expected, seen)
        if (quality[0] > 30 and quality[1] > 0.95) or time.monotonic() > deadline:
            return quality
        await asyncio.sleep(0.3)


async def test_browser_sees_the_tablets_picture(tmp_path, rm_fixtures):
    async with demo_stack(tmp_path, rm_fixtures / "Color_and_tool_v3.14.4.rm") as stack:
        async with chromium() as browser:
            page = await open_viewer(browser, stack.url)
            await asyncio.sleep(1.0)  # watch the page being written for a moment
            await stack.finish_page()
            stats = await page.evaluate(INBOUND_STATS_JS)
            assert (stats["frameWidth"], stats["frameHeight"]) == (1404, 1872)
            assert await page.evaluate("() => [video.videoWidth, video.videoHeight]") == [1404, 1872]
            quality, agreement = await picture_matches(page, stack)
            stats = await page.evaluate(INBOUND_STATS_JS)
            assert stats["framesDecoded"] >= 3, stats
            assert quality > 30, f"PSNR {quality:.1f} dB"
            assert agreement > 0.95, f"only {agreement:.0%} of the ink is visible"


async def test_three_viewers_one_encoder(tmp_path, rm_fixtures):
    created = Vp8Encoder.instances
    async with demo_stack(tmp_path, rm_fixtures / "Lines_v2.rm") as stack:
        async with chromium() as browser, aiohttp.ClientSession() as http:
            pages = [await open_viewer(browser, stack.url), await open_viewer(browser, stack.url)]
            peer = AiortcViewer(stack.base, "demo", stack.token)
            await peer.connect(http)
            await peer.wait_frames(1)
            await asyncio.sleep(1.0)
            await stack.finish_page()
            for page in pages:
                quality, agreement = await picture_matches(page, stack)
                assert quality > 30 and agreement > 0.95
            # aiortc's jitter buffer hands a frame on only when the next one starts arriving,
            # so an aiortc viewer shows the last picture after one more frame: ask for one.
            frames = peer.frames
            stack.stream.request_keyframe("test")
            await peer.wait_frames(frames + 1)
            expected = stack.expected_gray()
            assert psnr(peer.last_frame, expected) > 30 and ink_agreement(expected, peer.last_frame) > 0.95

            stats = stack.stream.stats
            assert Vp8Encoder.instances - created == 1, "the tablet ran more than one encoder"
            senders = [v.pc.getSenders()[0] for v in stack.demo.session.viewers.values()]
            assert len(senders) == 3
            for sender in senders:
                # aiortc's per-sender encoder only packetises: it never opened a codec.
                assert sender._RTCRtpSender__encoder.codec is None
            asked = sum(stats.keyframe_requests[why] for why in ("join", "pli", "test"))
            assert stats.keyframe_requests["join"] == 3
            assert stats.frames_encoded == stats.changed_frames + stats.requested_keyframes_encoded
            assert stats.requested_keyframes_encoded <= asked
            assert stats.refreshes_encoded == 0
            await peer.close(http)


async def test_static_screen_sends_nothing_for_5_seconds(tmp_path, rm_fixtures):
    async with demo_stack(tmp_path, rm_fixtures / "Lines_v2.rm") as stack:
        await stack.finish_page()
        async with chromium() as browser:
            page = await open_viewer(browser, stack.url)
            await stack.settle(quiet=2.5)
            sender = next(iter(stack.demo.session.viewers.values())).pc.getSenders()[0]

            async def counters():
                report = await sender.getStats()
                sent = next(s for s in report.values() if s.type == "outbound-rtp")
                browser_side = await page.evaluate(INBOUND_STATS_JS)
                return (stack.stream.stats.frames_encoded, sent.packetsSent, sent.bytesSent,
                        browser_side["packetsReceived"]), stack.stream.stats.captures

            before, captures_before = await counters()
            await asyncio.sleep(5)
            after, captures_after = await counters()
            assert captures_after > captures_before, "the tablet stopped looking at the screen"
            assert after == before, f"sent while idle: encoded/packets/bytes/received {before} -> {after}"


async def test_late_joiner_on_a_static_screen_sees_it_within_2_seconds(tmp_path, rm_fixtures):
    async with demo_stack(tmp_path, rm_fixtures / "Lines_v2.rm") as stack:
        async with chromium() as browser:
            first = await open_viewer(browser, stack.url)
            await stack.finish_page()
            await stack.settle(quiet=3.0)
            late = await browser.new_page()
            started = time.monotonic()
            await late.goto(stack.url)
            await late.wait_for_function("() => window.inkcast.state === 'live'", timeout=10000)
            elapsed = time.monotonic() - started
            quality, agreement = await picture_matches(late, stack, timeout=0)
            assert elapsed < 2.0, f"the late joiner waited {elapsed:.2f} s for a picture"
            assert quality > 30 and agreement > 0.95
            assert (await first.evaluate("() => window.inkcast.state")) == "live"
