from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inkcast.settings import check, setting

from .capture import CaptureSettings
from .encoder import Vp8Settings


@dataclass
class TabletConfig:
    source: str = setting("device", "where pixels come from", choices=["device", "replay", "file"])
    replay: Path | None = setting(None, "a .rm notebook page to replay (default: the built-in handwriting page)")
    file: Path | None = setting(None, "a raw framebuffer dump, for --source file")
    layout: str = setting("", "force a pixel layout (see `inkcast layouts`); replay default rm2-3.24-bgra")
    loop: bool = setting(True, "replay: start again after the page is finished")
    pause: float = setting(3.0, "replay: seconds to wait before starting again")
    name: str = setting("", "the tablet's name in viewer links (a-z, 0-9, -; default from the host name)")
    signal_url: str = setting("ws://127.0.0.1:8417/tablet", "signaling server's tablet WebSocket")
    device_token: str = setting("", "token to register with signaling", secret=True)
    link_ttl: float = setting(86400.0, "lifetime of the viewer link printed at start, seconds (0: print none)")
    max_fps: float = setting(10.0, "frames per second at most, while the screen changes")
    linger: float = setting(2.0, "seconds to keep capturing at full rate after the last change")
    idle_interval: float = setting(0.5, "seconds between captures while nothing changes")
    refresh_interval: float = setting(30.0, "keyframe after this many seconds without sending (0: never)")
    bitrate: int = setting(2_000_000, "VP8 target bitrate, bits per second")
    max_viewers: int = setting(20, "viewers at once")
    relay_only: bool = setting(False, "use only TURN-relayed paths for media")
    heartbeat: float = setting(15.0, "seconds between pings to signaling; a connection that stops answering is redialled")

    def __post_init__(self) -> None:
        me = TabletConfig
        check(self.max_fps > 0, me, "max_fps", "must be positive")
        check(self.linger >= 0, me, "linger", "must be 0 or more")
        check(self.idle_interval > 0, me, "idle_interval", "must be positive")
        check(self.refresh_interval >= 0, me, "refresh_interval", "must be 0 (never) or more")
        check(self.bitrate >= 50_000, me, "bitrate", "must be at least 50000")
        check(self.max_viewers >= 1, me, "max_viewers", "must be at least 1")
        check(self.link_ttl >= 0, me, "link_ttl", "must be 0 (print no link) or more")
        check(self.heartbeat > 0, me, "heartbeat", "must be positive")
        check(self.pause >= 0, me, "pause", "must be 0 or more")
        check(self.signal_url.startswith(("ws://", "wss://")), me, "signal_url",
              f"must be a ws:// or wss:// URL, not {self.signal_url!r}")

    def capture_settings(self) -> CaptureSettings:
        return CaptureSettings(max_fps=self.max_fps, linger=self.linger, idle_interval=self.idle_interval,
                               refresh_interval=self.refresh_interval)

    def vp8_settings(self) -> Vp8Settings:
        return Vp8Settings(bitrate=self.bitrate)
