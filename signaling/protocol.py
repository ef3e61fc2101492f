"""Messages between a tablet and signaling over the tablet's WebSocket (JSON text frames).

tablet -> signaling: hello {name, layout, width, height, viewers}, answer {id, sdp},
                     error {id, status, message}, closed {id, reason}, mint_link {ttl}
signaling -> tablet: welcome {ice_servers, viewer_url}, ice_servers {ice_servers},
                     offer {id, sdp}, close {id}, link {url, expires_at}, error {message}
"""

from __future__ import annotations

import json
import re

# An SDP offer is a few kB; a full one with many codecs stays far below this.
MAX_MESSAGE = 256 * 1024
MAX_SDP = 64 * 1024

TABLET_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

KNOWN_TYPES = {
    "hello", "answer", "error", "closed", "mint_link",
    "welcome", "ice_servers", "offer", "close", "link",
}


class ProtocolError(Exception):
    pass


def parse(text: str) -> dict:
    if len(text) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(text)} bytes is over the {MAX_MESSAGE} limit")
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("not an object with a string 'type'")
    if message["type"] not in KNOWN_TYPES:
        raise ProtocolError(f"unknown message type {message['type']!r}")
    return message


def valid_tablet_name(name: str) -> bool:
    return bool(TABLET_NAME.match(name))
