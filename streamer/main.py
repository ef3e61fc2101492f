"""``inkcast tablet``: the streamer, as it runs on the tablet."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import socket
import sys

from inkcast import settings
from signaling import protocol

from .config import TabletConfig
from .device import UnsupportedDevice
from .layouts import describe_layouts
from .session import SessionSettings, TabletSession
from .source import open_source
from .stream import TabletStream

logger = logging.getLogger(__name__)


def default_name() -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")[:63].strip("-")
    return name or "tablet"


def build_stream(config: TabletConfig, source=None) -> TabletStream:
    def open_configured():
        return open_source(config.source, layout_name=config.layout or None,
                           path=config.replay if config.source == "replay" else config.file,
                           loop=config.loop, pause=config.pause)

    if source is None:
        try:
            source = open_configured()
        except UnsupportedDevice as exc:
            raise ValueError(str(exc)) from None
    logger.info("source: %s", source.description)
    reopen = open_configured if config.source == "device" else None
    return TabletStream(source, config.capture_settings(), config.vp8_settings(), reopen=reopen)


def build_session(config: TabletConfig, stream: TabletStream, tailnet: bool = False, **kwargs) -> TabletSession:
    name = config.name or default_name()
    if not protocol.valid_tablet_name(name):
        raise ValueError(f"--name {name!r}: a tablet name is a-z, 0-9 and - (at most 63)")
    if not config.device_token and not tailnet:
        raise ValueError("set the device token signaling printed (--device-token or INKCAST_DEVICE_TOKEN)")
    return TabletSession(stream, SessionSettings(
        signal_url=config.signal_url, name=name, device_token=config.device_token,
        max_viewers=config.max_viewers, relay_only=config.relay_only, heartbeat=config.heartbeat), **kwargs)


async def print_link_when_registered(session: TabletSession, ttl: float, out=sys.stdout) -> None:
    if ttl <= 0:
        return
    await session.registered.wait()
    link = await session.mint_link(ttl)
    print(f"\nViewer link for {session.settings.name} (valid {ttl / 3600:g} h):\n\n    {link['url']}\n", file=out, flush=True)


def source_model(stream: TabletStream) -> str | None:
    info = getattr(stream.source, "info", None)
    return getattr(info, "machine", None)


async def run_tablet(config: TabletConfig, tailnet_settings=None) -> None:
    stream = build_stream(config)
    node = None
    kwargs = {}
    if tailnet_settings is not None and tailnet_settings.tailnet:
        from .tailnet import join

        # The tablet has no TUN device: its own process joins the tailnet, and the signaling
        # WebSocket is dialled through it.
        node = await join(tailnet_settings, model=source_model(stream))
        kwargs["http_factory"] = node.http_session
    session = build_session(config, stream, tailnet=node is not None, **kwargs)
    tasks = [asyncio.create_task(stream.run()), asyncio.create_task(session.run()),
             asyncio.create_task(print_link_when_registered(session, config.link_ttl))]
    try:
        done, _ = await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await session.close()
        await stream.close()
        if node is not None:
            await node.close()


def run(args: argparse.Namespace) -> int:
    from inkcast.cli import run_until_stopped

    from .tailnet import TailnetSettings

    config = settings.from_sources(TabletConfig, args)
    tailnet = settings.from_sources(TailnetSettings, args)
    return run_until_stopped("tablet", run_tablet(config, tailnet), config, *([tailnet] if tailnet.tailnet else []))


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tablet", help="stream this tablet's screen through a signaling server",
        description="Capture the screen (or replay a page), encode it once as VP8 and serve every "
                    "viewer that signaling forwards. Settings come from flags, then INKCAST_* variables.")
    settings.add_arguments(parser, TabletConfig)
    from .tailnet import TailnetSettings

    settings.add_arguments(parser.add_argument_group("tailnet (when the tablet has no TUN device)"), TailnetSettings)
    parser.set_defaults(func=run)

    layouts = subparsers.add_parser(
        "layouts", help="list the framebuffer layouts inkcast knows (models and firmware)",
        description="The known pixel layouts; --layout NAME forces one, or give WIDTHxHEIGHT:FORMAT.")
    layouts.set_defaults(func=lambda args: print(describe_layouts()) or 0)
