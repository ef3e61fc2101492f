"""The ``inkcast`` command: one subcommand per job (demo, tablet, signal, turn-config, ...)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from typing import Coroutine

from . import settings

# Each module named here has register(subparsers) adding its subcommand(s); the subcommand's
# parser carries func=<callable taking the parsed args and returning an exit status>.
SUBCOMMAND_MODULES = [
    "inkcast.demo",
    "streamer.main",
    "signaling.main",
    "turn.main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inkcast",
        description="Live streaming of a reMarkable tablet's screen to anyone holding a link.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.verbose < 2:
        # aiortc and aioice are chatty at INFO about every candidate pair.
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


def run_until_stopped(command: str, main: Coroutine, *configs) -> int:
    """Print ``configs`` (no secrets), run ``main`` until it ends or Ctrl-C; errors the user can
    act on (a busy port, an unfit secret, an unreachable tailnet) end it with one line, not a trace."""
    for config in configs:
        print(settings.describe(config), file=sys.stderr)
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError) as exc:
        print(f"inkcast {command}: {_message(exc)}", file=sys.stderr)
        return 1
    return 0


def _message(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return str(exc)
