"""The commands as a user runs them: `inkcast demo` in a subprocess, the help texts."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from inkcast.demo import DemoConfig
from signaling.config import SignalConfig
from streamer.config import TabletConfig
from support.peers import AiortcViewer

INKCAST = [sys.executable, "-m", "inkcast"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("INKCAST_")}


async def read_link(process: asyncio.subprocess.Process, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(process.stdout.readline(), deadline - time.monotonic())
        if not line:
            break
        text = line.decode().strip()
        if "/view#" in text:
            return text
    raise AssertionError("inkcast demo printed no viewer link")


async def test_demo_command_serves_a_link_that_plays(rm_fixtures):
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *INKCAST, "demo", "--port", str(port), "--replay", str(rm_fixtures / "Lines_v2.rm"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env())
    try:
        url = await read_link(process)
        assert url.startswith(f"http://127.0.0.1:{port}/view#")
        base, token = url.split("/view#")
        async with aiohttp.ClientSession() as http:
            page = await http.get(f"{base}/view")
            assert page.status == 200 and "<video" in await page.text()
            viewer = AiortcViewer(base, "demo", token)
            await viewer.connect(http)
            await viewer.wait_frames(3, timeout=20)
            assert viewer.size == (1404, 1872)
            await viewer.close(http)
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    settings_printed = (await process.stderr.read()).decode()
    assert "DemoConfig:" in settings_printed and f"port = {port}" in settings_printed


def test_demo_refuses_a_missing_page_and_a_busy_port(tmp_path):
    missing = subprocess.run([*INKCAST, "demo", "--replay", str(tmp_path / "nope.rm")],
                             capture_output=True, text=True, env=clean_env(), timeout=30)
    assert missing.returncode == 2 and "no such file" in missing.stderr

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*INKCAST, "demo", "--port", str(port)], capture_output=True,
                                text=True, env=clean_env(), timeout=30)
    assert result.returncode == 1 and "address already in use" in result.stderr.lower()


def test_demo_refuses_a_file_that_is_not_a_page(tmp_path):
    bogus = tmp_path / "bogus.rm"
    bogus.write_bytes(b"this is not a reMarkable page")
    result = subprocess.run([*INKCAST, "demo", "--replay", str(bogus)], capture_output=True,
                            text=True, env=clean_env(), timeout=30)
    assert result.returncode != 0
    assert "bogus.rm" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command,config", [("demo", DemoConfig), ("tablet", TabletConfig), ("signal", SignalConfig)])
def test_help_lists_every_setting_with_its_variable(command, config):
    result = subprocess.run([*INKCAST, command, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for field in dataclasses.fields(config):
        flag = "--" + field.name.replace("_", "-")
        assert flag in text, f"{command} --help lacks {flag}"
        assert f"INKCAST_{field.name.upper()}" in text


def test_secrets_are_not_printed_at_start(tmp_path):
    env = {**clean_env(), "INKCAST_DEVICE_TOKEN": "super-secret-device-token-123"}
    result = subprocess.run([*INKCAST, "tablet", "--source", "file", "--file", str(tmp_path / "none.raw"),
                             "--layout", "rm2-3.24-bgra"], capture_output=True, text=True, env=env, timeout=30)
    assert "device_token = (set)" in result.stderr
    assert "super-secret-device-token-123" not in result.stdout + result.stderr
    assert result.returncode != 0 and "none.raw" in result.stderr


@pytest.mark.parametrize("args,words", [
    (["demo", "--port", "99999"], "--port (or INKCAST_PORT) must be 0-65535"),
    (["demo", "--port", "abc"], "not a whole number: 'abc'"),
    (["demo", "--max-fps", "0"], "--max-fps (or INKCAST_MAX_FPS) must be positive"),
    (["demo", "--link-ttl", "0"], "--link-ttl"),
    (["demo", "--layout", "nonsense"], "unknown layout 'nonsense'"),
    (["tablet", "--signal-url", "nonsense"], "--signal-url (or INKCAST_SIGNAL_URL) must be a ws:// or wss:// URL"),
    (["tablet", "--source", "file", "--layout", "rm2-3.24-bgra"], "--source file needs --file"),
    (["tablet", "--source", "replay", "--name", "Bad Name"], "--name 'Bad Name'"),
    (["tablet"], "--source replay"),  # not a tablet: say what works on a computer
    (["signal", "--host", "host.invalid", "--port", "0"], "cannot listen on host.invalid"),
])
def test_bad_settings_get_one_clear_line(args, words, tmp_path):
    env = {**clean_env(), "INKCAST_STATE_DIR": str(tmp_path), "INKCAST_DEVICE_TOKEN": "device-token-0123456789"}
    result = subprocess.run([*INKCAST, *args], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode != 0
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
