"""Wallboards served live: what K open screens cost the engine's event loop, with one shared
render per refresh (the engine's way) against a render per screen (the baseline), in one run.

The console runs in this process on loopback with a synthetic floor (200 agents, 20 queues,
6 campaigns) behind the real templates; the screens are a second process holding K
server-sent-event streams open and counting what arrives. Measured here, on the engine's
side: renders per second, CPU spent rendering per second, and the event loop's lag (a 10 ms
sleep's overshoot, sampled all along), which is what call control on the same loop would feel.

    .venv/bin/python -m bench.wallboard                 # K = 10, 50, 200; 8 s per cell
    .venv/bin/python -m bench.wallboard --screens 50 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any, cast

import aiohttp
from aiohttp import web

from sambung.acd.hub import AgentHub
from sambung.auth.http import IDENTITY
from sambung.auth.model import Identity, Role
from sambung.console import ConsoleServices
from sambung.console.app import Console
from sambung.console.model import ConsoleConfig
from sambung.engine.metrics import build_metrics

STATES = ("ready", "on_call", "on_call", "on_call", "wrap_up", "paused", "ringing")


class Floor:
    """The wallboard's figures, from a seeded, changing floor."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.hub = AgentHub()
        self.metrics = build_metrics()

    async def wallboard(self) -> dict[str, Any]:
        r = self.rng
        now = datetime.now(UTC)
        queues = [
            {
                "queue": f"queue-{i:02d}",
                "waiting": r.randint(0, 12),
                "longest_wait_seconds": r.uniform(0, 300),
                "service_level": r.uniform(0.5, 1.0),
                "abandon_rate": r.uniform(0, 0.1),
                "staffed": r.randint(5, 20),
            }
            for i in range(20)
        ]
        agents = [
            {
                "agent_id": f"a{i:03d}",
                "name": f"Agent {i:03d}",
                "state": r.choice(STATES),
                "reason": "",
                "seconds_in_state": r.uniform(0, 900),
                "call_id": f"17954{i:05d}.{r.randint(1, 999)}",
            }
            for i in range(200)
        ]
        campaigns = [
            {
                "campaign": f"kolek-{i}",
                "mode": "predictive",
                "state": "running",
                "lines_per_agent": r.uniform(1, 3),
                "abandon_rate": r.uniform(0, 0.03),
                "abandon_cap": 0.03,
                "window": {"live_answers": 400},
                "contact_rate": r.uniform(0.2, 0.5),
                "promises_today": {"count": r.randint(0, 80), "amount": "125000000"},
            }
            for i in range(6)
        ]
        return {
            "at": now.isoformat(),
            "queues": queues,
            "agents": agents,
            "campaigns": campaigns,
            "calendars": [],  # no calendar lapsing: the banner is not drawn
        }


class Meter:
    def __init__(self) -> None:
        self.renders = 0
        self.render_seconds = 0.0
        self.lags: list[float] = []

    async def probe(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t = loop.time()
            await asyncio.sleep(0.01)
            self.lags.append(loop.time() - t - 0.01)


async def serve_cell(screens: int, seconds: float, shared: bool, seed: int) -> dict[str, float]:
    floor = Floor(seed)
    # Only what the wallboard stream uses; the agent screen's services are not reached here.
    services = ConsoleServices(
        agents=cast(Any, None),
        hub=floor.hub,
        agent_action=lambda agent_id, action, reason: {},
        handled_by=cast(Any, None),
        disposition=cast(Any, None),
        dialer=cast(Any, None),
        wallboard=floor.wallboard,
        streams=floor.metrics.console_streams,
    )
    console = Console(services, ConsoleConfig(wallboard_refresh_seconds=1.0))
    console.share_boards = shared
    meter = Meter()
    plain_render = console.render

    def timed_render(name: str, lang: str, **ctx: Any) -> str:
        t = time.process_time()
        try:
            return plain_render(name, lang, **ctx)
        finally:
            meter.renders += name == "_board.html"
            meter.render_seconds += time.process_time() - t

    console.render = timed_render  # type: ignore[method-assign]

    @web.middleware
    async def supervisor(request: web.Request, handler: Any) -> web.StreamResponse:
        request[IDENTITY] = Identity("bench", Role.SUPERVISOR, None)
        return await handler(request)  # type: ignore[no-any-return]

    app = web.Application(middlewares=[supervisor])
    console.add_routes(app)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    probe = asyncio.create_task(meter.probe(stop))
    clients = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.wallboard",
        "--client",
        str(port),
        str(screens),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    # Settle: every screen connected and past its first event before measuring.
    await asyncio.sleep(1.5)
    meter.renders, meter.render_seconds, meter.lags = 0, 0.0, []
    t0 = time.monotonic()
    out, _ = await clients.communicate()
    elapsed = time.monotonic() - t0
    stop.set()
    await probe
    console.closing.set()
    await runner.cleanup()
    events = int(out.decode().split()[0]) if out else 0
    lags = sorted(meter.lags)
    return {
        "renders_per_s": meter.renders / elapsed,
        "render_ms_per_s": 1000 * meter.render_seconds / elapsed,
        "lag_p50_ms": 1000 * statistics.median(lags),
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))],
        "lag_max_ms": 1000 * lags[-1],
        "events_per_screen_s": events / screens / max(1e-9, seconds - 1.5),
    }


async def run_clients(port: int, screens: int, seconds: float) -> None:
    """The screens: K streams held open; prints how many board events arrived after settling."""
    counted = 0
    start = time.monotonic()

    async def screen(http: aiohttp.ClientSession) -> None:
        nonlocal counted
        url = f"http://127.0.0.1:{port}/console/wallboard/stream"
        async with http.get(url) as resp:
            async for line in resp.content:
                if line.startswith(b"event: board") and time.monotonic() - start > 1.5:
                    counted += 1

    timeout = aiohttp.ClientTimeout(total=None)
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:
        tasks = [asyncio.create_task(screen(http)) for _ in range(screens)]
        await asyncio.sleep(seconds)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(counted)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--screens", type=int, nargs="*", default=[10, 50, 200])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        port, screens, seconds = args.client
        asyncio.run(run_clients(int(port), int(screens), float(seconds)))
        return 0
    print(
        f"{'screens':>7} {'render':>11} {'renders/s':>9} {'ms CPU/s':>9} {'lag p50':>8} "
        f"{'lag p99':>8} {'lag max':>8} {'events/screen/s':>15}"
    )
    for k in args.screens:
        for shared in (False, True):
            r = asyncio.run(serve_cell(k, args.seconds, shared, args.seed))
            mode = "shared" if shared else "per screen"
            print(
                f"{k:>7} {mode:>11} {r['renders_per_s']:>9.1f} {r['render_ms_per_s']:>9.1f} "
                f"{r['lag_p50_ms']:>7.2f}ms {r['lag_p99_ms']:>7.2f}ms {r['lag_max_ms']:>7.1f}ms "
                f"{r['events_per_screen_s']:>15.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
