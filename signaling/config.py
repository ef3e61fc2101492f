from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inkcast.settings import check, setting

DEFAULT_PORT = 8417


def default_state_dir() -> Path:
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "inkcast" / "signaling"


@dataclass
class SignalConfig:
    host: str = setting("127.0.0.1", "address the public (viewer) side listens on")
    port: int = setting(DEFAULT_PORT, "TCP port of the public side (0: any free port)")
    public_url: str = setting("", "URL viewers reach this server at, for links (default http://HOST:PORT)")
    state_dir: Path | None = setting(None, "where device-token hash, tablets and links are kept (default ~/.local/state/inkcast/signaling)")
    device_token: str = setting("", "token tablets authenticate with; when unset one is generated, stored (as a hash) and printed once", secret=True)
    link_ttl: float = setting(86400.0, "lifetime of a viewer link, seconds")
    answer_timeout: float = setting(10.0, "seconds a tablet has to answer a viewer's offer")
    max_viewers: int = setting(20, "viewers per tablet at once")
    max_body: int = setting(64 * 1024, "largest accepted SDP offer, bytes")
    web_dir: Path | None = setting(None, "folder of the viewer page (default: web/ beside the code)")
    turn_urls: list[str] = setting([], "STUN/TURN URLs handed to tablets and viewers, comma-separated "
                                   "(e.g. turn:turn.example.com:3478?transport=udp,turn:...?transport=tcp)")
    turn_secret_file: Path | None = setting(None, "file holding coturn's static-auth-secret (or set INKCAST_TURN_SECRET)")
    turn_ttl: float = setting(3600.0, "lifetime of a tablet's TURN credentials, seconds (a viewer's end with its link)")
    tablet_port: int = setting(8418, "with --tailnet: port of the tablet WebSocket on the tailnet (not on HOST)")
    tablet_auth: str = setting("", "how tablets prove who they are: token, tailnet (identity in the allow-list), "
                               "or both (default: tailnet with --tailnet, else token)",
                               choices=["", "token", "tailnet", "both"])
    allow_tags: list[str] = setting([], "with tailnet identity: tailnet tags allowed to register as tablets (e.g. tag:inkcast-tablet)")
    allow_nodes: list[str] = setting([], "with tailnet identity: tailnet node names allowed to register as tablets")

    def __post_init__(self) -> None:
        me = SignalConfig
        check(0 <= self.port <= 65535, me, "port", "must be 0-65535")
        check(1 <= self.tablet_port <= 65535, me, "tablet_port", "must be 1-65535")
        check(self.link_ttl > 0, me, "link_ttl", "must be positive")
        check(self.answer_timeout > 0, me, "answer_timeout", "must be positive")
        check(self.max_viewers >= 1, me, "max_viewers", "must be at least 1")
        check(self.max_body >= 4096, me, "max_body", "must be at least 4096 (an SDP offer is a few kB)")
        check(self.turn_ttl > 0, me, "turn_ttl", "must be positive")

    def viewer_base_url(self) -> str:
        """Where links point: --public-url, else this listener (by host name when on all addresses)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            import socket

            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def tablet_auth_mode(self, tailnet: bool) -> str:
        return self.tablet_auth or ("tailnet" if tailnet else "token")
