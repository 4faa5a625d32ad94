"""Facts into PostgreSQL: the write-ahead spool against the old in-memory queue, in one run.

Both paths write the same facts (per call: started, answered, three IVR steps, ended) into
their own fresh database on the same server:

- ``memory``: the writer before the spool, replayed here as it was: an in-memory queue, one
  statement per fact, each its own transaction; a crash loses whatever is queued.
- ``spool``: ``engine.facts.FactWriter``: each fact appended to the spool and fsynced (group
  commit), then written to PostgreSQL in batches of up to 500, one transaction each, with the
  spool generation's mark.

Two measurements per path:

- burst: N facts recorded at once; facts per second until all are committed, and the time
  ``record`` itself takes (what a call task pays, on the event loop);
- paced: R facts per second for S seconds; per fact, the time from ``record`` to its commit
  (and for the spool, to being on disk, which is when it counts): p50, p99, max.

    .venv/bin/python -m bench.facts                       # 6000-call burst, 600 facts/s for 5 s
    .venv/bin/python -m bench.facts --calls 2000 --rate 1200 --seconds 3
    .venv/bin/python -m bench.facts --spool-dir var/bench  # the spool on another disk
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from sambung.engine import db
from sambung.engine.facts import (
    CallAnsweredFact,
    CallEndedFact,
    CallStartedFact,
    Fact,
    FactWriter,
    IvrSessionStartedFact,
    IvrStepFact,
    _Rec,
)
from sambung.engine.metrics import build_metrics
from tests.dbutil import fresh_database

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def call_facts(i: int) -> list[Fact]:
    cid = f"bench-{i}"
    t = T0 + timedelta(seconds=i)
    return [
        CallStartedFact(cid, "inbound", f"PJSIP/trunk-{i}", "1600", "0811", "", None, "a", "e", t),
        CallAnsweredFact(cid, t),
        IvrSessionStartedFact(cid, "main", "v1", t, "en"),
        IvrStepFact(cid, 1, t, "menu", "menu", "1"),
        IvrStepFact(cid, 2, t, "pay", "menu", "2"),
        CallEndedFact(cid, t + timedelta(seconds=30), "completed", 16, "Normal Clearing", None),
    ]


def facts(calls: int) -> Iterator[Fact]:
    for i in range(calls):
        yield from call_facts(i)


class MemoryQueueWriter:
    """The writer as it was before the spool: the same loop, without its retry and spill."""

    def __init__(self, pool: asyncpg.Pool, on_commit: Callable[[int], None]) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[tuple[int, Fact]] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._on_commit = on_commit
        self._n = 0

    def record(self, fact: Fact) -> int:
        self._n += 1
        self._queue.put_nowait((self._n, fact))
        self._idle.clear()
        return self._n

    async def run(self) -> None:
        while True:
            n, fact = await self._queue.get()
            async with self._pool.acquire() as conn:
                await conn.execute(fact.sql, *fact.args())
            self._on_commit(n)
            if self._queue.empty():
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        await asyncio.wait_for(self._idle.wait(), timeout)
        return True

    @property
    def last_n(self) -> int:
        return self._n


class TimedFactWriter(FactWriter):
    """The engine's writer, telling the bench when each batch has committed."""

    on_commit: Callable[[int], None] = staticmethod(lambda n: None)

    def _done(self, batch: list[_Rec]) -> None:
        super()._done(batch)
        for rec in batch:
            self.on_commit(rec.n)

    @property
    def last_n(self) -> int:
        return self._n


Writer = MemoryQueueWriter | TimedFactWriter


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def burst(w: Writer, calls: int) -> dict[str, float]:
    all_facts = list(facts(calls))
    t0 = time.perf_counter()
    for f in all_facts:
        w.record(f)
    recorded = time.perf_counter() - t0
    await w.drain(600)
    elapsed = time.perf_counter() - t0
    return {
        "facts": len(all_facts),
        "per_s": len(all_facts) / elapsed,
        "record_us": 1e6 * recorded / len(all_facts),
    }


async def paced(
    w: Writer, commits: dict[int, float], rate: float, seconds: float, first_call: int
) -> dict[str, float]:
    """Record ``rate`` facts a second, a tick every 10 ms; latency per fact to commit."""
    started: dict[int, float] = {}
    on_disk: list[float] = []
    waits: list[asyncio.Task[None]] = []
    stream = facts(first_call + int(rate * seconds / 6) + 2)
    for _ in range(first_call * 6):
        next(stream)
    tick = 0.01
    per_tick = rate * tick
    owed = 0.0
    loop = asyncio.get_running_loop()
    t_end = loop.time() + seconds
    next_tick = loop.time()

    async def durable_after(t: float) -> None:
        assert isinstance(w, TimedFactWriter)
        await w.durable(30)
        on_disk.append(time.perf_counter() - t)

    while loop.time() < t_end:
        owed += per_tick
        while owed >= 1:
            owed -= 1
            t = time.perf_counter()
            w.record(next(stream))
            started[w.last_n] = t
        if isinstance(w, TimedFactWriter):
            waits.append(asyncio.create_task(durable_after(time.perf_counter())))
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
    await w.drain(120)
    await asyncio.gather(*waits)
    lat = [commits[n] - t for n, t in started.items()]
    out = {
        "facts": len(lat),
        "commit_p50_ms": 1000 * statistics.median(lat),
        "commit_p99_ms": 1000 * pct(lat, 0.99),
        "commit_max_ms": 1000 * max(lat),
    }
    if on_disk:
        out["disk_p50_ms"] = 1000 * statistics.median(on_disk)
        out["disk_p99_ms"] = 1000 * pct(on_disk, 0.99)
    return out


async def run_path(path: str, args: argparse.Namespace, spool_dir: Path) -> dict[str, float]:
    async with fresh_database("sambung_bench") as url:
        pool = await db.connect_pool(url, 1, 4)
        try:
            async with pool.acquire() as conn:
                await db.migrate(conn)
            commits: dict[int, float] = {}

            def committed(n: int) -> None:
                commits[n] = time.perf_counter()

            w: Writer
            if path == "memory":
                w = MemoryQueueWriter(pool, committed)
            else:
                w = TimedFactWriter(pool, build_metrics(), spool_dir / f"facts-{path}.spool")
                w.on_commit = committed
                w.replay_spool()
            task = asyncio.create_task(w.run())
            try:
                b = await burst(w, args.calls)
                p = await paced(w, commits, args.rate, args.seconds, args.calls)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                if isinstance(w, TimedFactWriter):
                    w.close()
            rows = await pool.fetchval("SELECT count(*) FROM calls")
            assert rows >= args.calls, f"{path}: only {rows} calls rows"
            return {f"burst_{k}": v for k, v in b.items()} | {f"paced_{k}": v for k, v in p.items()}
        finally:
            await pool.close()


async def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=6000, help="calls in the burst (6 facts each)")
    ap.add_argument("--rate", type=float, default=600.0, help="facts per second, paced")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the paced run")
    ap.add_argument("--spool-dir", type=Path, default=None, help="where the spool goes")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.spool_dir, prefix="sambung-bench-") as tmp:
        results = {path: await run_path(path, args, Path(tmp)) for path in ("memory", "spool")}
    m, s = results["memory"], results["spool"]
    print(f"burst: {int(m['burst_facts'])} facts ({args.calls} calls x 6), recorded at once")
    for name, r in results.items():
        print(
            f"  {name:7} {r['burst_per_s']:9.0f} facts/s committed   "
            f"record() {r['burst_record_us']:5.1f} us/fact"
        )
    print(f"  spool/memory throughput: {s['burst_per_s'] / m['burst_per_s']:.2f}x")
    print(f"paced: {args.rate:.0f} facts/s for {args.seconds:.0f} s, record -> commit")
    for name, r in results.items():
        line = (
            f"  {name:7} p50 {r['paced_commit_p50_ms']:6.2f} ms"
            f"  p99 {r['paced_commit_p99_ms']:6.2f} ms  max {r['paced_commit_max_ms']:6.2f} ms"
            f"  ({int(r['paced_facts'])} facts)"
        )
        if "paced_disk_p50_ms" in r:
            line += (
                f"\n          on disk (counts from here): p50 {r['paced_disk_p50_ms']:.2f} ms"
                f"  p99 {r['paced_disk_p99_ms']:.2f} ms"
            )
        print(line)
    added = s["paced_commit_p50_ms"] - m["paced_commit_p50_ms"]
    added99 = s["paced_commit_p99_ms"] - m["paced_commit_p99_ms"]
    print(f"  added by the spool: p50 {added:+.2f} ms, p99 {added99:+.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
