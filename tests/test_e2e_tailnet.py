"""Tablet and signaling on a real tailnet (local control server, libtailscale), viewers public.

The tablet registers on signaling's tailnet listener only, and is let in by its tailnet
identity (a tag given by the control plane); a viewer in Chromium watches from the public side.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web
import pytest

from signaling.app import STATE, create_tablet_app
from signaling.config import SignalConfig
from signaling.main import start_on_tailnet
from streamer.session import SessionSettings, TabletSession
from streamer.source import open_source
from streamer.stream import TabletStream
from support.browser import INBOUND_STATS_JS, chromium
from support.peers import AiortcViewer
from support.tailnet import eventually, unique

pytestmark = pytest.mark.tailnet

TABLET_TAG = "tag:inkcast-tablet"
TABLET_PORT = 8418


@dataclass
class TailnetStack:
    signal_node: object
    config: SignalConfig
    app: object
    runners: list

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    @property
    def tablet_url(self) -> str:
        return f"ws://{self.signal_node.hostname}:{TABLET_PORT}/tablet"

    def link(self, tablet: str) -> str:
        token, _ = self.app[STATE].links.mint(tablet, 600)
        return token


@asynccontextmanager
async def signaling_on_tailnet(nodes, tmp_path):
    node = await nodes.up(unique("inkcast-signaling"))
    config = SignalConfig(port=0, state_dir=tmp_path / "signal", tablet_port=TABLET_PORT, allow_tags=[TABLET_TAG])
    runner, app, tablet_runner = await start_on_tailnet(config, node)
    stack = TailnetStack(node, config, app, [tablet_runner, runner])
    try:
        yield stack
    finally:
        for r in stack.runners:
            await r.cleanup()


async def tagged_tablet_node(nodes, control, stack, name=None, **kwargs):
    name = name or unique("rm2")
    node = await nodes.up(name, **kwargs)
    control.set_tags(name, TABLET_TAG)

    async def tag_seen():
        return TABLET_TAG in (await stack.signal_node.whois(node.ips()[0])).tags

    await eventually(tag_seen, what="the tablet's tag to reach signaling")
    return node


@asynccontextmanager
async def tablet_session(node, stack, rm_page, name="desk", heartbeat=15.0):
    source = open_source("replay", layout_name="rm2-3.24-bgra", path=rm_page, loop=True, pause=0.5)
    stream = TabletStream(source)
    session = TabletSession(stream, SessionSettings(signal_url=stack.tablet_url, name=name, device_token="",
                                                    heartbeat=heartbeat, reconnect_max=2.0),
                            http_factory=node.http_session)
    tasks = [asyncio.create_task(stream.run()), asyncio.create_task(session.run())]
    try:
        yield session
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
        await stream.close()


async def test_tablet_on_the_tailnet_streams_to_a_public_browser(nodes, control, tmp_path, rm_fixtures):
    async with signaling_on_tailnet(nodes, tmp_path) as stack:
        started = time.monotonic()
        node = await tagged_tablet_node(nodes, control, stack)
        async with tablet_session(node, stack, rm_fixtures / "Lines_v2.rm") as session:
            await asyncio.wait_for(session.registered.wait(), 20)
            registered_after = time.monotonic() - started
            print(f"tailnet node start to tablet registered: {registered_after:.2f} s")
            async with aiohttp.ClientSession() as http:
                # The public side has no tablet endpoint at all.
                async with http.get(f"{stack.base}/tablet") as response:
                    assert response.status == 404
            async with chromium() as browser:
                page = await browser.new_page()
                await page.goto(f"{stack.base}/view#{stack.link('desk')}")
                await page.wait_for_function("() => window.inkcast.state === 'live'", timeout=20000)
                await asyncio.sleep(1.0)
                stats = await page.evaluate(INBOUND_STATS_JS)
                assert stats["framesDecoded"] >= 3 and (stats["frameWidth"], stats["frameHeight"]) == (1404, 1872)


async def test_a_node_without_the_allowed_identity_is_refused(nodes, control, tmp_path):
    async with signaling_on_tailnet(nodes, tmp_path) as stack:
        stranger = await nodes.up(unique("laptop"))  # on the tailnet, but not tagged as a tablet
        async with stranger.http_session() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(stack.tablet_url)
            assert refused.value.status == 403
            # A device token does not help when identity is what counts.
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(stack.tablet_url, headers={"Authorization": "Bearer whatever-token-123456"})
        assert stack.app[STATE].registry.tablets == {}


async def test_restarted_tablet_is_the_same_node_and_registers_again(nodes, control, tmp_path, rm_fixtures):
    async with signaling_on_tailnet(nodes, tmp_path) as stack:
        name = unique("rm2")
        first = await tagged_tablet_node(nodes, control, stack, name)
        ips = first.ips()
        async with tablet_session(first, stack, rm_fixtures / "Lines_v2.rm") as session:
            await asyncio.wait_for(session.registered.wait(), 20)
        await first.close()
        await eventually(lambda: _async(not stack.app[STATE].registry.tablets), what="the tablet to go offline")

        again = await nodes.up(name)  # same state dir: the same node, the tag kept by control
        assert again.ips() == ips
        assert [n["hostname"] for n in control.nodes()].count(name) == 1
        async with tablet_session(again, stack, rm_fixtures / "Lines_v2.rm") as session:
            await asyncio.wait_for(session.registered.wait(), 20)
            who = await stack.signal_node.whois(again.ips()[0])
            assert who.hostname == name and TABLET_TAG in who.tags


async def test_tablet_redials_when_its_tailnet_connection_drops(nodes, control, tmp_path, rm_fixtures):
    async with signaling_on_tailnet(nodes, tmp_path) as stack:
        node = await tagged_tablet_node(nodes, control, stack)
        async with tablet_session(node, stack, rm_fixtures / "Color_and_tool_v3.14.4.rm", heartbeat=2.0) as session:
            await asyncio.wait_for(session.registered.wait(), 20)
            async with aiohttp.ClientSession() as http:
                viewer = AiortcViewer(stack.base, "desk", stack.link("desk"))
                await viewer.connect(http)
                await viewer.wait_frames(2)

                # Signaling's tailnet node goes away (a crash, a cut link): the tablet's
                # connection gets no error at all, only silence, until its heartbeat notices.
                hostname, state_dir = stack.signal_node.hostname, stack.signal_node.state_dir
                await stack.signal_node.close()
                cut_at = time.monotonic()
                await stack.runners.pop(0).cleanup()
                frames = viewer.frames
                await viewer.wait_frames(frames + 5)  # media does not go through signaling

                stack.signal_node = await nodes.up(hostname, state_dir=state_dir)
                stack.app[STATE].identify_tablet.node = stack.signal_node
                tablet_runner = web.AppRunner(create_tablet_app(stack.app[STATE]))
                await tablet_runner.setup()
                stack.runners.insert(0, tablet_runner)
                await stack.signal_node.serve_aiohttp(tablet_runner, f":{TABLET_PORT}")

                await eventually(lambda: _async(session.connections >= 2 and session.registered.is_set()),
                                 timeout=40, what="the tablet to redial")
                print(f"tablet registered again {time.monotonic() - cut_at:.1f} s after the cut")
                assert "desk" in stack.app[STATE].registry.tablets
                await viewer.close(http)


async def _async(value):
    return value
