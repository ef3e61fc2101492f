"""The signaling server's handlers, driven over real HTTP and WebSockets on loopback.

The tablet here is a WebSocket client speaking the tablet protocol; its answers are
whatever a test needs (a real answer is tested end to end in test_e2e_*.py).
"""

from __future__ import annotations

import asyncio

import pytest

from signaling.app import STATE, create_app
from signaling.config import SignalConfig
from support.peers import make_offer

DEVICE_TOKEN = "device-token-for-tests-0123456789"


@pytest.fixture
def config(tmp_path):
    return SignalConfig(state_dir=tmp_path, device_token=DEVICE_TOKEN, answer_timeout=0.5, max_body=8192)


@pytest.fixture
async def client(aiohttp_client, config):
    return await aiohttp_client(create_app(config))


@pytest.fixture
async def offer_sdp():
    pc, sdp = await make_offer()
    await pc.close()
    return sdp


def mint(client, tablet="desk", ttl=60.0) -> str:
    token, _ = client.app[STATE].links.mint(tablet, ttl)
    return token


async def connect_tablet(client, name="desk", token=DEVICE_TOKEN):
    ws = await client.ws_connect("/tablet", headers={"Authorization": f"Bearer {token}"})
    await ws.send_json({"type": "hello", "name": name, "layout": "rm2-3.24-bgra", "width": 1404, "height": 1872})
    welcome = await ws.receive_json(timeout=5)
    assert welcome["type"] == "welcome"
    return ws


async def post_offer(client, tablet, token, sdp, content_type="application/sdp"):
    return await client.post(f"/whep/{tablet}", data=sdp.encode() if isinstance(sdp, str) else sdp,
                             headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"})


async def answer_next_offer(ws, sdp="v=0\r\nanswer\r\n"):
    message = await ws.receive_json(timeout=5)
    assert message["type"] == "offer"
    await ws.send_json({"type": "answer", "id": message["id"], "sdp": sdp})
    return message


async def test_offer_reaches_tablet_and_answer_comes_back(client, offer_sdp):
    ws = await connect_tablet(client)
    token = mint(client)
    answering = asyncio.create_task(answer_next_offer(ws))
    response = await post_offer(client, "desk", token, offer_sdp)
    offer = await answering
    assert response.status == 201
    assert response.content_type == "application/sdp"
    assert await response.text() == "v=0\r\nanswer\r\n"
    assert offer["sdp"] == offer_sdp
    assert response.headers["Location"] == f"/whep/desk/{offer['id']}"
    assert response.headers["Access-Control-Allow-Origin"] == "*"

    # DELETE ends the session and tells the tablet; again is harmless (the page's hang-up often
    # comes after the tablet saw the viewer go); a session that never was is 404.
    delete = await client.delete(response.headers["Location"], headers={"Authorization": f"Bearer {token}"})
    assert delete.status == 200
    close = await ws.receive_json(timeout=5)
    assert close == {"type": "close", "id": offer["id"]}
    again = await client.delete(response.headers["Location"], headers={"Authorization": f"Bearer {token}"})
    assert again.status == 200
    never = await client.delete("/whep/desk/no-such-session", headers={"Authorization": f"Bearer {token}"})
    assert never.status == 404
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive_json(timeout=0.3)  # nothing more told to the tablet


async def test_tablet_with_a_wrong_device_token_is_refused(client):
    response = await client.get("/tablet", headers={"Authorization": "Bearer not-the-token"})
    assert response.status == 401
    assert "device token" in (await response.json())["error"]
    response = await client.get("/tablet")
    assert response.status == 401


async def test_tablet_with_a_bad_hello_is_refused(client):
    ws = await client.ws_connect("/tablet", headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
    await ws.send_json({"type": "hello", "name": "Not A Name!"})
    message = await ws.receive_json(timeout=5)
    assert message["type"] == "error" and "name" in message["message"]
    assert client.app[STATE].registry.tablets == {}


@pytest.mark.parametrize("header,status,words", [
    (None, 401, "token"),
    ("Bearer nonsense-token", 401, "unknown"),
    ("Basic dXNlcjpwYXNz", 401, "token"),
])
async def test_offer_without_a_valid_link_is_refused(client, offer_sdp, header, status, words):
    await connect_tablet(client)
    headers = {"Content-Type": "application/sdp"}
    if header:
        headers["Authorization"] = header
    response = await client.post("/whep/desk", data=offer_sdp, headers=headers)
    assert response.status == status
    assert words in (await response.json())["error"]


async def test_link_is_refused_after_it_expired(client, offer_sdp):
    ws = await connect_tablet(client)
    token = mint(client, ttl=0.4)
    config = await client.get("/api/view", headers={"Authorization": f"Bearer {token}"})
    assert config.status == 200
    await asyncio.sleep(0.5)
    response = await post_offer(client, "desk", token, offer_sdp)
    assert response.status == 401
    assert "expired" in (await response.json())["error"]
    config = await client.get("/api/view", headers={"Authorization": f"Bearer {token}"})
    assert config.status == 401
    assert ws.closed is False


async def test_expiry_ends_a_running_session(client, offer_sdp):
    ws = await connect_tablet(client)
    token = mint(client, ttl=1.2)
    answering = asyncio.create_task(answer_next_offer(ws))
    response = await post_offer(client, "desk", token, offer_sdp)
    assert response.status == 201
    offer = await answering
    message = await ws.receive_json(timeout=4)
    assert message == {"type": "close", "id": offer["id"]}
    assert client.app[STATE].registry.sessions == {}


async def test_link_for_another_tablet_is_forbidden(client, offer_sdp):
    await connect_tablet(client, "desk")
    await connect_tablet(client, "kitchen")
    token = mint(client, "kitchen")
    response = await post_offer(client, "desk", token, offer_sdp)
    assert response.status == 403


async def test_unknown_tablet_is_404_and_offline_tablet_is_503(client, offer_sdp):
    response = await post_offer(client, "ghost", mint(client, "ghost"), offer_sdp)
    assert response.status == 404
    assert "no tablet named ghost" in (await response.json())["error"]

    ws = await connect_tablet(client, "desk")
    await ws.close()
    await asyncio.sleep(0.1)
    response = await post_offer(client, "desk", mint(client, "desk"), offer_sdp)
    assert response.status == 503
    assert "offline" in (await response.json())["error"]
    assert response.headers["Retry-After"] == "5"


async def test_tablet_not_answering_is_504_and_is_told_to_drop_it(client, offer_sdp):
    ws = await connect_tablet(client)
    response = await post_offer(client, "desk", mint(client), offer_sdp)
    assert response.status == 504
    assert "did not answer" in (await response.json())["error"]
    offer = await ws.receive_json(timeout=2)
    close = await ws.receive_json(timeout=2)
    assert offer["type"] == "offer" and close == {"type": "close", "id": offer["id"]}


async def test_tablet_vanishing_mid_offer_is_503(client, offer_sdp):
    ws = await connect_tablet(client)

    async def vanish():
        await ws.receive_json(timeout=5)
        await ws.close()

    task = asyncio.create_task(vanish())
    response = await post_offer(client, "desk", mint(client), offer_sdp)
    await task
    assert response.status == 503
    assert "offline" in (await response.json())["error"]


async def test_tablet_refusing_the_offer_passes_its_reason_on(client, offer_sdp):
    ws = await connect_tablet(client)

    async def refuse():
        offer = await ws.receive_json(timeout=5)
        await ws.send_json({"type": "error", "id": offer["id"], "status": 400, "message": "the offer does not accept VP8 video"})

    task = asyncio.create_task(refuse())
    response = await post_offer(client, "desk", mint(client), offer_sdp)
    await task
    assert response.status == 400
    assert "VP8" in (await response.json())["error"]


@pytest.mark.parametrize("body,content_type,status,words", [
    ("v=0\r\n", "text/plain", 415, "application/sdp"),
    ("", "application/sdp", 400, "v=0"),
    ("hello world", "application/sdp", 400, "v=0"),
    ("v=0\r\nthis is not sdp\r\n", "application/sdp", 400, "not <type>=<value>"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "application/sdp", 400, "no video"),
    (b"v=0\r\n\xff\xfe\r\n", "application/sdp", 400, "UTF-8"),
])
async def test_malformed_offers_get_their_own_message(client, body, content_type, status, words):
    await connect_tablet(client)
    response = await post_offer(client, "desk", mint(client), body, content_type)
    assert response.status == status
    assert words in (await response.json())["error"]


async def test_oversized_offer_is_413_with_and_without_content_length(client, offer_sdp):
    await connect_tablet(client)
    token = mint(client)
    big = offer_sdp + "a=x-padding:" + "x" * 10000 + "\r\n"
    response = await post_offer(client, "desk", token, big)
    assert response.status == 413

    async def chunks():
        for _ in range(20):
            yield b"a=x-padding:" + b"x" * 1000 + b"\r\n"

    response = await client.post("/whep/desk", data=chunks(), headers={
        "Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
    assert response.status == 413


async def test_bad_inputs_do_not_disturb_a_running_viewer(client, offer_sdp):
    ws = await connect_tablet(client)
    token = mint(client)
    answering = asyncio.create_task(answer_next_offer(ws))
    good = await post_offer(client, "desk", token, offer_sdp)
    await answering
    assert good.status == 201
    session_id = good.headers["Location"].rsplit("/", 1)[1]

    await post_offer(client, "desk", token, "garbage")
    await post_offer(client, "desk", "wrong-token", offer_sdp)
    await post_offer(client, "desk", token, offer_sdp + "x" * 9000)
    await ws.send_str("{not json")
    await ws.send_json({"type": "answer", "id": "no-such-offer", "sdp": "v=0"})

    assert session_id in client.app[STATE].registry.sessions
    assert not ws.closed
    health = await (await client.get("/healthz")).json()
    assert health == {"ok": True, "tablets": ["desk"], "sessions": 1}


async def test_same_tablet_reconnecting_replaces_the_old_connection(client):
    old = await connect_tablet(client)
    new = await connect_tablet(client)
    message = await old.receive(timeout=5)
    assert message.type.name in ("CLOSE", "CLOSED", "CLOSING")
    assert client.app[STATE].registry.tablets["desk"].ws is not None
    assert not new.closed


async def test_links_api_mints_and_revokes_with_the_device_token(client, offer_sdp):
    ws = await connect_tablet(client)
    refused = await client.post("/api/links", json={"tablet": "desk"})
    assert refused.status == 401
    response = await client.post("/api/links", json={"tablet": "desk", "ttl": 60},
                                 headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
    assert response.status == 201
    link = await response.json()
    assert link["url"].endswith("/view#" + link["token"])
    assert len(link["token"]) >= 40

    answering = asyncio.create_task(answer_next_offer(ws))
    assert (await post_offer(client, "desk", link["token"], offer_sdp)).status == 201
    offer = await answering
    revoke = await client.delete(f"/api/links/{link['id']}", headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
    assert revoke.status == 200
    assert await ws.receive_json(timeout=3) == {"type": "close", "id": offer["id"]}
    response = await post_offer(client, "desk", link["token"], offer_sdp)
    assert response.status == 401 and "revoked" in (await response.json())["error"]


async def test_links_only_for_tablets_that_registered(client):
    response = await client.post("/api/links", json={"tablet": "typo"},
                                 headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
    assert response.status == 404 and "typo" in (await response.json())["error"]


async def test_tablet_can_ask_for_a_link(client):
    ws = await connect_tablet(client)
    await ws.send_json({"type": "mint_link", "ttl": 120})
    link = await ws.receive_json(timeout=5)
    assert link["type"] == "link" and link["tablet"] == "desk"
    config = await client.get("/api/view", headers={"Authorization": f"Bearer {link['token']}"})
    assert (await config.json())["whep"] == "/whep/desk"


async def test_links_survive_a_restart_but_tokens_are_not_stored(aiohttp_client, config, tmp_path):
    first = await aiohttp_client(create_app(config))
    await (await connect_tablet(first)).close()
    token = mint(first)
    stored = (tmp_path / "links.json").read_text()
    assert token not in stored
    second = await aiohttp_client(create_app(config))
    response = await second.get("/api/view", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert (await response.json())["state"] == "offline"


async def test_generated_device_token_is_stored_as_a_hash_only(aiohttp_client, tmp_path):
    app = create_app(SignalConfig(state_dir=tmp_path))
    token = app[STATE].generated_device_token
    assert token and len(token) >= 24
    assert token not in (tmp_path / "device-token.sha256").read_text()
    again = create_app(SignalConfig(state_dir=tmp_path))
    assert again[STATE].generated_device_token is None  # printed once only
    client = await aiohttp_client(again)
    ws = await connect_tablet(client, token=token)
    assert not ws.closed


async def test_viewer_page_is_served_with_strict_headers(client):
    response = await client.get("/view")
    assert response.status == 200
    assert "<video" in await response.text()
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    script = await client.get("/web/viewer.js")
    assert script.status == 200


# -- TURN credentials handed out -----------------------------------------------------------

TURN_URLS = ["stun:turn.example.test:3478", "turn:turn.example.test:3478?transport=udp",
             "turn:turn.example.test:3478?transport=tcp"]


@pytest.fixture
async def turn_client(aiohttp_client, tmp_path):
    secret = tmp_path / "turn-secret"
    secret.write_text("0123456789abcdef0123456789abcdef\n")
    secret.chmod(0o600)
    config = SignalConfig(state_dir=tmp_path / "state", device_token=DEVICE_TOKEN, answer_timeout=2,
                          turn_urls=TURN_URLS, turn_secret_file=secret, turn_ttl=1.0)
    return await aiohttp_client(create_app(config))


def expiry_of(username: str) -> int:
    return int(username.split(":", 1)[0])


async def test_tablet_gets_its_own_turn_credentials_and_fresh_ones_in_time(turn_client):
    import time

    ws = await turn_client.ws_connect("/tablet", headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
    await ws.send_json({"type": "hello", "name": "desk"})
    welcome = await ws.receive_json(timeout=5)
    stun, turn = welcome["ice_servers"]
    assert stun == {"urls": [TURN_URLS[0]]}
    assert turn["urls"] == TURN_URLS[1:] and turn["username"].endswith(":tablet-desk")
    first = expiry_of(turn["username"])
    assert first <= time.time() + 1.0 + 1
    fresh = await ws.receive_json(timeout=3)  # at half of the 1 s lifetime
    assert fresh["type"] == "ice_servers"
    assert expiry_of(fresh["ice_servers"][1]["username"]) >= first


async def test_viewer_turn_credentials_end_with_the_link(turn_client, offer_sdp):
    ws = await turn_client.ws_connect("/tablet", headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
    await ws.send_json({"type": "hello", "name": "desk"})
    await ws.receive_json(timeout=5)
    token, link = turn_client.app[STATE].links.mint("desk", 30.0)

    config = await (await turn_client.get("/api/view", headers={"Authorization": f"Bearer {token}"})).json()
    username = config["ice_servers"][1]["username"]
    assert username.endswith(f":viewer-{link.id}") and expiry_of(username) <= link.expires_at

    answering = asyncio.create_task(answer_next_offer(ws))
    response = await post_offer(turn_client, "desk", token, offer_sdp)
    await answering
    assert response.status == 201
    links = response.headers.getall("Link")
    assert len(links) == 3 and all('rel="ice-server"' in value for value in links)
    assert any("turn:turn.example.test:3478?transport=tcp" in value and f':viewer-{link.id}"' in value
               and "credential=" in value for value in links)
    assert "Link" in response.headers["Access-Control-Expose-Headers"]


def test_turn_urls_without_a_secret_are_refused_clearly(tmp_path, monkeypatch):
    from turn.credentials import TurnSecretError

    monkeypatch.delenv("INKCAST_TURN_SECRET", raising=False)
    with pytest.raises(TurnSecretError, match="secret"):
        create_app(SignalConfig(state_dir=tmp_path, device_token=DEVICE_TOKEN, turn_urls=TURN_URLS))
