"""The signaling server: tablets register over a WebSocket, viewers reach them over WHEP.

    POST   /whep/<tablet>            SDP offer in, 201 + SDP answer + Location out
    DELETE /whep/<tablet>/<session>  ends that viewer's session
    GET    /tablet                   a tablet's WebSocket (Authorization: Bearer <device token>)
    GET    /view#<token>             the viewer page; GET /api/view gives it its settings
    POST   /api/links                mint a viewer link (device token); DELETE /api/links/<id> revokes
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aiohttp import WSMsgType, web

from . import protocol
from .config import SignalConfig, default_state_dir
from .devicetoken import DeviceTokens, load_or_create
from .links import LinkError, LinkStore, ViewerLink
from .registry import Registry, SignalError
from turn.credentials import TurnSettings

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# ICE servers (STUN/TURN, in RTCIceServer JSON form) for a peer named `name`, whose
# credentials must expire no later than `not_after`.
IceServersFor = Callable[[str, float], list[dict]]


def no_ice_servers(name: str, not_after: float) -> list[dict]:
    return []


@dataclass
class SignalState:
    config: SignalConfig
    registry: Registry
    links: LinkStore
    device_tokens: DeviceTokens
    ice_servers_for: IceServersFor = no_ice_servers
    link_headers_for: Callable[[str, float], list[str]] = lambda name, not_after: []
    # How a tablet proves itself: "token", "tailnet" (identify_tablet names an allowed node) or "both".
    tablet_auth: str = "token"
    identify_tablet: Callable | None = None
    public_url: str = ""
    generated_device_token: str | None = None
    tasks: list = field(default_factory=list)

    def viewer_url(self, token: str) -> str:
        return f"{self.public_url}/view#{token}"


STATE = web.AppKey("state", SignalState)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def error_response(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Retry-After",
}


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        response = await handler(request)
    except (SignalError, LinkError) as exc:
        logger.warning("%s %s -> %d %s", request.method, request.path, exc.status, exc.message)
        response = error_response(exc.status, exc.message, getattr(exc, "retry_after", None))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        logger.warning("%s %s -> %d %s", request.method, request.path, exc.status, exc.reason)
        response = error_response(exc.status, exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason)
    if request.path.startswith("/whep/"):
        response.headers.update(CORS)
    return response


@web.middleware
async def page_headers_middleware(request: web.Request, handler):
    response = await handler(request)
    # The token lives in the page's fragment: keep it out of Referer headers and off other origins.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path == "/view":
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors *")
        response.headers["Cache-Control"] = "no-store"
    return response


# -- viewers ------------------------------------------------------------------------------

def _check_link(state: SignalState, request: web.Request, tablet: str) -> ViewerLink:
    link = state.links.check(bearer(request))
    if link.tablet != tablet:
        raise SignalError(403, f"this link is for another tablet than {tablet}")
    return link


async def _read_sdp(request: web.Request, limit: int) -> str:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/sdp":
        raise SignalError(415, f"the offer must be sent as application/sdp, not {content_type or 'nothing'}")
    if request.content_length is not None and request.content_length > limit:
        raise SignalError(413, f"an offer of {request.content_length} bytes is over the {limit} byte limit")
    body = bytearray()
    async for chunk in request.content.iter_chunked(16384):
        body += chunk
        if len(body) > limit:
            raise SignalError(413, f"the offer is over the {limit} byte limit")
    try:
        sdp = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignalError(400, "malformed SDP: not UTF-8 text") from None
    check_offer(sdp)
    return sdp


def check_offer(sdp: str) -> None:
    """Refuse what cannot be an SDP offer before bothering a tablet with it."""
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0].strip() != "v=0":
        raise SignalError(400, "malformed SDP: it must start with v=0")
    if "\x00" in sdp:
        raise SignalError(400, "malformed SDP: contains NUL bytes")
    bad = next((line for line in lines if len(line) < 2 or line[1] != "=" or not line[0].isalpha()), None)
    if bad is not None:
        raise SignalError(400, f"malformed SDP: line {bad[:40]!r} is not <type>=<value>")
    if not any(line.startswith("m=video") for line in lines):
        raise SignalError(400, "the offer has no video section (m=video)")
    if not any(line.startswith("a=fingerprint:") for line in lines):
        raise SignalError(400, "the offer has no DTLS fingerprint")
    if not any(line.startswith("a=ice-ufrag:") for line in lines):
        raise SignalError(400, "the offer has no ICE credentials (a=ice-ufrag)")


async def whep_offer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tablet = request.match_info["tablet"]
    if not protocol.valid_tablet_name(tablet):
        raise SignalError(404, "no tablet by that name")
    link = _check_link(state, request, tablet)
    sdp = await _read_sdp(request, state.config.max_body)
    session, answer = await state.registry.offer(tablet, sdp, link, state.config.answer_timeout)
    logger.info("viewer session %s on %s via link %s", session.id, tablet, link.id)
    location = f"/whep/{tablet}/{session.id}"
    response = web.Response(status=201, text=answer, content_type="application/sdp",
                            headers={"Location": location, "ETag": f'"{session.id}"'})
    for value in state.link_headers_for(f"viewer-{link.id}", link.expires_at):
        response.headers.add("Link", value)
    return response


async def whep_delete(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tablet, session_id = request.match_info["tablet"], request.match_info["session"]
    _check_link(state, request, tablet)
    if state.registry.recently_ended(session_id):
        # The tablet saw the viewer go (DTLS close) before the page's own DELETE arrived.
        return web.Response(status=200)
    session = state.registry.sessions.get(session_id)
    if session is None or session.tablet != tablet:
        raise SignalError(404, "no such viewer session")
    await state.registry.end_session(session_id, "viewer hung up")
    return web.Response(status=200)


async def whep_patch(request: web.Request) -> web.Response:
    # The tablet answers with all its candidates gathered; trickle ICE is not needed.
    raise SignalError(405, "trickle ICE is not supported; candidates are in the answer")


async def whep_options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=CORS)


async def view_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[STATE].config.web_dir / "view.html")


async def view_config(request: web.Request) -> web.Response:
    """What the viewer page needs: which tablet, where its WHEP endpoint is, ICE servers."""
    state = request.app[STATE]
    link = state.links.check(bearer(request))
    return web.json_response({
        "tablet": link.tablet,
        "whep": f"/whep/{link.tablet}",
        "state": state.registry.state(link.tablet),
        "expires_at": link.expires_at,
        "ice_servers": state.ice_servers_for(f"viewer-{link.id}", link.expires_at),
    })


# -- tablets --------------------------------------------------------------------------------

async def _authorize_tablet(state: SignalState, request: web.Request) -> str:
    """Who the registering tablet is, by the configured proof; raises 401/403 otherwise."""
    presented = bearer(request)
    token_ok = state.device_tokens.check(presented)
    if state.tablet_auth in ("token", "both") and not token_ok:
        raise SignalError(401, "wrong device token" if presented else
                          "a tablet must present its device token (Authorization: Bearer ...)")
    if state.tablet_auth == "token":
        return "device token"
    identity = await state.identify_tablet(request) if state.identify_tablet else None
    if identity is None:
        raise SignalError(403, "this tailnet node is not allowed to register as a tablet")
    return identity


async def tablet_socket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    who = await _authorize_tablet(state, request)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=protocol.MAX_MESSAGE)
    await ws.prepare(request)
    try:
        hello = protocol.parse((await ws.receive_str(timeout=10)))
        name = str(hello.get("name", ""))
        if hello["type"] != "hello" or not protocol.valid_tablet_name(name):
            raise protocol.ProtocolError("the first message must be hello with a name of a-z, 0-9 and -")
    except (protocol.ProtocolError, TypeError, asyncio.TimeoutError) as exc:
        logger.warning("tablet from %s refused: %s", request.remote, exc or "no hello in time")
        await ws.send_json({"type": "error", "message": str(exc) or "no hello in time"})
        await ws.close()
        return ws
    logger.info("tablet %s connecting (%s, from %s)", name, who, request.remote or "the tailnet")
    conn = await state.registry.register(name, ws, hello)
    refresher = asyncio.create_task(_refresh_tablet_ice(state, ws, name))
    try:
        await ws.send_json({"type": "welcome", "ice_servers": _tablet_ice(state, name)})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                message = protocol.parse(msg.data)
            except protocol.ProtocolError as exc:
                logger.warning("tablet %s sent a bad message: %s", name, exc)
                continue
            if message["type"] == "mint_link":
                await ws.send_json(_mint(state, name, message.get("ttl")))
            else:
                state.registry.on_tablet_message(conn, message)
    finally:
        refresher.cancel()
        state.registry.unregister(conn)
    return ws


def _tablet_ice(state: SignalState, name: str) -> list[dict]:
    return state.ice_servers_for(f"tablet-{name}", time.time() + state.config.turn_ttl)


async def _refresh_tablet_ice(state: SignalState, ws: web.WebSocketResponse, name: str) -> None:
    """New TURN credentials at half their lifetime, so a tablet never answers with stale ones."""
    while True:
        await asyncio.sleep(state.config.turn_ttl / 2)
        try:
            await ws.send_json({"type": "ice_servers", "ice_servers": _tablet_ice(state, name)})
        except ConnectionError:
            return


def _mint(state: SignalState, tablet: str, ttl) -> dict:
    ttl = float(ttl) if isinstance(ttl, (int, float)) and ttl > 0 else state.config.link_ttl
    token, link = state.links.mint(tablet, min(ttl, 366 * 86400))
    return {"type": "link", "url": state.viewer_url(token), "token": token, **link.public()}


async def links_create(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.device_tokens.check(bearer(request)):
        raise SignalError(401, "minting links needs the device token")
    try:
        body = await request.json()
    except ValueError:
        raise SignalError(400, "the body must be JSON: {\"tablet\": name, \"ttl\": seconds}") from None
    tablet = body.get("tablet") if isinstance(body, dict) else None
    if not isinstance(tablet, str) or not protocol.valid_tablet_name(tablet):
        raise SignalError(400, "a link needs a tablet name of a-z, 0-9 and -")
    if state.registry.state(tablet) == "unknown":
        raise SignalError(404, f"no tablet named {tablet} has registered here yet")
    return web.json_response(_mint(state, tablet, body.get("ttl")), status=201)


async def links_revoke(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.device_tokens.check(bearer(request)):
        raise SignalError(401, "revoking links needs the device token")
    try:
        link = state.links.revoke(request.match_info["id"])
    except KeyError:
        raise SignalError(404, "no link with that id") from None
    await _end_sessions_of(state, lambda session: session.link.id == link.id, "link revoked")
    return web.json_response(link.public())


async def healthz(request: web.Request) -> web.Response:
    registry = request.app[STATE].registry
    return web.json_response({"ok": True, "tablets": sorted(registry.tablets), "sessions": len(registry.sessions)})


# -- housekeeping -----------------------------------------------------------------------------

async def _end_sessions_of(state: SignalState, which, why: str) -> None:
    for session in [s for s in state.registry.sessions.values() if which(s)]:
        await state.registry.end_session(session.id, why)


async def _expire_sessions(state: SignalState, period: float = 1.0) -> None:
    """A link's expiry ends the viewing it opened, not just new offers."""
    while True:
        await asyncio.sleep(period)
        await _end_sessions_of(state, lambda s: not state.links.still_valid(s.link), "link expired")


async def _close_tablet_sockets(app: web.Application) -> None:
    # Tell tablets we are going away (they redial), rather than holding shutdown until they time out.
    for conn in list(app[STATE].registry.tablets.values()):
        await conn.ws.close(code=1001, message=b"signaling is shutting down")


async def _background(app: web.Application):
    state = app[STATE]
    task = asyncio.create_task(_expire_sessions(state))
    yield
    task.cancel()


def turn_hooks(config: SignalConfig) -> dict:
    """ICE servers and WHEP Link headers from the configured relay, fresh credentials each time."""
    if not config.turn_urls:
        return {}
    turn = TurnSettings.load(config.turn_urls, config.turn_secret_file, config.turn_ttl)

    def ice_servers_for(name: str, not_after: float) -> list[dict]:
        return turn.ice_servers(turn.mint(name, not_after=not_after))

    def link_headers_for(name: str, not_after: float) -> list[str]:
        return turn.link_headers(turn.mint(name, not_after=not_after))

    return {"ice_servers_for": ice_servers_for, "link_headers_for": link_headers_for}


def create_tablet_app(state: SignalState) -> web.Application:
    """Only the tablet side (its WebSocket), sharing ``state``: what the tailnet listener serves."""
    app = web.Application(middlewares=[errors_middleware])
    app[STATE] = state
    app.router.add_get("/tablet", tablet_socket)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(_close_tablet_sockets)
    return app


def create_app(config: SignalConfig, tablets_here: bool = True, **hooks) -> web.Application:
    """The signaling app for ``config``; ``hooks`` set SignalState's optional callables.

    ``tablets_here=False`` leaves the tablet WebSocket out (it is served on the tailnet by
    ``create_tablet_app`` instead): the public side then only serves viewers.
    """
    hooks = {**turn_hooks(config), **hooks}
    state_dir = config.state_dir or default_state_dir()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if config.web_dir is None:
        config.web_dir = WEB_DIR
    device_tokens, generated = load_or_create(config.device_token, state_dir)
    state = SignalState(
        config=config,
        registry=Registry(state_dir, config.max_viewers),
        links=LinkStore(state_dir / "links.json"),
        device_tokens=device_tokens,
        generated_device_token=generated,
        public_url=config.viewer_base_url(),
        **hooks,
    )
    app = web.Application(middlewares=[page_headers_middleware, errors_middleware],
                          client_max_size=config.max_body + 1024)
    app[STATE] = state
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_close_tablet_sockets)
    app.router.add_post("/whep/{tablet}", whep_offer)
    app.router.add_route("OPTIONS", "/whep/{tablet}", whep_options)
    app.router.add_route("OPTIONS", "/whep/{tablet}/{session}", whep_options)
    app.router.add_delete("/whep/{tablet}/{session}", whep_delete)
    app.router.add_patch("/whep/{tablet}/{session}", whep_patch)
    if tablets_here:
        app.router.add_get("/tablet", tablet_socket)
    app.router.add_get("/view", view_page)
    app.router.add_get("/api/view", view_config)
    app.router.add_post("/api/links", links_create)
    app.router.add_delete("/api/links/{id}", links_revoke)
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/web/", config.web_dir)
    return app
