"""``inkcast signal``: the signaling server, as it runs on the cloud node."""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

from inkcast import settings

from .app import STATE, create_app
from .config import SignalConfig


async def start(config: SignalConfig, **hooks) -> tuple[web.AppRunner, web.Application]:
    """Start the app on config.host:config.port; with port 0 the chosen port is written back."""
    app = create_app(config, **hooks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    if config.port == 0:
        config.port = site._server.sockets[0].getsockname()[1]
        if not config.public_url:
            app[STATE].public_url = f"http://{config.host}:{config.port}"
    return runner, app


def announce_device_token(app: web.Application, out=sys.stdout) -> None:
    token = app[STATE].generated_device_token
    if token:
        print("\nA device token was generated for tablets to register with. It is shown only this once;\n"
              "only its hash is stored. Give it to the tablet as INKCAST_DEVICE_TOKEN:\n\n"
              f"    {token}\n", file=out, flush=True)


async def serve(config: SignalConfig) -> None:
    runner, app = await start(config)
    announce_device_token(app)
    print(f"signaling listening on http://{config.host}:{config.port} (tablets: /tablet, viewers: /view)",
          file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    config = settings.from_sources(SignalConfig, args)
    print(settings.describe(config), file=sys.stderr)
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
    except (ValueError, OSError) as exc:  # a TURN secret that is unfit, a busy port...
        print(f"inkcast signal: {exc}", file=sys.stderr)
        return 2
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "signal", help="run the signaling server (tablet registry, viewer links, WHEP)",
        description="Serve the tablet WebSocket, the WHEP endpoint and the viewer page. "
                    "Settings come from flags, then INKCAST_* variables.")
    settings.add_arguments(parser, SignalConfig)
    parser.set_defaults(func=run)
