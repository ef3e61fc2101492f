"""``inkcast demo``: a replaying tablet and the signaling server on this machine, and a link."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inkcast import settings
from signaling.app import STATE
from signaling.config import DEFAULT_PORT, SignalConfig
from signaling.main import start as start_signaling
from streamer.config import TabletConfig
from streamer.main import build_session, build_stream

from .cli import run_until_stopped
from .settings import check, setting


@dataclass
class DemoConfig:
    host: str = setting("127.0.0.1", "address to listen on (0.0.0.0 to let other machines watch)")
    port: int = setting(DEFAULT_PORT, "TCP port to listen on")
    replay: Path | None = setting(None, "a .rm page (format v6) to replay (default: a built-in page written with a stroke font)")
    layout: str = setting("rm2-3.24-bgra", "device pixel layout the replay is held in")
    pause: float = setting(3.0, "seconds before the replay starts again")
    max_fps: float = setting(10.0, "frames per second at most while drawing")
    link_ttl: float = setting(86400.0, "lifetime of the printed viewer link, seconds")

    def __post_init__(self) -> None:
        check(0 <= self.port <= 65535, DemoConfig, "port", "must be 0-65535")
        check(self.max_fps > 0, DemoConfig, "max_fps", "must be positive")
        check(self.link_ttl > 0, DemoConfig, "link_ttl", "must be positive")
        check(self.pause >= 0, DemoConfig, "pause", "must be 0 or more")


class Demo:
    """The demo's parts, started and stopped together (tests drive it too)."""

    def __init__(self, config: DemoConfig, state_dir: Path, source=None, signal_overrides: dict | None = None,
                 signal_hooks: dict | None = None, **tablet_overrides):
        self.config = config
        self.state_dir = state_dir
        token = secrets.token_urlsafe(24)
        self.signal_config = SignalConfig(host=config.host, port=config.port, state_dir=state_dir,
                                          device_token=token, link_ttl=config.link_ttl,
                                          **(signal_overrides or {}))
        self.signal_hooks = signal_hooks or {}
        self.tablet_config = TabletConfig(**{
            "source": "replay", "replay": config.replay, "layout": config.layout, "pause": config.pause,
            "name": "demo", "device_token": token, "max_fps": config.max_fps, **tablet_overrides})
        self._source = source
        self.runner = None
        self.app = None
        self.stream = None
        self.session = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> str:
        """Start everything; returns the viewer link once the tablet has registered."""
        self.runner, self.app = await start_signaling(self.signal_config, **self.signal_hooks)
        host = self.signal_config.host
        connect_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        connect_host = f"[{connect_host}]" if ":" in connect_host else connect_host
        self.tablet_config.signal_url = f"ws://{connect_host}:{self.signal_config.port}/tablet"
        self.stream = build_stream(self.tablet_config, self._source)
        self.session = build_session(self.tablet_config, self.stream)
        self._tasks = [asyncio.create_task(self.stream.run(), name="stream"),
                       asyncio.create_task(self.session.run(), name="session")]
        await asyncio.wait_for(self.session.registered.wait(), 15)
        token, _ = self.app[STATE].links.mint(self.session.settings.name, self.config.link_ttl)
        return self.app[STATE].viewer_url(token)

    async def wait(self) -> None:
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.session:
            await self.session.close()
        if self.stream:
            await self.stream.close()
        if self.runner:
            await self.runner.cleanup()


async def run_demo(config: DemoConfig) -> None:
    with tempfile.TemporaryDirectory(prefix="inkcast-demo-") as state_dir:
        demo = Demo(config, Path(state_dir))
        try:
            url = await demo.start()
            print(f"\ninkcast demo: {demo.stream.source.description}\n\n"
                  f"Open the viewer link in a browser (Ctrl-C stops the demo):\n\n    {url}\n", flush=True)
            await demo.wait()
        finally:
            await demo.stop()


def run(args: argparse.Namespace) -> int:
    config = settings.from_sources(DemoConfig, args)
    if config.replay is not None and not config.replay.is_file():
        why = "is a folder, not a .rm page" if config.replay.is_dir() else "no such file"
        print(f"inkcast demo: --replay {config.replay}: {why}", file=sys.stderr)
        return 2
    return run_until_stopped("demo", run_demo(config), config)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="a replaying tablet, the signaling server and a viewer link, all on this machine",
        description="Write a page stroke by stroke at pen speed, as a tablet would stream it, serve it, and "
                    "print a link to open in a browser. Runs until stopped (Ctrl-C); the page starts again "
                    "when finished.")
    settings.add_arguments(parser, DemoConfig)
    parser.set_defaults(func=run)
