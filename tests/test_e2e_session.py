"""End to end with real aiortc viewers: bad offers, leaving viewers, signaling going away."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from signaling.app import STATE
from signaling.main import start as start_signaling
from support.peers import AiortcViewer, make_offer
from support.stack import demo_stack


async def post(http, stack, sdp: str):
    async with http.post(f"{stack.base}/whep/demo", data=sdp, headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {stack.token}"}) as response:
        return response.status, (await response.json())["error"] if response.status >= 400 else None


def without_vp8(sdp: str) -> str:
    vp8 = re.findall(r"a=rtpmap:(\d+) VP8/90000", sdp)
    rtx = [pt for pt in re.findall(r"a=fmtp:(\d+) apt=(\d+)", sdp) if pt[1] in vp8]
    drop = set(vp8) | {pt for pt, _ in rtx}
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("m=video"):
            head, pts = line.split(" ")[:3], line.split(" ")[3:]
            line = " ".join(head + [pt for pt in pts if pt not in drop])
        elif re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\d+)", line) and re.match(r"a=\w+[-\w]*:(\d+)", line).group(1) in drop:
            continue
        lines.append(line)
    return "\r\n".join(lines)


async def test_bad_offers_at_the_tablet_do_not_disturb_a_watching_viewer(tmp_path, rm_fixtures):
    async with demo_stack(tmp_path, rm_fixtures / "Color_and_tool_v3.14.4.rm") as stack:
        async with aiohttp.ClientSession() as http:
            viewer = AiortcViewer(stack.base, "demo", stack.token)
            await viewer.connect(http)
            await viewer.wait_frames(2)

            pc, good = await make_offer()
            await pc.close()
            status, error = await post(http, stack, without_vp8(good))
            assert status == 400 and "VP8" in error
            status, error = await post(http, stack, re.sub(r"m=video \d+ ", "m=video notaport ", good))
            assert status == 400 and "could not read the offer" in error
            status, error = await post(http, stack, good.replace("a=recvonly", "a=sendonly"))
            assert status == 400 and "receive video" in error

            frames = viewer.frames
            await viewer.wait_frames(frames + 3)
            assert list(stack.demo.session.viewers) == [viewer.location.rsplit("/", 1)[1]]
            assert stack.demo.session.connections == 1
            assert len(stack.demo.app[STATE].registry.sessions) == 1
            await viewer.close(http)


async def test_a_viewer_leaving_does_not_stop_the_others(tmp_path, rm_fixtures):
    async with demo_stack(tmp_path, rm_fixtures / "Color_and_tool_v3.14.4.rm") as stack:
        async with aiohttp.ClientSession() as http:
            stays, leaves = AiortcViewer(stack.base, "demo", stack.token), AiortcViewer(stack.base, "demo", stack.token)
            await stays.connect(http)
            await leaves.connect(http)
            await stays.wait_frames(2)
            await leaves.wait_frames(2)
            await leaves.close(http)
            await asyncio.sleep(0.3)
            assert len(stack.demo.session.viewers) == 1
            frames = stays.frames
            await stays.wait_frames(frames + 3)

            # With nobody left, the tablet stops looking at the screen at all.
            await stays.close(http)
            await asyncio.sleep(0.5)
            captures = stack.stream.stats.captures
            await asyncio.sleep(1.5)
            assert stack.stream.stats.captures == captures


async def test_tablet_redials_signaling_and_viewers_keep_watching_meanwhile(tmp_path, rm_fixtures):
    async with demo_stack(tmp_path, rm_fixtures / "Color_and_tool_v3.14.4.rm", loop=True, pause=0.5) as stack:
        demo = stack.demo
        async with aiohttp.ClientSession() as http:
            viewer = AiortcViewer(stack.base, "demo", stack.token)
            await viewer.connect(http)
            await viewer.wait_frames(2)

            await demo.runner.cleanup()  # the signaling server goes away
            frames = viewer.frames
            await viewer.wait_frames(frames + 5)  # media does not pass through signaling
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"{stack.base}/healthz"):
                    pass

            demo.runner, demo.app = await start_signaling(demo.signal_config)
            await asyncio.wait_for(_until(lambda: "demo" in demo.app[STATE].registry.tablets), 15)
            assert demo.session.connections == 2
            # The link (stored as a hash in the state dir) still works for a new viewer.
            late = AiortcViewer(stack.base, "demo", stack.token)
            await late.connect(http)
            await late.wait_frames(1)
            assert viewer.frames > frames + 5
            await late.close(http)
            await viewer.close(http)


async def _until(predicate, period: float = 0.1) -> None:
    while not predicate():
        await asyncio.sleep(period)
