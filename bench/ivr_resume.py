"""Callers in an IVR flow when the active engine dies: a hot standby against a restart.

Each round, on the real sandbox, with its own database: ``--calls`` SIPp callers (one every
0.3 s) choose English, key in an account number and reach a menu whose prompt lasts 30 s
(``tests/integration/adoption_rig.py``, ``IVR_FLOW``); once every one of them is stored at
that menu, the active engine (``sambung run``, its own process) is SIGKILLed. Each caller
presses the menu's key ``KEY_AFTER`` seconds after its account number, long after the engine
died: only an engine that resumed it at the menu (and stopped the dead engine's prompt) can
take the key, say goodbye and hang up, which is what the caller's scenario waits for. Two
paths, in the same run:

- standby: two engines with ``[engine] lease = true`` (default lease: 6 s, renewed every 2 s),
  the second waiting warm as the standby; it takes the lease over when it lapses.
- restart: one engine and no lease (the baseline); a new process is started the moment the
  old one is dead, which is the best a supervisor can do (systemd waits RestartSec first).

Printed per path: kill -> the new engine ready; from the lease lapsing (its expiry in the
database when the engine was killed; the kill itself for the restart) to the first resumed
caller (``ivr.resumed`` in the new engine's log) and to the last; callers dropped (a session
that did not end by the menu's key, or a SIPp call that failed: goal 0); sessions closed more
than once or left open (goal 0).

    .venv/bin/python -m bench.ivr_resume --calls 20   # sandbox up, PostgreSQL reachable
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.adoption_rig import (
    IVR_DID,
    Callers,
    bench_rounds,
    engine_pair,
    ivr_flow_config,
    kill_and_take_over,
    start_pair,
    until,
)
from tests.integration.callers import Pause, Press, Step
from tests.integration.harness import engine_database

TTL, RENEW = 6.0, 2.0  # the settings' defaults
EVERY = 0.3  # seconds between callers
KEY_AFTER = 30.0  # seconds from a caller's account number to its menu key


@dataclass
class Result:
    path: str
    calls: int
    dropped: int
    sipp_status: int
    unclosed: int
    ready_s: float  # kill -> the new engine ready (active)
    first_s: float | None  # lease lapsed (or kill) -> the first resumed caller
    last_s: float | None  # ... -> the last one


async def one_round(path: str, calls: int, work: Path) -> Result:
    extra = ivr_flow_config(work)
    lease: dict[str, Any] = {
        "lease": path == "standby",
        "lease_ttl": TTL,
        "lease_renew": RENEW,
        "extra": extra,
    }
    async with engine_database() as (url, pool), contextlib.AsyncExitStack() as stack:
        first, second = engine_pair(work, url, path, **lease)
        steps: list[Step] = [Pause(1500), Press("2"), Pause(2500), Press("4321#")]
        steps += [Pause(int(KEY_AFTER * 1000)), Press("1")]
        callers = Callers(work, calls, every=EVERY, wait_for_bye=120, steps=steps, did=IVR_DID)

        await start_pair(stack, path, first, second, callers)
        await callers.start()

        async def all_at_menu() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM ivr_sessions WHERE live_state->>'node' = 'main'"
            )
            return bool(n == calls)

        await until(all_at_menu, f"{calls} callers at the menu", 60)
        over = await kill_and_take_over(path, first, second, pool, TTL + RENEW)
        killed, lapsed, ready_s = over.killed, over.lapsed, over.ready_s

        async def resumed() -> bool:
            return len(second.events("ivr.resumed", since=killed)) >= calls

        with contextlib.suppress(RuntimeError):
            await until(resumed, "every caller resumed", 30)
        times = [t for t, _ in second.events("ivr.resumed", since=killed)]
        first_s = times[0] - lapsed if times else None
        last_s = times[-1] - lapsed if times else None
        status = await callers.finish(KEY_AFTER + 120)

        async def settled() -> bool:
            n = await pool.fetchval("SELECT count(*) FROM ivr_sessions WHERE ended_at IS NULL")
            return bool(n == 0)

        with contextlib.suppress(RuntimeError):
            await until(settled, "every session closed", 30)
        rows = await pool.fetch("SELECT end_reason, ended_at, attributes FROM ivr_sessions")
        served = sum(
            1
            for r in rows
            if r["end_reason"] == "resumed_menu_option"
            and json.loads(r["attributes"]).get("account") == "4321"
        )
        unclosed = sum(1 for r in rows if r["ended_at"] is None) + abs(len(rows) - calls)
        await second.terminate()
        return Result(path, calls, calls - served, status, unclosed, ready_s, first_s, last_s)


def report(results: list[Result]) -> None:
    r0 = results[0]
    print(
        f"when the active engine is SIGKILLed: {r0.calls} callers at an IVR menu "
        f"(30 s prompt), each pressing its key {KEY_AFTER:g} s after its account number"
    )
    print(f"lease {TTL:g} s, renewed every {RENEW:g} s (the defaults)")
    head = ("path", "dropped", "unclosed", "sipp", "kill->ready s", "lapse->first s")
    print(
        f"{head[0]:<9}{head[1]:>8}{head[2]:>10}{head[3]:>6}{head[4]:>15}{head[5]:>16}"
        f"{'lapse->last s':>15}"
    )

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for r in results:
        print(
            f"{r.path:<9}{r.dropped:>8}{r.unclosed:>10}{r.sipp_status:>6}{r.ready_s:>15.2f}"
            f"{num(r.first_s):>16}{num(r.last_s):>15}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", choices=["standby", "restart"])
    args = parser.parse_args()
    paths = [args.only] if args.only else ["standby", "restart"]

    async def round_(path: str, work: Path) -> Result:
        return await one_round(path, args.calls, work)

    results, work = await bench_rounds("ivr-resume", paths, args.rounds, round_)
    report(results)
    print(f"logs: {work}")


if __name__ == "__main__":
    asyncio.run(main())
