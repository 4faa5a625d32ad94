"""Callers waiting and talking when the active engine dies: a hot standby against a restart.

Each round, on the real sandbox, with its own database: ``--talks`` callers talk to agents on
SIPp desk phones (each talk lasts ``TALK`` seconds from the agent's answer) and ``--calls``
more wait in the queue with no agent free; the active engine (``sambung run``, its own
process) is SIGKILLed a few seconds into the talks; the talking agents are asked to log out
once their talk ends (from the new engine), and one more agent's desk phone serves whoever
waits. Two paths, in the same run:

- standby: two engines with ``[engine] lease = true`` (default lease: 6 s, renewed every 2 s),
  the second waiting warm as the standby; it takes the lease over when it lapses.
- restart: one engine and no lease (the baseline); a new process is started the moment the
  old one is dead, which is the best a supervisor can do (systemd waits RestartSec first).

Printed per path: kill -> the new engine ready; from the lease lapsing (its expiry in the
database when the engine was killed; the kill itself for the restart) to the first adopted
caller acting again and to the last (``acd.resumed`` and ``acd.talk_resumed`` in the new
engine's log); callers dropped (not served by the agent, goal 0); talks dropped (ended
otherwise than by the agent's phone hanging up, or shorter than they were, goal 0); service
order of the waiting callers against their calling order (Kendall tau, goal 1.0).

    .venv/bin/python -m bench.failover --calls 20 --talks 2   # sandbox up, PostgreSQL reachable
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.adoption_rig import (
    MORE_AGENTS,
    Callers,
    bench_rounds,
    engine_pair,
    kendall_tau,
    kill_and_take_over,
    staff,
    start_pair,
    until,
)
from tests.integration.harness import engine_database
from tests.integration.phones import Answer

TTL, RENEW = 6.0, 2.0  # the settings' defaults
TALK = 20.0  # seconds from the agent's answer to the agent's phone hanging up
KILL_INTO_TALK = 4.0  # the engine dies this long after the last talk began


@dataclass
class Result:
    path: str
    calls: int
    dropped: int
    talks: int
    talks_dropped: int
    tau: float | None
    ready_s: float  # kill -> the new engine ready (active)
    first_s: float | None  # lease lapsed (or kill) -> the first adopted caller acting
    last_s: float | None  # ... -> the last one


async def one_round(path: str, calls: int, talks: int, work: Path) -> Result:
    lease: dict[str, Any] = {
        "lease": path == "standby",
        "lease_ttl": TTL,
        "lease_renew": RENEW,
        "more_agents": talks,
    }
    async with engine_database() as (url, pool), contextlib.AsyncExitStack() as stack:
        first, second = engine_pair(work, url, path, **lease)
        callers = Callers(work, talks + calls, every=0.3, wait_for_bye=300)

        await start_pair(stack, path, first, second, callers)
        talkers = MORE_AGENTS[:talks]
        for talker in talkers:
            await staff(first, stack, work, talker, calls=1, answer=Answer(0.2, TALK))
        await callers.start()

        async def all_waiting() -> bool:
            answered = await pool.fetchval(
                "SELECT count(*) FROM call_legs WHERE answered_at IS NOT NULL"
            )
            return await first.waiting() == calls and answered == talks

        await until(all_waiting, f"{talks} talking and {calls} callers waiting", 60)
        talking = {
            r["call_id"]
            for r in await pool.fetch("SELECT call_id FROM call_legs WHERE answered_at IS NOT NULL")
        }
        ids = [
            r["call_id"]
            for r in await pool.fetch("SELECT call_id FROM calls ORDER BY started_at, call_id")
            if r["call_id"] not in talking
        ]
        await asyncio.sleep(KILL_INTO_TALK)
        over = await kill_and_take_over(path, first, second, pool, TTL + RENEW)
        killed, lapsed, ready_s = over.killed, over.lapsed, over.ready_s

        names = ("acd.resumed", "acd.talk_resumed")

        async def resumed() -> bool:
            return len(second.events(*names, since=killed)) >= calls + talks

        await until(resumed, "every caller resumed", 30)
        times = [t for t, _ in second.events(*names, since=killed)]
        first_s, last_s = times[0] - lapsed, times[-1] - lapsed
        # The talking agents leave once their talk is over (asked of the engine that carries
        # the talks on): only the serving agent takes the waiting callers, in their order.
        for aid, *_ in talkers:
            await second.aapi("POST", f"/api/v1/agents/{aid}/logout")

        await staff(second, stack, work, calls=calls)
        await callers.finish(300)

        async def settled() -> bool:
            n = await pool.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")
            return bool(n == calls + talks)

        await until(settled, "every call closed", 60)
        # A talk is dropped unless the agent's phone ended it, after its whole length.
        kept = await pool.fetchval(
            """SELECT count(*) FROM calls c JOIN call_legs l USING (call_id)
               WHERE c.call_id = ANY($1) AND c.end_reason = 'agent_hung_up'
                 AND l.talk_seconds >= $2""",
            sorted(talking),
            TALK - 1.5,
        )
        served = [
            r["call_id"]
            for r in await pool.fetch(
                "SELECT call_id FROM call_legs WHERE outcome = 'answered' ORDER BY created_at"
            )
            if r["call_id"] not in talking
        ]
        await second.terminate()
        return Result(
            path,
            calls,
            calls - len(set(served) & set(ids)),
            talks,
            talks - int(kept),
            kendall_tau(served, ids) if len(served) >= 2 else None,
            ready_s,
            first_s,
            last_s,
        )


def report(results: list[Result]) -> None:
    r0 = results[0]
    print(
        f"when the active engine is SIGKILLed: {r0.calls} callers waiting, {r0.talks} talking "
        f"({TALK:g} s talks, killed {KILL_INTO_TALK:g} s in)"
    )
    print(f"lease {TTL:g} s, renewed every {RENEW:g} s (the defaults)")
    head = ("path", "dropped", "talks dropped", "kill->ready s", "lapse->first s", "lapse->last s")
    print(f"{head[0]:<9}{head[1]:>8}{head[2]:>14}{head[3]:>15}{head[4]:>16}{head[5]:>15}{'tau':>7}")

    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for r in results:
        print(
            f"{r.path:<9}{r.dropped:>8}{r.talks_dropped:>14}{r.ready_s:>15.2f}"
            f"{num(r.first_s, '.2f'):>16}{num(r.last_s, '.2f'):>15}{num(r.tau, '.3f'):>7}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--talks", type=int, default=2, choices=range(len(MORE_AGENTS) + 1))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", choices=["standby", "restart"])
    args = parser.parse_args()
    paths = [args.only] if args.only else ["standby", "restart"]

    async def round_(path: str, work: Path) -> Result:
        return await one_round(path, args.calls, args.talks, work)

    results, work = await bench_rounds("failover", paths, args.rounds, round_)
    report(results)
    print(f"logs: {work}")


if __name__ == "__main__":
    asyncio.run(main())
