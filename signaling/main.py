"""``inkcast signal``: the signaling server, as it runs on the cloud node."""

from __future__ import annotations

import argparse
import errno
import asyncio
import sys
from pathlib import Path

from aiohttp import web

from inkcast import settings

from .app import STATE, create_app, create_tablet_app
from .config import SignalConfig, default_state_dir

SIGNALING_HOSTNAME = "inkcast-signaling"


async def start(config: SignalConfig, tablets_here: bool = True, **hooks) -> tuple[web.AppRunner, web.Application]:
    """Start the public app on config.host:config.port; with port 0 the chosen port is written back."""
    app = create_app(config, tablets_here=tablets_here, **hooks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        hint = " (another program uses it: choose another with --port)" if exc.errno == errno.EADDRINUSE else ""
        raise OSError(exc.errno, f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}{hint}") from None
    except BaseException:
        await runner.cleanup()
        raise
    if config.port == 0:
        config.port = site._server.sockets[0].getsockname()[1]
        app[STATE].public_url = config.viewer_base_url()
    return runner, app


def check_tablet_auth(config: SignalConfig, tailnet: bool) -> str:
    mode = config.tablet_auth_mode(tailnet)
    if mode in ("tailnet", "both"):
        if not tailnet:
            raise SystemExit("inkcast signal: tablet identity by tailnet needs --tailnet")
        if not (config.allow_tags or config.allow_nodes):
            raise SystemExit("inkcast signal: say which tailnet nodes may register: --allow-tags tag:... "
                             "or --allow-nodes NAME (or --tablet-auth token)")
    return mode


async def start_on_tailnet(config: SignalConfig, node, **hooks):
    """Viewers on the public listener, tablets on ``node``'s tailnet listener only."""
    from .tailnetside import AllowList, TailnetIdentity

    mode = check_tablet_auth(config, tailnet=True)
    identity = TailnetIdentity(node, AllowList(frozenset(config.allow_tags), frozenset(config.allow_nodes)))
    runner, app = await start(config, tablets_here=False, tablet_auth=mode, identify_tablet=identity, **hooks)
    tablet_runner = web.AppRunner(create_tablet_app(app[STATE]), access_log=None)
    await tablet_runner.setup()
    await node.serve_aiohttp(tablet_runner, f":{config.tablet_port}")
    return runner, app, tablet_runner


def announce_device_token(app: web.Application, config: SignalConfig, out=sys.stdout) -> None:
    state = app[STATE]
    if state.tablet_auth not in ("token", "both"):
        return
    token = state.generated_device_token
    if token:
        print("\nA device token was generated for tablets to register with. It is shown only this once;\n"
              "only its hash is stored. Give it to the tablet as INKCAST_DEVICE_TOKEN:\n\n"
              f"    {token}\n", file=out, flush=True)
    elif not config.device_token:
        stored = Path(config.state_dir or default_state_dir()) / "device-token.sha256"
        print(f"Tablets register with the device token printed when it was generated (its hash is in "
              f"{stored}; delete that file and restart for a new token).", file=sys.stderr, flush=True)


async def serve(config: SignalConfig, tailnet_settings=None) -> None:
    node = tablet_runner = None
    if tailnet_settings is not None and tailnet_settings.tailnet:
        from streamer.tailnet import join

        node = await join(tailnet_settings)
        try:
            runner, app, tablet_runner = await start_on_tailnet(config, node)
        except BaseException:
            await node.close()
            raise
        where = f"ws://{node.hostname}:{config.tablet_port}/tablet on the tailnet only"
    else:
        runner, app = await start(config, tablet_auth=check_tablet_auth(config, tailnet=False))
        where = f"ws://{config.host}:{config.port}/tablet"
    announce_device_token(app, config)
    print(f"signaling: viewers at http://{config.host}:{config.port}/view, tablets at {where}",
          file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        if tablet_runner is not None:
            await tablet_runner.cleanup()
        await runner.cleanup()
        if node is not None:
            await node.close()


def _tailnet_settings(args: argparse.Namespace, config: SignalConfig):
    from streamer.tailnet import TailnetSettings

    tailnet = settings.from_sources(TailnetSettings, args)
    defaults = TailnetSettings()
    if not tailnet.tailnet_hostname:
        tailnet.tailnet_hostname = SIGNALING_HOSTNAME
    if tailnet.tailnet_state_dir == defaults.tailnet_state_dir:
        tailnet.tailnet_state_dir = Path(config.state_dir or default_state_dir()) / "tailnet"
    return tailnet


def run(args: argparse.Namespace) -> int:
    from inkcast.cli import run_until_stopped

    config = settings.from_sources(SignalConfig, args)
    tailnet = _tailnet_settings(args, config)
    return run_until_stopped("signal", serve(config, tailnet), config, *([tailnet] if tailnet.tailnet else []))


def register(subparsers) -> None:
    from streamer.tailnet import TailnetSettings

    parser = subparsers.add_parser(
        "signal", help="run the signaling server (tablet registry, viewer links, WHEP)",
        description="Serve the tablet WebSocket, the WHEP endpoint and the viewer page. With --tailnet, "
                    "tablets register on the tailnet only and are known by their tailnet identity. "
                    "Settings come from flags, then INKCAST_* variables.")
    settings.add_arguments(parser, SignalConfig)
    settings.add_arguments(parser.add_argument_group("tailnet"), TailnetSettings)
    parser.set_defaults(func=run)
