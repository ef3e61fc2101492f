"""Time from opening the viewer link to the first picture, direct and through a real coturn.

    .venv/bin/python bench/bench_first_frame.py [--runs 5] [--page PATH]

Each run opens a fresh page in headless Chromium (Debian's) on a still screen and times
page.goto -> the <video> playing (the page's "live" state), then -> first frame decoded.
Relay runs use relay-only on both the page and the tablet, over UDP and over TCP to coturn.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.browser import chromium  # noqa: E402
from support.coturn import run_coturn  # noqa: E402
from support.stack import demo_stack  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "rm"


async def time_runs(stack, runs: int, relay: bool) -> list[float]:
    url = stack.url.replace("/view#", "/view?relay=1#") if relay else stack.url
    times = []
    async with chromium() as browser:
        for _ in range(runs):
            page = await browser.new_page()
            started = time.monotonic()
            await page.goto(url)
            await page.wait_for_function("() => window.inkcast.state === 'live'", timeout=20000, polling=10)
            times.append(time.monotonic() - started)
            await page.close()
            await asyncio.sleep(0.5)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page", type=Path, default=FIXTURES / "Lines_v2.rm")
    args = parser.parse_args()
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    results = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack_of:
        tmp = Path(tmp)
        async with demo_stack(tmp / "direct", args.page) as stack:
            await stack.finish_page()
            results["direct (host candidates)"] = await time_runs(stack, args.runs, relay=False)
        server = stack_of.enter_context(run_coturn(tmp / "coturn"))
        secret = tmp / "secret"
        secret.write_bytes(server.secret)
        secret.chmod(0o600)
        for transport in ("udp", "tcp"):
            urls = server.urls(stun=False, udp=transport == "udp", tcp=transport == "tcp")
            async with demo_stack(tmp / transport, args.page, relay_only=True,
                                  signal_overrides={"turn_urls": urls, "turn_secret_file": secret}) as stack:
                await stack.finish_page()
                results[f"relay only, {transport.upper()} to coturn"] = await time_runs(stack, args.runs, relay=True)
    base = statistics.median(results["direct (host candidates)"])
    print(f"\n{'path':32} {'median s':>9} {'min':>6} {'max':>6}  vs direct")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:32} {med:9.2f} {min(times):6.2f} {max(times):6.2f}  x{med / base:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
