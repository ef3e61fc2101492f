"""When to look at the screen again: fast while it changes, slowly while it rests.

A pure policy over timestamps, so it can be tested without clocks or pixels.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CaptureSettings:
    max_fps: float = 10.0
    # Keep capturing at full rate this long after the last change: the end of a stroke,
    # and the next stroke of a word, come right after a pause of the pen.
    linger: float = 2.0
    # Period of captures while nothing changes (page turns happen without the pen).
    idle_interval: float = 0.5
    # Keyframe when nothing was sent for this long (0: never); recovers a viewer whose
    # decoder lost the picture without asking for a new one.
    refresh_interval: float = 30.0
    # Keyframe requests closer together than this are merged (PLI storms at startup).
    min_keyframe_interval: float = 0.25


class CapturePolicy:
    def __init__(self, settings: CaptureSettings = CaptureSettings()):
        if settings.max_fps <= 0:
            raise ValueError("max_fps must be positive")
        self.settings = settings
        self._last_capture: float | None = None
        self._last_change: float | None = None
        self._last_sent: float | None = None
        self._last_keyframe: float | None = None

    def next_capture(self, now: float) -> float:
        """The time of the next capture, given what was seen so far."""
        if self._last_capture is None:
            return now
        s = self.settings
        active = self._last_change is not None and now - self._last_change < s.linger
        interval = 1.0 / s.max_fps if active else max(s.idle_interval, 1.0 / s.max_fps)
        return self._last_capture + interval

    def keyframe_allowed_at(self, now: float) -> float:
        if self._last_keyframe is None:
            return now
        return max(now, self._last_keyframe + self.settings.min_keyframe_interval)

    def refresh_due(self, now: float) -> bool:
        s = self.settings
        return bool(s.refresh_interval) and self._last_sent is not None and now - self._last_sent >= s.refresh_interval

    def captured(self, now: float, changed: bool) -> None:
        self._last_capture = now
        if changed:
            self._last_change = now

    def sent(self, now: float, keyframe: bool) -> None:
        self._last_sent = now
        if keyframe:
            self._last_keyframe = now
