"""A real headless Chromium (Debian's) driven by Playwright; never a downloaded browser."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import asynccontextmanager

import pytest

CHROMIUM = os.environ.get("INKCAST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Host candidates as IP addresses, not mDNS names: aioice would resolve .local names
    # by multicast, and tests send traffic to loopback only.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


def chromium_or_skip() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM} (scripts/setup.sh --test installs Debian's chromium)")
    return CHROMIUM


@asynccontextmanager
async def chromium():
    from playwright.async_api import async_playwright

    path = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="inkcast-chromium-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=path, headless=True, args=CHROMIUM_ARGS)
            try:
                yield context
            finally:
                await context.close()


# The video's current picture as gray levels, read back through a canvas.
GRAB_FRAME_JS = """
() => {
  const video = document.getElementById('video');
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return null;
  const canvas = document.createElement('canvas');
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const gray = new Uint8Array(w * h);
  for (let i = 0, j = 0; j < gray.length; i += 4, j++) {
    gray[j] = (rgba[i] * 77 + rgba[i + 1] * 150 + rgba[i + 2] * 29) >> 8;
  }
  let s = '';
  const chunk = 0x8000;
  for (let i = 0; i < gray.length; i += chunk) s += String.fromCharCode.apply(null, gray.subarray(i, i + chunk));
  return { width: w, height: h, gray: btoa(s) };
}
"""

# Counters of the page's inbound video, from getStats.
INBOUND_STATS_JS = """
async () => {
  const pc = window.inkcast && window.inkcast.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  let inbound = null, pair = null, local = null, remote = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') inbound = s;
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
  });
  if (pair) { local = report.get(pair.localCandidateId); remote = report.get(pair.remoteCandidateId); }
  return {
    framesDecoded: inbound ? inbound.framesDecoded : 0,
    keyFramesDecoded: inbound ? inbound.keyFramesDecoded : 0,
    packetsReceived: inbound ? inbound.packetsReceived : 0,
    bytesReceived: inbound ? inbound.bytesReceived : 0,
    pliCount: inbound ? inbound.pliCount : 0,
    firCount: inbound ? inbound.firCount : 0,
    frameWidth: inbound ? inbound.frameWidth : 0,
    frameHeight: inbound ? inbound.frameHeight : 0,
    localCandidateType: local ? local.candidateType : null,
    remoteCandidateType: remote ? remote.candidateType : null,
    relayProtocol: local ? local.relayProtocol : null,
  };
}
"""
