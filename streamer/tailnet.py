"""The tablet's (and signaling's) own node on the tailnet, in user space, through libtailscale.

The reMarkable kernel has no TUN device, so the process itself joins the tailnet: libtailscale
(Tailscale's tsnet as a C library; inkcast builds its own, see ``tailnet/``) loaded with cffi in
ABI mode. Above the C API sits a small asyncio API:

    node = TailnetNode(hostname="inkcast-remarkable-2", state_dir="/home/root/.local/share/inkcast/tailnet",
                       authkey=key, control_url="")
    async with node:                                   # start() + up(), then close()
        reader, writer = await node.open_connection("signaling:8443")
        async with node.http_session() as http:        # aiohttp over the tailnet
            async with http.ws_connect("http://signaling:8443/register") as ws: ...
        listener = await node.listen("tcp", ":8443")   # accept loop: `async for sock in listener`
        site = await node.serve_aiohttp(runner, ":8443")  # an aiohttp app on the tailnet
        who = await node.whois(tailnet_peer(request))  # who is on the other end

Traps this module guards against (each checked against the library):
- Go reads the environment once. The Go runtime of a c-shared library even copies the
  environment the *process started with*: upstream libtailscale never sees ``os.environ``
  changes. inkcast's build re-reads it while loading, so variables must be set before the first
  node starts (``configure_environment``), never after; ``TS_NO_LOGS_NO_SUPPORT`` is set by default.
- NULL pointers panic Go in the upstream library and take the whole process down: every argument
  is checked here (None, empty, NUL bytes, bad ports) before any C call.
- ``tailscale_close`` does not close listeners: ``TailnetNode.close`` closes them first.
- Without a hostname and state directory tsnet picks them from the executable name and the user's
  config dir: both are required here.
- ``tailscale_close`` on a never-started node panics upstream; closing is tracked here.
- An ephemeral node lingers on the tailnet after ``tailscale_close`` (tsnet does not log out):
  ``close`` logs it out first, through the LocalAPI.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import http.client
import json
import logging
import os
import platform
import re
import socket
import ssl as ssl_module
import sys
import threading
import urllib.parse
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, TextIO

import aiohttp
from aiohttp import web

from inkcast.settings import describe, setting

log = logging.getLogger("inkcast.tailnet")

ROOT = Path(__file__).resolve().parent.parent

#: Environment the library needs from the moment it is loaded (Go reads it only then).
DEFAULT_ENV = {"TS_NO_LOGS_NO_SUPPORT": "true"}

CDEF = """
typedef int tailscale;
typedef int tailscale_conn;
typedef int tailscale_listener;

tailscale tailscale_new(void);
int tailscale_start(tailscale sd);
int tailscale_up(tailscale sd);
int tailscale_close(tailscale sd);

int tailscale_set_dir(tailscale sd, const char* dir);
int tailscale_set_hostname(tailscale sd, const char* hostname);
int tailscale_set_authkey(tailscale sd, const char* authkey);
int tailscale_set_control_url(tailscale sd, const char* control_url);
int tailscale_set_ephemeral(tailscale sd, int ephemeral);
int tailscale_set_logfd(tailscale sd, int fd);

int tailscale_getips(tailscale sd, char* buf, size_t buflen);
int tailscale_dial(tailscale sd, const char* network, const char* addr, tailscale_conn* conn_out);
int tailscale_listen(tailscale sd, const char* network, const char* addr, tailscale_listener* listener_out);
int tailscale_getremoteaddr(tailscale_listener l, tailscale_conn conn, char* buf, size_t buflen);
int tailscale_accept(tailscale_listener listener, tailscale_conn* conn_out);
int tailscale_loopback(tailscale sd, char* addr_out, size_t addrlen, char* proxy_cred_out, char* local_api_cred_out);
int tailscale_errmsg(tailscale sd, char* buf, size_t buflen);

int inkcast_tailnet_version(char* buf, size_t buflen);
int inkcast_tailnet_getenv(const char* name, char* buf, size_t buflen);
"""

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "armv7", "armv6l": "armv7", "armv8l": "armv7"}


class TailnetError(OSError):
    """A libtailscale call failed; ``errmsg`` is the library's own message (tailscale_errmsg)."""

    def __init__(self, message: str, *, call: str = "", code: int = -1, errmsg: str = "") -> None:
        super().__init__(message)
        self.strerror = message  # what aiohttp's ClientConnectorError shows
        self.call = call
        self.code = code
        self.errmsg = errmsg


class TailnetArgumentError(TailnetError, ValueError):
    """An argument refused in Python, before it could reach C (where NULL panics Go)."""


class TailnetClosed(TailnetError):
    """The node or listener is closed."""


# --------------------------------------------------------------------------------------------
# Loading the library


_ffi = None
_lib = None
_lib_path: Path | None = None
_env_at_load: dict[str, str | None] = {}
_load_lock = threading.Lock()


def library_candidates() -> list[Path]:
    """Where the library is looked for, in order (the first that exists wins)."""
    arch = _GOARCH.get(platform.machine().lower(), platform.machine().lower())
    out = []
    if os.environ.get("INKCAST_LIBTAILSCALE"):
        out.append(Path(os.environ["INKCAST_LIBTAILSCALE"]))
    build = Path(os.environ.get("INKCAST_TAILNET_BUILD", ROOT / "build" / "tailnet"))
    out.append(build / f"linux-{arch}" / "libtailscale.so")
    out.append(Path(sys.prefix) / "lib" / "inkcast" / "libtailscale.so")
    out.append(Path("/opt/inkcast/lib/libtailscale.so"))
    return out


def find_library(path: str | os.PathLike | None = None) -> Path:
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise TailnetError(f"libtailscale not found at {found}")
        return found
    for candidate in library_candidates():
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in library_candidates())
    raise TailnetError(f"libtailscale.so not found (tried {tried}); build it with tailnet/build.sh")


def configure_environment(values: Mapping[str, str] | None = None, **more: str) -> None:
    """Set environment variables for libtailscale. Only before it is loaded: Go copies the
    environment at load time and never looks again, so later changes would be silently ignored."""
    wanted = {**(values or {}), **more}
    for name, value in wanted.items():
        if not isinstance(name, str) or not name or "=" in name or not isinstance(value, str):
            raise TailnetArgumentError(f"bad environment entry {name!r}={value!r}")
    if _lib is not None:
        changed = {k: v for k, v in wanted.items() if _env_at_load.get(k) != v}
        if changed:
            raise TailnetError(
                f"libtailscale is already loaded (from {_lib_path}); it would not see "
                f"{', '.join(sorted(changed))}: set these before the first node starts")
        return
    os.environ.update(wanted)


def _exec_environ() -> dict[str, str]:
    """The environment this process was started with (what upstream libtailscale's Go sees)."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def load_library(path: str | os.PathLike | None = None):
    """Load libtailscale once per process (the same file for every node); returns (ffi, lib).

    The Go runtime of a c-shared library copies the environment the process was *started*
    with; inkcast's build re-reads it while loading (so ``os.environ`` set before this call is
    seen), upstream libtailscale does not (then only the exec-time environment counts, and this
    warns about TS_* variables it will not see). Changes after loading are never seen."""
    global _ffi, _lib, _lib_path, _env_at_load
    with _load_lock:
        if _lib is not None:
            if path is not None and Path(path).resolve() != _lib_path:
                raise TailnetError(f"libtailscale already loaded from {_lib_path}, not {path}")
            return _ffi, _lib
        from cffi import FFI

        found = find_library(path).resolve()
        for name, value in DEFAULT_ENV.items():
            os.environ.setdefault(name, value)
        ffi = FFI()
        ffi.cdef(CDEF)
        try:
            lib = ffi.dlopen(str(found))
        except OSError as exc:
            raise TailnetError(f"cannot load {found}: {exc}") from exc
        _ffi, _lib, _lib_path = ffi, lib, found
        # Any exported call waits for the library's Go initialisation (which reads the
        # environment) to finish, so nothing here races with it.
        version = library_version()
        _env_at_load = {name: value for name, value in os.environ.items() if name.startswith("TS_")}
        if _optional("inkcast_tailnet_getenv") is None:
            started_with = _exec_environ()
            unseen = sorted(k for k, v in _env_at_load.items() if started_with.get(k) != v)
            if unseen:
                log.warning("tailnet: %s only sees the environment the process started with; "
                            "it ignores %s (export them before starting Python)", found, ", ".join(unseen))
                _env_at_load = {k: v for k, v in started_with.items() if k.startswith("TS_")}
        log.debug("loaded %s (%s)", found, version)
        return ffi, lib


def _optional(name: str):
    try:
        return getattr(_lib, name)
    except AttributeError:  # upstream libtailscale lacks inkcast's additions
        return None


def library_version() -> str:
    fn = _optional("inkcast_tailnet_version")
    if fn is None:
        return "libtailscale (upstream)"
    buf = _ffi.new("char[]", 256)
    fn(buf, 256)
    return _ffi.string(buf).decode()


def library_getenv(name: str) -> str | None:
    """What the loaded library's Go runtime sees for an environment variable."""
    fn = _optional("inkcast_tailnet_getenv")
    if fn is None:
        raise TailnetError("this libtailscale cannot report its environment")
    buf = _ffi.new("char[]", 4096)
    rc = fn(_cstr(name, "name"), buf, 4096)
    return None if rc == errno.ENOENT else _ffi.string(buf).decode()


# --------------------------------------------------------------------------------------------
# Argument checks (None or NUL must never reach C)


def _cstr(value: Any, what: str, *, allow_empty: bool = False) -> bytes:
    if value is None:
        raise TailnetArgumentError(f"{what} is None")
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TailnetArgumentError(f"{what} must be a string, not {type(value).__name__}")
    if not value and not allow_empty:
        raise TailnetArgumentError(f"{what} is empty")
    if "\x00" in value:
        raise TailnetArgumentError(f"{what} contains a NUL character")
    return value.encode()


_DIAL_NETWORKS = ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6")
_LISTEN_NETWORKS = ("tcp", "tcp4", "tcp6")


def _split_addr(addr: Any, *, listening: bool) -> tuple[str, int]:
    text = _cstr(addr, "address").decode()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise TailnetArgumentError(f"address {text!r} has no port (want host:port)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not listening and not host:
        raise TailnetArgumentError(f"address {text!r} has no host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise TailnetArgumentError(f"address {text!r}: port must be 1-65535")
    return host, int(port_text)


def _check_network(network: Any, allowed: tuple[str, ...]) -> bytes:
    raw = _cstr(network, "network")
    if raw.decode() not in allowed:
        raise TailnetArgumentError(f"network {network!r} is not one of {', '.join(allowed)}")
    return raw


# --------------------------------------------------------------------------------------------
# Blocking calls, off the event loop


async def _blocking(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking library call in a daemon thread (one that may never return, such as
    tailscale_up waiting for a login, must not keep the interpreter from exiting)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # delivered to the awaiting task
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=run, name=f"tailnet-{getattr(fn, '__name__', 'call')}", daemon=True).start()
    return await future


def _settle(future: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


# --------------------------------------------------------------------------------------------
# Sockets


class TailnetSocket(socket.socket):
    """A connection over the tailnet: one end of a socketpair whose other end libtailscale copies
    to and from the tailnet. Non-blocking; usable with asyncio and aiohttp."""

    tailnet_peer: str | None  # the remote node's tailnet IP, for accepted connections
    tailnet_target: str | None  # the dialled address, for dialled connections

    @classmethod
    def adopt(cls, fd: int, *, peer: str | None = None, target: str | None = None) -> "TailnetSocket":
        sock = cls(fileno=fd)
        sock.setblocking(False)
        sock.tailnet_peer = peer
        sock.tailnet_target = target
        return sock


_peers: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def tailnet_peer(request: web.BaseRequest) -> str | None:
    """The tailnet IP of the node on the other end of an aiohttp request served by
    ``TailnetSite``; None for requests that did not come over the tailnet."""
    transport = request.transport
    return None if transport is None else _peers.get(transport)


class TailnetListener:
    """A listening socket on the tailnet. ``await accept()`` or ``async for sock in listener``.

    libtailscale's listener is one end of a socketpair, readable when a connection waits, so
    accepting waits on the event loop (no thread) and ``tailscale_accept`` then returns at once.
    """

    def __init__(self, node: "TailnetNode", fd: int, addr: str) -> None:
        self.node = node
        self.addr = addr
        self._fd = fd
        self._closed = False
        self._lock = asyncio.Lock()
        self._waiter: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self._fd

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        loop.add_reader(self._fd, lambda: waiter.done() or waiter.set_result(None))
        try:
            await waiter
        finally:
            self._waiter = None
            if not self._closed:
                loop.remove_reader(self._fd)

    async def accept(self) -> TailnetSocket:
        ffi, lib = self.node._ffi, self.node._lib
        async with self._lock:
            while True:
                if self._closed:
                    raise TailnetClosed(f"listener {self.addr} is closed", call="tailscale_accept")
                await self._readable()
                if self._closed:
                    continue
                out = ffi.new("int*")
                rc = lib.tailscale_accept(self._fd, out)
                if rc == 0:
                    break
                if rc == errno.EBADF:  # the library tore it down (its node closed)
                    self.close()
                    continue
                raise self.node._error("tailscale_accept", rc)
        conn = out[0]
        buf = ffi.new("char[]", 128)
        peer = ffi.string(buf).decode() if lib.tailscale_getremoteaddr(self._fd, conn, buf, 128) == 0 else None
        return TailnetSocket.adopt(conn, peer=peer)

    def __aiter__(self) -> AsyncIterator[TailnetSocket]:
        return self

    async def __anext__(self) -> TailnetSocket:
        try:
            return await self.accept()
        except TailnetClosed:
            raise StopAsyncIteration from None

    async def serve(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
        """Accept until closed, running ``handler(reader, writer)`` for each connection (as
        ``asyncio.start_server`` does); ``writer.get_extra_info('socket')`` has ``tailnet_peer``."""
        async for sock in self:
            task = asyncio.create_task(self._handle(handler, sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _handle(handler, sock: TailnetSocket) -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            await handler(reader, writer)
        except Exception:
            log.exception("tailnet connection handler failed")
        finally:
            writer.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.get_running_loop().remove_reader(self._fd)
        except (RuntimeError, ValueError):
            pass
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        try:
            os.close(self._fd)  # the library sees EOF and closes its tsnet listener
        except OSError:
            pass
        self.node._listeners.discard(self)

    async def __aenter__(self) -> "TailnetListener":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class _TailnetServer:
    """What aiohttp's site expects of ``loop.create_server``'s result, fed by a tailnet listener:
    each accepted connection goes to aiohttp through ``loop.connect_accepted_socket``."""

    def __init__(self, listener: TailnetListener, factory: Callable[[], asyncio.Protocol]) -> None:
        self.listener = listener
        self._factory = factory
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        async for sock in self.listener:
            try:
                transport, _ = await loop.connect_accepted_socket(self._factory, sock)
            except Exception:
                log.exception("tailnet: handing a connection to aiohttp failed")
                sock.close()
                continue
            if sock.tailnet_peer:
                _peers[transport] = sock.tailnet_peer

    def close(self) -> None:
        self.listener.close()

    async def wait_closed(self) -> None:
        await asyncio.gather(self._task, return_exceptions=True)


class TailnetSite(web.BaseSite):
    """An aiohttp site on a tailnet listener: ``await TailnetSite(runner, listener).start()``."""

    def __init__(self, runner: web.BaseRunner, listener: TailnetListener) -> None:
        super().__init__(runner)
        self._listener = listener

    @property
    def name(self) -> str:
        return f"http://{self._listener.node.hostname}{self._listener.addr} (tailnet)"

    async def start(self) -> None:
        await super().start()
        assert self._runner.server is not None
        self._server = _TailnetServer(self._listener, self._runner.server)  # type: ignore[assignment]


class TailnetConnector(aiohttp.BaseConnector):
    """An aiohttp connector whose connections are dialled over the tailnet:
    ``aiohttp.ClientSession(connector=TailnetConnector(node))`` (or ``node.http_session()``)."""

    def __init__(self, node: "TailnetNode", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._node = node

    async def _create_connection(self, req, traces, timeout):
        host = req.url.raw_host or ""
        port = req.url.port or (443 if req.is_ssl() else 80)
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            sock = await self._node.dial("tcp", target, timeout=timeout.sock_connect or timeout.connect)
        except TailnetError as exc:
            raise aiohttp.ClientConnectorError(req.connection_key, exc) from exc
        tls = None
        if req.is_ssl():
            tls = req.ssl if isinstance(req.ssl, ssl_module.SSLContext) else ssl_module.create_default_context()
            if req.ssl is False:
                tls.check_hostname = False
                tls.verify_mode = ssl_module.CERT_NONE
        try:
            _, proto = await self._loop.create_connection(
                self._factory, sock=sock, ssl=tls, server_hostname=host if tls else None)
        except OSError as exc:
            sock.close()
            raise aiohttp.ClientConnectorError(req.connection_key, exc) from exc
        return proto


# --------------------------------------------------------------------------------------------
# The node


@dataclass(frozen=True)
class WhoIs:
    """Who a tailnet address belongs to, as the tailnet itself says (LocalAPI WhoIs)."""

    node_name: str  # MagicDNS name, without the trailing dot
    hostname: str  # the name the node gave itself
    user_login: str
    user_name: str
    tags: tuple[str, ...]
    addresses: tuple[str, ...]
    node_key: str
    stable_id: str
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "WhoIs":
        node = data.get("Node") or {}
        user = data.get("UserProfile") or {}
        hostinfo = node.get("Hostinfo") or {}
        return cls(
            node_name=(node.get("Name") or "").rstrip("."),
            hostname=hostinfo.get("Hostname") or "",
            user_login=user.get("LoginName") or "",
            user_name=user.get("DisplayName") or "",
            tags=tuple(node.get("Tags") or ()),
            addresses=tuple(a.split("/")[0] for a in node.get("Addresses") or ()),
            node_key=node.get("Key") or "",
            stable_id=node.get("StableID") or "",
            raw=data,
        )


@dataclass(frozen=True)
class Peer:
    hostname: str
    dns_name: str
    ips: tuple[str, ...]
    online: bool
    node_key: str
    tags: tuple[str, ...]


_active_dirs: set[Path] = set()


@dataclass(eq=False)
class TailnetNode:
    """One node on the tailnet. ``await start()``, ``await up()`` ... ``await close()``; or
    ``async with TailnetNode(...) as node:`` (start and up, then close)."""

    hostname: str
    state_dir: str | os.PathLike
    authkey: str = field(default="", repr=False)
    control_url: str = ""  # empty: Tailscale's own control plane
    ephemeral: bool = False
    log_file: str | os.PathLike | int | None = None  # None: the library's logs are discarded
    library: str | os.PathLike | None = None

    _sd: int | None = field(default=None, init=False, repr=False)
    _state: str = field(default="new", init=False)
    _listeners: set = field(default_factory=set, init=False, repr=False)
    _loopback: tuple[str, str] | None = field(default=None, init=False, repr=False)
    _log_fd: int | None = field(default=None, init=False, repr=False)
    _dir: Path | None = field(default=None, init=False, repr=False)

    @property
    def state(self) -> str:
        """new, started, up, closed."""
        return self._state

    # -- lifecycle --------------------------------------------------------------------------

    def _validate(self) -> None:
        hostname = _cstr(self.hostname, "hostname").decode()
        if any(c.isspace() for c in hostname) or len(hostname) > 63:
            raise TailnetArgumentError(f"hostname {hostname!r}: no spaces, at most 63 characters")
        _cstr(self.state_dir, "state_dir")
        _cstr(self.authkey, "authkey", allow_empty=True)
        _cstr(self.control_url, "control_url", allow_empty=True)
        if self.control_url and not re.match(r"^https?://[^/\s]+", self.control_url):
            raise TailnetArgumentError(f"control_url {self.control_url!r} is not an http(s) URL")
        if isinstance(self.log_file, bool) or (isinstance(self.log_file, int) and self.log_file < 0):
            raise TailnetArgumentError(f"log_file {self.log_file!r}: a path, an fd >= 0, or None")

    async def start(self) -> None:
        """Create the node, apply its settings and start it (not waiting for it to be up)."""
        if self._state != "new":
            raise TailnetError(f"node {self.hostname!r} is {self._state}; start() runs once")
        self._validate()
        state_dir = Path(self.state_dir).expanduser().resolve()
        if state_dir in _active_dirs:
            raise TailnetArgumentError(f"state_dir {state_dir} is in use by another node of this process")
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._ffi, self._lib = load_library(self.library)
        lib = self._lib
        self._sd = lib.tailscale_new()
        self._dir = state_dir
        _active_dirs.add(state_dir)
        self._state = "started"  # from here on, close() must run
        try:
            self._check("tailscale_set_dir", lib.tailscale_set_dir(self._sd, _cstr(str(state_dir), "state_dir")))
            self._check("tailscale_set_hostname", lib.tailscale_set_hostname(self._sd, _cstr(self.hostname, "hostname")))
            if self.authkey:
                self._check("tailscale_set_authkey", lib.tailscale_set_authkey(self._sd, _cstr(self.authkey, "authkey")))
            if self.control_url:
                self._check("tailscale_set_control_url",
                            lib.tailscale_set_control_url(self._sd, _cstr(self.control_url, "control_url")))
            self._check("tailscale_set_ephemeral", lib.tailscale_set_ephemeral(self._sd, 1 if self.ephemeral else 0))
            self._check("tailscale_set_logfd", lib.tailscale_set_logfd(self._sd, self._open_log()))
            await _blocking(self._call, "tailscale_start", lib.tailscale_start, self._sd)
        except BaseException:
            await self.close()
            raise

    def _open_log(self) -> int:
        if self.log_file is None:
            return -1
        if isinstance(self.log_file, int):
            self._log_fd = os.dup(self.log_file)
        else:
            self._log_fd = os.open(os.fspath(self.log_file), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        return self._log_fd  # kept open until close(): upstream's set_logfd does not dup it

    async def up(self, timeout: float | None = None) -> list[str]:
        """Wait until the node is connected to the tailnet; returns its tailnet IPs. Without an
        auth key (and no saved state) this waits for someone to open ``await login_url()``."""
        if self._state == "new":
            await self.start()
        if self._state == "up":
            return self.ips()
        if self._state != "started":
            raise TailnetClosed(f"node {self.hostname!r} is {self._state}", call="tailscale_up")
        call = _blocking(self._call, "tailscale_up", self._lib.tailscale_up, self._sd)
        try:
            await (asyncio.wait_for(call, timeout) if timeout else call)
        except asyncio.TimeoutError:
            detail = ""
            try:
                status = await self.status()
                detail = f" (state {status.get('BackendState')}{', login at ' + status['AuthURL'] if status.get('AuthURL') else ''})"
            except TailnetError:
                pass
            raise TailnetError(f"node {self.hostname!r} not up after {timeout} s{detail}", call="tailscale_up") from None
        if self._state != "started":
            raise TailnetClosed(f"node {self.hostname!r} closed while coming up", call="tailscale_up")
        self._state = "up"
        return self.ips()

    async def close(self) -> None:
        """Close listeners, log an ephemeral node out (so it leaves the tailnet now), close the node."""
        if self._state in ("new", "closed"):
            self._state = "closed"
            return
        was_up = self._state == "up"
        self._state = "closing"
        for listener in list(self._listeners):
            listener.close()
        if self.ephemeral and was_up:
            try:
                await asyncio.wait_for(self.localapi("POST", "/localapi/v0/logout"), 5)
            except (TailnetError, asyncio.TimeoutError) as exc:
                log.warning("tailnet: logging ephemeral node %s out failed: %s", self.hostname, exc)
        sd, self._sd = self._sd, None
        if sd is not None:
            rc = await _blocking(self._lib.tailscale_close, sd)
            if rc not in (0, errno.EBADF):
                log.warning("tailnet: tailscale_close(%s) returned %s", self.hostname, rc)
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
        _active_dirs.discard(self._dir)
        self._state = "closed"

    async def __aenter__(self) -> "TailnetNode":
        await self.up()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- errors -----------------------------------------------------------------------------

    def _errmsg(self, sd: int | None = None) -> str:
        sd = self._sd if sd is None else sd
        if sd is None:
            return ""
        size = 4096
        while True:
            buf = self._ffi.new("char[]", size)
            rc = self._lib.tailscale_errmsg(sd, buf, size)
            if rc != errno.ERANGE or size >= 1 << 20:
                return self._ffi.string(buf).decode(errors="replace")
            size *= 4

    def _error(self, call: str, rc: int, sd: int | None = None) -> TailnetError:
        if rc == errno.EBADF:
            return TailnetClosed(f"{call}: not a valid node (closed?)", call=call, code=rc)
        msg = self._errmsg(sd) or f"{call} failed ({rc})"
        return TailnetError(msg, call=call, code=rc, errmsg=msg)

    def _check(self, call: str, rc: int) -> None:
        if rc != 0:
            raise self._error(call, rc)

    def _call(self, call: str, fn: Callable[..., int], *args: Any) -> None:
        sd = self._sd
        rc = fn(*args)
        if rc != 0:
            raise self._error(call, rc, sd)

    def _require(self, state: str, call: str) -> None:
        if self._state == state:
            return
        if self._state in ("closing", "closed"):
            raise TailnetClosed(f"{call}: node {self.hostname!r} is closed", call=call)
        raise TailnetError(f"{call}: node {self.hostname!r} is not up yet (await node.up() first)", call=call)

    # -- addresses --------------------------------------------------------------------------

    def ips(self) -> list[str]:
        """This node's tailnet IPs (IPv4 first)."""
        if self._sd is None:
            raise TailnetClosed("ips: node is not started", call="tailscale_getips")
        buf = self._ffi.new("char[]", 256)
        self._check("tailscale_getips", self._lib.tailscale_getips(self._sd, buf, 256))
        return [ip for ip in self._ffi.string(buf).decode().split(",") if ip]

    # -- connections ------------------------------------------------------------------------

    async def dial(self, network: str, addr: str, *, timeout: float | None = None) -> TailnetSocket:
        """Connect to ``addr`` ("host:port": a tailnet node's name or IP) over the tailnet; returns
        a connected non-blocking socket. The library dials only nodes of this tailnet."""
        raw_network = _check_network(network, _DIAL_NETWORKS)
        _split_addr(addr, listening=False)
        self._require("up", "tailscale_dial")
        out = self._ffi.new("int*")
        call = asyncio.ensure_future(_blocking(self._call, "tailscale_dial", self._lib.tailscale_dial,
                                               self._sd, raw_network, _cstr(addr, "address"), out))
        try:
            await (asyncio.wait_for(asyncio.shield(call), timeout) if timeout else call)
        except asyncio.TimeoutError:
            # The C call cannot be interrupted; close its connection if it still succeeds.
            call.add_done_callback(lambda f: f.cancelled() or f.exception() is not None or os.close(out[0]))
            raise TailnetError(f"tailscale_dial {addr}: timed out after {timeout} s", call="tailscale_dial") from None
        return TailnetSocket.adopt(out[0], target=addr)

    async def open_connection(self, addr: str, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """``asyncio.open_connection`` over the tailnet."""
        sock = await self.dial("tcp", addr, timeout=kwargs.pop("timeout", None))
        return await asyncio.open_connection(sock=sock, **kwargs)

    def http_session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An aiohttp session whose requests and WebSockets go over the tailnet."""
        return aiohttp.ClientSession(connector=TailnetConnector(self), **kwargs)

    async def listen(self, network: str, addr: str) -> TailnetListener:
        """Listen on this node's tailnet address (``":port"``, ``"tcp"`` only)."""
        raw_network = _check_network(network, _LISTEN_NETWORKS)
        _split_addr(addr, listening=True)
        if self._state not in ("started", "up"):
            self._require("up", "tailscale_listen")
        out = self._ffi.new("int*")
        await _blocking(self._call, "tailscale_listen", self._lib.tailscale_listen, self._sd,
                        raw_network, _cstr(addr, "address"), out)
        listener = TailnetListener(self, out[0], addr)
        self._listeners.add(listener)
        return listener

    async def serve_aiohttp(self, app: web.Application | web.BaseRunner, addr: str) -> TailnetSite:
        """Serve an aiohttp app (or an already set-up runner) on this node's tailnet ``addr``."""
        runner = app
        if isinstance(app, web.Application):
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
        listener = await self.listen("tcp", addr)
        site = TailnetSite(runner, listener)
        await site.start()
        return site

    # -- LocalAPI ---------------------------------------------------------------------------

    def loopback(self) -> tuple[str, str]:
        """(address, LocalAPI credential) of the node's loopback LocalAPI server on 127.0.0.1."""
        if self._loopback is None:
            if self._sd is None:
                raise TailnetClosed("loopback: node is not started", call="tailscale_loopback")
            addr = self._ffi.new("char[]", 128)
            proxy_cred = self._ffi.new("char[]", 33)
            local_cred = self._ffi.new("char[]", 33)
            self._check("tailscale_loopback", self._lib.tailscale_loopback(self._sd, addr, 128, proxy_cred, local_cred))
            self._loopback = (self._ffi.string(addr).decode(), self._ffi.string(local_cred).decode())
        return self._loopback

    async def localapi(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                       body: bytes | None = None) -> bytes:
        """One LocalAPI request; raises TailnetError on a non-2xx answer."""
        if self._state not in ("started", "up", "closing"):
            raise TailnetClosed(f"LocalAPI {path}: node is {self._state}")
        addr, cred = self.loopback()
        host, _, port = addr.rpartition(":")
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Sec-Tailscale": "localapi", "Host": "local-tailscaled.sock",
                   "Authorization": "Basic " + base64.b64encode(f":{cred}".encode()).decode()}

        def request() -> tuple[int, bytes]:
            conn = http.client.HTTPConnection(host, int(port), timeout=15)
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()

        try:
            status, data = await asyncio.to_thread(request)
        except OSError as exc:
            raise TailnetError(f"LocalAPI {path}: {exc}") from exc
        if not 200 <= status < 300:
            text = data.decode(errors="replace").strip()
            raise TailnetError(f"LocalAPI {path}: HTTP {status}: {text}", errmsg=text, code=status)
        return data

    async def status(self) -> dict:
        """The node's LocalAPI status (BackendState, AuthURL, Self, Peer, ...)."""
        return json.loads(await self.localapi("GET", "/localapi/v0/status"))

    async def login_url(self) -> str | None:
        """The URL to open to add this node to the tailnet, while it waits for a login."""
        status = await self.status()
        return status.get("AuthURL") or None

    async def peers(self) -> list[Peer]:
        status = await self.status()
        out = []
        for p in (status.get("Peer") or {}).values():
            out.append(Peer(hostname=p.get("HostName") or "", dns_name=(p.get("DNSName") or "").rstrip("."),
                            ips=tuple(p.get("TailscaleIPs") or ()), online=bool(p.get("Online")),
                            node_key=p.get("PublicKey") or "", tags=tuple(p.get("Tags") or ())))
        return out

    async def whois(self, addr: str) -> WhoIs:
        """Who is at a tailnet address ("ip" or "ip:port"), e.g. ``tailnet_peer(request)``."""
        text = _cstr(addr, "address").decode()
        return WhoIs.from_json(json.loads(await self.localapi("GET", "/localapi/v0/whois", query={"addr": text})))


# --------------------------------------------------------------------------------------------
# Settings, and joining with a login URL


DEFAULT_STATE_DIR = Path("~/.local/share/inkcast/tailnet")


def default_hostname(model: str | None) -> str:
    """A tailnet name from the tablet model: "reMarkable 2" -> "inkcast-remarkable-2"."""
    slug = re.sub(r"[^a-z0-9]+", "-", (model or "").lower()).strip("-")
    return f"inkcast-{slug}"[:63].rstrip("-") if slug else "inkcast"


@dataclass(repr=False)
class TailnetSettings:
    tailnet: bool = setting(False, "join the tailnet in user space (libtailscale); tablets reach signaling through it")
    tailnet_hostname: str = setting("", "this node's tailnet name (default: a tablet's from its model, e.g. "
                                    "inkcast-remarkable-2; signaling's inkcast-signaling)")
    tailnet_state_dir: Path = setting(DEFAULT_STATE_DIR, "where the node keeps its keys (reused across restarts)")
    tailnet_authkey: str = setting("", "tailnet auth key (without one, a login URL is shown)", secret=True)
    tailnet_authkey_file: Path | None = setting(None, "file holding the tailnet auth key")
    tailnet_ephemeral: bool = setting(False, "join as an ephemeral node, gone from the tailnet once closed")
    tailnet_control_url: str = setting("", "control server URL, for a self-hosted one (default: Tailscale's)")
    tailnet_dev: bool = setting(False, "show libtailscale's own logs")
    tailnet_library: Path | None = setting(None, "path to libtailscale.so (default: the build folder, then /opt/inkcast/lib)")

    def __repr__(self) -> str:  # secrets shown as set/unset only
        return describe(self)

    def resolve_authkey(self) -> str:
        """The auth key: given directly, else read from ``tailnet_authkey_file`` (never logged)."""
        if self.tailnet_authkey:
            return self.tailnet_authkey.strip()
        if self.tailnet_authkey_file is not None:
            path = Path(self.tailnet_authkey_file).expanduser()
            try:
                key = path.read_text().strip()
            except OSError as exc:
                raise TailnetError(f"cannot read the tailnet auth key file {path}: {exc.strerror}") from None
            if not key:
                raise TailnetError(f"the tailnet auth key file {path} is empty")
            if path.stat().st_mode & 0o077:
                log.warning("tailnet: auth key file %s is readable by others (chmod 600 it)", path)
            return key
        return ""

    def node(self, model: str | None = None) -> TailnetNode:
        return TailnetNode(
            hostname=self.tailnet_hostname or default_hostname(model),
            state_dir=Path(self.tailnet_state_dir).expanduser(),
            authkey=self.resolve_authkey(),
            control_url=self.tailnet_control_url,
            ephemeral=self.tailnet_ephemeral,
            log_file=2 if self.tailnet_dev else None,
            library=self.tailnet_library,
        )


def show_login(url: str, out: TextIO | None = None) -> None:
    """Show the login URL prominently, and as a QR code to scan with a phone."""
    out = out or sys.stderr
    bar = "=" * max(60, len(url) + 4)
    out.write(f"\n{bar}\n  This tablet is not on your tailnet yet. To add it, open:\n\n  {url}\n\n"
              f"  (or scan the code below)\n{bar}\n")
    try:
        import segno

        segno.make(url).terminal(out=out, compact=True)
    except Exception as exc:  # the URL above is enough
        log.debug("no QR code: %s", exc)
    out.flush()


async def join(settings: TailnetSettings, *, model: str | None = None, out: TextIO | None = None,
               on_login_url: Callable[[str], None] | None = None, poll: float = 0.5,
               timeout: float | None = None) -> TailnetNode:
    """Start the node and wait until it is up. Without an auth key and saved state, the login URL
    from the LocalAPI status is shown (``show_login``, or ``on_login_url``) until someone logs in."""
    node = settings.node(model)
    log.info("tailnet: joining as %s (state %s, control %s)", node.hostname, node.state_dir,
             node.control_url or "Tailscale")
    await node.start()
    announce = on_login_url or (lambda url: show_login(url, out))
    up = asyncio.create_task(node.up())
    shown = None
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    try:
        while not up.done():
            try:
                url = await node.login_url()
            except TailnetError:
                url = None
            if url and url != shown:
                shown = url
                announce(url)
            if deadline is not None and loop.time() > deadline:
                raise TailnetError(f"not on the tailnet after {timeout} s" + (f"; log in at {shown}" if shown else ""))
            await asyncio.wait({up}, timeout=poll)
        await up
    except BaseException:
        up.cancel()
        await node.close()
        raise
    log.info("tailnet: up as %s (%s)", node.hostname, ", ".join(node.ips()))
    return node
