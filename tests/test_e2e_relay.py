"""Media through a real coturn, relay only on both ends, with the credentials signaling mints."""

from __future__ import annotations

import asyncio
import time

import pytest

from support.browser import INBOUND_STATS_JS, chromium
from support.stack import demo_stack
from turn.credentials import TurnSettings, password_for

pytestmark = [pytest.mark.browser, pytest.mark.coturn]


def relay_stack(tmp_path, rm_fixtures, server, transport: str, **kw):
    secret_file = tmp_path / "turn-secret"
    secret_file.write_bytes(server.secret)
    secret_file.chmod(0o600)
    urls = server.urls(stun=False, udp=transport == "udp", tcp=transport == "tcp")
    return demo_stack(tmp_path / "state", rm_fixtures / "Lines_v2.rm", loop=True, pause=0.5,
                      relay_only=True,
                      signal_overrides={"turn_urls": urls, "turn_secret_file": secret_file}, **kw)


def tablet_pair_types(stack) -> list[tuple[str, str]]:
    """The nominated ICE pair of each of the tablet's viewers: (local type, remote type)."""
    pairs = []
    for viewer in stack.demo.session.viewers.values():
        ice = viewer.pc.getSenders()[0].transport.transport
        pair = ice._connection._nominated.get(1)  # aioice: component 1 (RTP+RTCP muxed)
        pairs.append((pair.local_candidate.type, pair.remote_candidate.type) if pair else (None, None))
    return pairs


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_relay_only_both_ends(tmp_path, rm_fixtures, coturn, transport):
    async with relay_stack(tmp_path, rm_fixtures, coturn, transport) as stack:
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(stack.url.replace("/view#", "/view?relay=1#"))
            await page.wait_for_function("() => window.inkcast.state === 'live'", timeout=20000)
            await asyncio.sleep(1.0)
            stats = await page.evaluate(INBOUND_STATS_JS)
            assert stats["framesDecoded"] >= 3
            assert (stats["frameWidth"], stats["frameHeight"]) == (1404, 1872)
            assert stats["localCandidateType"] == "relay", stats
            assert stats["relayProtocol"] == transport, stats
            assert tablet_pair_types(stack) == [("relay", "relay")]
            # Each end used credentials signaling minted for it (coturn relays for no one else).
            assert stack.demo.session.ice_servers[0]["username"].endswith(":tablet-demo")
            assert ":viewer-" in (await page.evaluate(
                "async () => (await (await fetch('/api/view', {headers: {Authorization: 'Bearer ' + "
                "decodeURIComponent(location.hash.slice(1))}})).json()).ice_servers[0].username"))


async def test_expired_turn_credentials_are_refused_and_the_page_says_why(tmp_path, rm_fixtures, coturn):
    settings = TurnSettings(coturn.urls(stun=False, tcp=False), coturn.secret)

    def expired_ice_servers(name: str, not_after: float) -> list[dict]:
        username = f"{int(time.time()) - 60}:{name}"  # expired a minute ago
        return [{"urls": settings.urls, "username": username, "credential": password_for(coturn.secret, username)}]

    async with relay_stack(tmp_path, rm_fixtures, coturn, "udp",
                           signal_hooks={"ice_servers_for": expired_ice_servers}) as stack:
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(stack.url.replace("/view#", "/view?relay=1#"))
            await page.wait_for_function("() => window.inkcast.state === 'refused'", timeout=15000)
            message = await page.evaluate("() => window.inkcast.message")
            assert "relay refused" in message and "401" in message, message
            assert await page.evaluate("() => document.getElementById('status').textContent") == message
