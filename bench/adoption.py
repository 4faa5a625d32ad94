"""Callers waiting in a queue when the engine is killed: taken over by the next engine.

Each round, on the real sandbox: an engine (``sambung run``, its own process and database)
takes ``--calls`` SIPp callers into a queue with no agent ready; the callers wait while the
engine's safeguard sweep refreshes their timeouts a few times; the engine is killed by its PID
(SIGKILL: nothing handed over); a new engine is started; then one agent's desk phone serves
whoever is still there. Two paths, in the same run:

- adopt: as built. The new engine reads each caller's place from its channel at its first
  connect and carries the call on.
- old: the behaviour before (the baseline): the places are wiped from the channels before the
  new engine starts, so it finds callers it knows nothing of and hangs them up as orphans,
  which is what every engine did before callers had a place on their channel.

Printed per path: connect -> all callers readmitted at their place (one synchronous pass) and
-> every caller's task resumed, from the new engine's own log; kill -> the new engine ready;
callers dropped (not served by the agent); service order against calling order (Kendall tau,
1.0 = the same). And the safeguard sweep's cost on the first engine with every caller guarded:
time per sweep and per call (its histogram), and REST calls per second it adds.

    .venv/bin/python -m bench.adoption --calls 20       # sandbox up, PostgreSQL reachable
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.adoption_rig import (
    TOKEN,
    Callers,
    Engine,
    bench_rounds,
    kendall_tau,
    staff,
    start_pair,
    until,
    write_config,
)
from tests.integration.harness import ARI_PASSWORD, ARI_URL, ARI_USER, engine_database

BOUND = 15.0  # [acd] adopt_within_seconds here: a sweep every 5 s, so a round sees a few


@dataclass
class Result:
    path: str
    calls: int
    dropped: int
    tau: float | None
    listed_ms: float | None  # new engine's connect -> every caller readmitted
    resumed_ms: float | None  # new engine's connect -> every caller's task resumed
    ready_s: float  # kill -> the new engine ready
    sweep_ms: float  # mean time of one sweep over every guarded caller (first engine)
    sweeps: int


def ari_post(path: str, params: dict[str, str]) -> None:
    url = f"{ARI_URL}/ari{path}?{urllib.parse.urlencode(params)}"
    req = urllib.request.Request(url, method="POST", data=b"")
    cred = base64.b64encode(f"{ARI_USER}:{ARI_PASSWORD}".encode()).decode()
    req.add_header("Authorization", f"Basic {cred}")
    with urllib.request.urlopen(req, timeout=5):
        pass


def sweep_stats(engine: Engine) -> tuple[int, float]:
    """(sweeps, seconds in them) from the engine's /metrics."""
    req = urllib.request.Request(f"http://127.0.0.1:{engine.port}/metrics")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=5) as r:
        text = r.read().decode()
    count, total = 0, 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "sambung_safeguard_sweep_seconds":
            for s in family.samples:
                if s.name.endswith("_count"):
                    count = int(s.value)
                elif s.name.endswith("_sum"):
                    total = s.value
    return count, total


async def one_round(path: str, calls: int, work: Path) -> Result:
    async with engine_database() as (url, pool), contextlib.AsyncExitStack() as stack:
        cfg, port = write_config(work, url, instance=f"bench-adopt-{path}", adopt_within=BOUND)
        first = Engine(cfg, port, work / "first.log")
        second = Engine(cfg, port, work / "second.log")
        callers = Callers(work, calls, every=0.1, wait_for_bye=300)

        await start_pair(stack, "restart", first, second, callers)
        await callers.start()

        async def all_waiting() -> bool:
            return await first.waiting() == calls

        await until(all_waiting, f"{calls} callers waiting", 60)
        ids = [
            r["call_id"]
            for r in await pool.fetch("SELECT call_id FROM calls ORDER BY started_at, call_id")
        ]
        before = await asyncio.to_thread(sweep_stats, first)
        await asyncio.sleep(2 * BOUND / 3 + 1)  # two sweeps with every caller guarded
        after = await asyncio.to_thread(sweep_stats, first)
        sweeps = after[0] - before[0]
        sweep_ms = (after[1] - before[1]) / sweeps * 1000 if sweeps else float("nan")

        await first.kill()
        killed = time.time()
        if path == "old":
            for cid in ids:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(
                        ari_post,
                        f"/channels/{cid}/variable",
                        {"variable": "SAMBUNG_PLACE", "value": ""},
                    )
        await second.start()
        ready_s = time.time() - killed
        connected = second.events("ari.connected", since=second.started_at)
        t0 = connected[0][0] if connected else None
        listed_ms = resumed_ms = None
        if path == "adopt":

            async def resumed() -> bool:
                return len(second.events("acd.resumed", since=second.started_at)) >= calls

            await until(resumed, "every caller resumed", 30)
            taken = second.events("acd.taken_over", since=second.started_at)
            last = second.events("acd.resumed", since=second.started_at)[-1][0]
            if t0 is not None:
                listed_ms = (taken[0][0] - t0) * 1000 if taken else None
                resumed_ms = (last - t0) * 1000

        # Whoever is still there is served by one agent.
        await staff(second, stack, work, calls=calls)
        await callers.finish(300)

        async def settled() -> bool:
            n = await pool.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")
            return bool(n == calls)

        await until(settled, "every call closed", 60)
        served = [
            r["call_id"]
            for r in await pool.fetch(
                "SELECT call_id FROM call_legs WHERE outcome = 'answered' ORDER BY created_at"
            )
        ]
        await second.terminate()
        return Result(
            path,
            calls,
            calls - len(set(served) & set(ids)),
            kendall_tau(served, ids) if len(served) >= 2 else None,
            listed_ms,
            resumed_ms,
            ready_s,
            sweep_ms,
            sweeps,
        )


def report(results: list[Result]) -> None:
    calls = results[0].calls
    print(f"callers waiting when the engine is SIGKILLed and a new one started: {calls} per round")
    head = ("path", "dropped", "connect->listed ms", "connect->resumed ms", "kill->ready s", "tau")
    print(f"{head[0]:<7}{head[1]:>8}{head[2]:>20}{head[3]:>21}{head[4]:>15}{head[5]:>7}")

    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for r in results:
        print(
            f"{r.path:<7}{r.dropped:>8}{num(r.listed_ms, '.1f'):>20}"
            f"{num(r.resumed_ms, '.1f'):>21}{r.ready_s:>15.2f}{num(r.tau, '.3f'):>7}"
        )
    sweeps = [r for r in results if r.sweeps]
    if sweeps:
        mean = sum(r.sweep_ms for r in sweeps) / len(sweeps)
        every = BOUND / 3
        print(
            f"safeguard sweep ({calls} guarded callers, a sweep every {every:.1f} s): "
            f"{mean:.1f} ms per sweep, {mean / calls:.2f} ms per caller, "
            f"{calls / every:.1f} REST calls/s added (at the default bound of 120 s: "
            f"{calls / 40:.2f}/s)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", choices=["adopt", "old"])
    args = parser.parse_args()
    paths = [args.only] if args.only else ["adopt", "old"]

    async def round_(path: str, work: Path) -> Result:
        return await one_round(path, args.calls, work)

    results, work = await bench_rounds("adoption", paths, args.rounds, round_)
    report(results)
    print(f"logs: {work}")


if __name__ == "__main__":
    asyncio.run(main())
