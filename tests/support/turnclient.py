"""A minimal TURN client for tests: Allocate, CreatePermission, Send/Data, over UDP, TCP or TLS.

Blocking sockets and one request at a time: tests want to read what a real coturn answers, not
to be a production client. Only loopback servers are ever contacted; CreatePermission for a
peer such as 10.0.0.1 is a *request to coturn* and sends nothing to that peer.

    with TurnClient(("127.0.0.1", port), username, password) as client:
        assert client.allocate().ok
        assert client.create_permission("10.0.0.1").code == 403

Messages are parsed by ``aioice.stun``; they are encoded here because aioice's encoder knows
only the attributes it uses itself, and an IPv6 relay needs REQUESTED-ADDRESS-FAMILY.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import ssl
import struct
from dataclasses import dataclass, field

from aioice import stun

# STUN attribute types (RFC 8489, RFC 8656, RFC 6156) as the encoder below writes them.
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA = 0x0013
REALM = 0x0014
NONCE = 0x0015
REQUESTED_ADDRESS_FAMILY = 0x0017
REQUESTED_TRANSPORT = 0x0019
FINGERPRINT = 0x8028

UDP_PROTOCOL = 17
FAMILY_CODES = {"ipv4": 0x01, "ipv6": 0x02}


@dataclass
class TurnResult:
    """What the server answered: success, or an error code with its reason."""

    message: stun.Message

    @property
    def ok(self) -> bool:
        return self.message.message_class == stun.Class.RESPONSE

    @property
    def code(self) -> int | None:
        """The STUN error code (401, 403, 438, ...), None on success."""
        return None if self.ok else self.message.error_code

    @property
    def reason(self) -> str:
        error = self.message.attributes.get("ERROR-CODE")
        return error[1] if error else ""

    @property
    def relayed_address(self) -> tuple[str, int] | None:
        return self.message.attributes.get("XOR-RELAYED-ADDRESS")

    @property
    def mapped_address(self) -> tuple[str, int] | None:
        return self.message.attributes.get("XOR-MAPPED-ADDRESS")

    def __repr__(self) -> str:
        return f"TurnResult({'ok' if self.ok else f'{self.code} {self.reason}'})"


def encode(method: stun.Method, message_class: stun.Class, transaction_id: bytes,
           attributes: list[tuple[int, bytes]], key: bytes | None = None) -> bytes:
    """A STUN message with the given raw attributes, signed with ``key`` if given, fingerprinted."""
    body = b"".join(struct.pack("!HH", kind, len(value)) + value + bytes(stun.padding_length(len(value)))
                    for kind, value in attributes)
    data = struct.pack("!HHI12s", method | message_class, len(body), stun.COOKIE, transaction_id) + body
    if key is not None:
        # message_integrity() and message_fingerprint() each count themselves in the length.
        data += struct.pack("!HH", MESSAGE_INTEGRITY, 20) + stun.message_integrity(data, key)
    data += struct.pack("!HHI", FINGERPRINT, 4, stun.message_fingerprint(data))
    return stun.set_body_length(data, len(data) - stun.HEADER_LENGTH)


def xor_address(ip: str, port: int, transaction_id: bytes) -> bytes:
    return stun.pack_xor_address((str(ipaddress.ip_address(ip)), port), transaction_id)


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """RFC 8489 section 9.2.2: MD5(username ":" realm ":" password), without SASLprep (ASCII here)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


@dataclass
class TurnClient:
    """One TURN session (one allocation) with a server on loopback."""

    server: tuple[str, int]
    username: str
    password: str = field(repr=False)
    transport: str = "udp"  # "udp", "tcp" or "tls"
    timeout: float = 2.0
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.transport not in ("udp", "tcp", "tls"):
            raise ValueError(f"unknown transport {self.transport!r}")
        family = socket.AF_INET6 if ":" in self.server[0] else socket.AF_INET
        kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(family, kind)
        self.sock.settimeout(self.timeout)
        try:
            if self.transport != "udp":
                self.sock.connect(self.server)
            if self.transport == "tls":
                context = self.tls_context or ssl.create_default_context()
                self.sock = context.wrap_socket(self.sock, server_hostname=self.server[0])
        except BaseException:
            self.sock.close()
            raise
        self.realm: str | None = None
        self.nonce: bytes | None = None
        self._pending: list[stun.Message] = []  # indications that arrived while awaiting a response

    def __enter__(self) -> TurnClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # -- requests -------------------------------------------------------------------------

    def binding(self) -> TurnResult:
        """An unauthenticated STUN Binding request (coturn answers these without credentials)."""
        return self._transact(stun.Method.BINDING, [], authenticate=False)

    def allocate(self, *, family: str = "ipv4", lifetime: int | None = None) -> TurnResult:
        attributes = [(REQUESTED_TRANSPORT, struct.pack("!B3x", UDP_PROTOCOL))]
        if family != "ipv4":
            attributes.append((REQUESTED_ADDRESS_FAMILY, struct.pack("!B3x", FAMILY_CODES[family])))
        if lifetime is not None:
            attributes.append((LIFETIME, struct.pack("!I", lifetime)))
        return self._transact(stun.Method.ALLOCATE, attributes)

    def create_permission(self, peer_ip: str) -> TurnResult:
        # The port is ignored by TURN permissions (RFC 8656 section 9).
        return self._transact(stun.Method.CREATE_PERMISSION, [], peer=(peer_ip, 0))

    def refresh(self, lifetime: int) -> TurnResult:
        return self._transact(stun.Method.REFRESH, [(LIFETIME, struct.pack("!I", lifetime))])

    # -- data through the relay ---------------------------------------------------------

    def send(self, peer: tuple[str, int], data: bytes) -> None:
        """A Send indication: coturn relays ``data`` from the relayed address to ``peer``."""
        transaction_id = os.urandom(12)
        attributes = [(XOR_PEER_ADDRESS, xor_address(*peer, transaction_id)), (DATA, data)]
        self._send(encode(stun.Method.SEND, stun.Class.INDICATION, transaction_id, attributes))

    def receive(self) -> tuple[tuple[str, int], bytes]:
        """The next Data indication: (peer address, data) that reached the relayed address."""
        while True:
            message = self._pending.pop(0) if self._pending else stun.parse_message(self._recv())
            if message.message_method == stun.Method.DATA and message.message_class == stun.Class.INDICATION:
                return message.attributes["XOR-PEER-ADDRESS"], message.attributes["DATA"]

    # -- transactions ---------------------------------------------------------------------

    def _key(self) -> bytes:
        return long_term_key(self.username, self.realm or "", self.password)

    def _transact(self, method: stun.Method, attributes: list[tuple[int, bytes]], *,
                  peer: tuple[str, int] | None = None, authenticate: bool = True) -> TurnResult:
        """Send a request; on 401 (first contact) or 438 (stale nonce) retry once with the new nonce."""
        for _ in range(3):
            transaction_id = os.urandom(12)
            full = list(attributes)
            if peer is not None:
                full.append((XOR_PEER_ADDRESS, xor_address(*peer, transaction_id)))
            key = None
            if authenticate and self.nonce is not None:
                full += [(USERNAME, self.username.encode()), (REALM, (self.realm or "").encode()),
                         (NONCE, self.nonce)]
                key = self._key()
            signed = key is not None
            response = self._exchange(encode(method, stun.Class.REQUEST, transaction_id, full, key),
                                      transaction_id)
            result = TurnResult(response)
            if result.code in (401, 438) and authenticate:
                stale = result.code == 438
                self.realm = response.attributes.get("REALM", self.realm)
                self.nonce = response.attributes.get("NONCE", self.nonce)
                if stale or not signed:
                    continue  # first contact, or a fresh nonce for the same credentials
            if result.ok and signed and not response.check_message_integrity(self._key()):
                raise AssertionError(f"{method.name} response fails MESSAGE-INTEGRITY")
            return result
        return result

    def _exchange(self, request: bytes, transaction_id: bytes) -> stun.Message:
        # UDP: retransmit a few times, as a real client would (RFC 8489 section 6.2.1).
        attempts = 4 if self.transport == "udp" else 1
        for attempt in range(attempts):
            self._send(request)
            try:
                while True:
                    message = stun.parse_message(self._recv())
                    if message.transaction_id == transaction_id:
                        return message
                    if message.message_class == stun.Class.INDICATION:
                        self._pending.append(message)
            except socket.timeout:
                if attempt == attempts - 1:
                    raise TimeoutError(f"no answer from TURN server {self.server} over {self.transport}")
        raise AssertionError("unreachable")

    def _send(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, self.server)
        else:
            self.sock.sendall(data)

    def _recv(self) -> bytes:
        if self.transport == "udp":
            data, _ = self.sock.recvfrom(65536)
            return data
        # Over a stream, STUN messages follow one another; the header says how long each is.
        header = self._recv_exactly(stun.HEADER_LENGTH)
        length = struct.unpack("!H", header[2:4])[0]
        return header + self._recv_exactly(length)

    def _recv_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("TURN server closed the connection")
            data += chunk
        return data
