"""Write-ahead facts against the real PostgreSQL: a crash loses nothing and doubles nothing,
and only a row the database refuses for its values is set aside.

``TallyFact`` inserts a plain row with no key, so a fact written twice shows as two rows: the
tests count rows per key to prove "exactly once", which the idempotent statements of the
real facts could not show.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from structlog.testing import capture_logs

from sambung.engine.facts import CallStartedFact, Fact, FactWriter, read_spool, register_facts
from sambung.engine.metrics import Metrics, build_metrics
from tests.dbutil import migrated_pool, running

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TALLY_TABLE = "CREATE TABLE fact_tally (k text NOT NULL)"


@dataclass(frozen=True, slots=True)
class TallyFact(Fact):
    sql = "INSERT INTO fact_tally (k) VALUES ($1)"
    k: str


register_facts(TallyFact)


def started(cid: str, direction: str = "inbound") -> CallStartedFact:
    return CallStartedFact(cid, direction, "", "1500", "0811", "", None, "ast", "e1", T)


async def tally(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT k, count(*) AS n FROM fact_tally GROUP BY k")
    return {r["k"]: r["n"] for r in rows}


def counter(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


async def eventually(check: object, timeout: float = 5.0, every: float = 0.05) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(every)


# ---- a crash ---------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from pathlib import Path
from sambung.engine import db
from sambung.engine.facts import FactWriter
from sambung.engine.metrics import build_metrics
from tests.component.test_fact_spool import TallyFact

async def main(url: str, spool: str, n: int) -> None:
    pool = await db.connect_pool(url, 1, 2)
    w = FactWriter(pool, build_metrics(), Path(spool), batch_max=10)
    w.replay_spool()
    for i in range(n):
        w.record(TallyFact(f"k{i}"))
    assert await w.durable(30)
    print("durable", flush=True)
    await w.run()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_given_the_engine_is_killed_mid_write_then_every_fact_lands_exactly_once(
    tmp_path: Path,
) -> None:
    n = 4000
    spool = tmp_path / "facts.spool"
    async with migrated_pool() as pool:
        await pool.execute(TALLY_TABLE)
        dsn = pool._connect_args[0]  # type: ignore[attr-defined]
        # A real process, killed with SIGKILL: no shutdown, no flush, no spool clean-up.
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            dsn,
            str(spool),
            str(n),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line.strip() == b"durable"

            async def some_committed() -> bool:
                return int(await pool.fetchval("SELECT count(*) FROM fact_tally")) >= n // 4

            await eventually(some_committed, 30, every=0.005)
        finally:
            with suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            await child.wait()
        assert child.returncode == -signal.SIGKILL
        before = await tally(pool)
        assert 0 < len(before) < n, "the kill came after the writer had finished"

        metrics = build_metrics()
        w = FactWriter(pool, metrics, spool, batch_max=100)
        with capture_logs() as logs:
            assert w.replay_spool() >= n - len(before)
            async with running(w):
                assert await w.replayed(30)
                assert await w.drain(5)
        after = await tally(pool)
        assert len(after) == n
        assert {k for k, c in after.items() if c != 1} == set()
        assert counter(metrics, "sambung_facts_rejected_total") == 0
        assert any(e["event"] == "facts.spool_replayed" for e in logs)
        assert read_spool(spool.read_bytes()).records == []

        async def marks_cleared() -> bool:
            # The killed run's generation left the spool, so its mark is deleted too (this
            # run's own generation never committed anything).
            return int(await pool.fetchval("SELECT count(*) FROM fact_spool_marks")) == 0

        w2 = FactWriter(pool, build_metrics(), spool)
        async with running(w2):
            await eventually(marks_cleared)


async def test_given_a_crash_after_the_commit_before_the_spool_caught_up_then_replay_skips(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "facts.spool"
    async with migrated_pool() as pool:
        await pool.execute(TALLY_TABLE)
        w1 = FactWriter(pool, build_metrics(), spool, batch_max=40)
        for i in range(200):
            w1.record(TallyFact(f"k{i}"))
        assert await w1.durable(5)
        on_disk = spool.read_bytes()  # what the spool held when the facts were committed
        async with running(w1):
            assert await w1.drain(5)
        assert read_spool(spool.read_bytes()).records == []
        # The crash: the commits happened, the spool's truncation never reached the disk; and
        # the last append was cut short.
        spool.write_bytes(on_disk + b'0badc0de F 201 {"type":"TallyF')
        w2 = FactWriter(pool, build_metrics(), spool)
        with capture_logs() as logs:
            assert w2.replay_spool() == 200
            w2.record(TallyFact("new"))
            async with running(w2):
                assert await w2.drain(5)
        counts = await tally(pool)
        assert len(counts) == 201
        assert set(counts.values()) == {1}
        assert [e["event"] for e in logs].count("facts.spool_torn_line_skipped") == 1


async def test_given_the_spool_is_compacted_under_load_then_a_crash_still_loses_nothing(
    tmp_path: Path,
) -> None:
    n = 3000
    spool = tmp_path / "facts.spool"
    async with migrated_pool() as pool:
        await pool.execute(TALLY_TABLE)
        # Small batches and a small compaction threshold: the file is rewritten again and
        # again while facts are still waiting and commits keep coming.
        w1 = FactWriter(pool, build_metrics(), spool, batch_max=20, compact_bytes=4096)
        for i in range(n):
            w1.record(TallyFact(f"k{i}"))
        assert await w1.durable(5)
        full = len(spool.read_bytes())
        task = asyncio.create_task(w1.run())

        async def rewritten_midway() -> bool:
            # The spool thread rewrites the file a moment after the commits it drops (later
            # on a busy machine): wait for a rewrite, not only for the commits.
            done = int(await pool.fetchval("SELECT count(*) FROM fact_tally"))
            return done >= n // 4 and len(spool.read_bytes()) < full

        await eventually(rewritten_midway, 30)
        on_disk = spool.read_bytes()  # what a crash right now would leave
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        w1.close()
        assert len(on_disk) < full  # rewritten: the committed part is gone
        spool.write_bytes(on_disk)
        w2 = FactWriter(pool, build_metrics(), spool)
        assert 0 < w2.replay_spool() < n
        async with running(w2):
            assert await w2.drain(30)
        counts = await tally(pool)
        assert len(counts) == n
        assert set(counts.values()) == {1}


async def test_a_fact_is_on_disk_before_the_database_sees_it(tmp_path: Path) -> None:
    spool = tmp_path / "facts.spool"
    # PostgreSQL is away: the facts still count once they are on disk.
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:9/none", min_size=0)
    w = FactWriter(dead, build_metrics(), spool, retry_max_seconds=0.05)
    try:
        for i in range(3):
            w.record(TallyFact(f"k{i}"))
        assert await w.durable(5)
        got = read_spool(spool.read_bytes())
        assert [s for _, s, _ in got.records] == [1, 2, 3]
        async with running(w):
            assert not await w.drain(0.3)
        assert w.pending == 3
        assert len(read_spool(spool.read_bytes()).records) == 3  # still there: not committed
    finally:
        await dead.close()


# ---- errors ----------------------------------------------------------------------------------


async def test_an_invalid_row_is_set_aside_alone_and_its_batch_lands(tmp_path: Path) -> None:
    spool = tmp_path / "facts.spool"
    async with migrated_pool() as pool:
        await pool.execute(TALLY_TABLE)
        metrics = build_metrics()
        w = FactWriter(pool, metrics, spool)
        w.record(started("a"))
        w.record(TallyFact("before"))
        w.record(started("bad", direction="sideways"))  # the calls table's check refuses it
        w.record(TallyFact("after"))
        w.record(started("c"))
        assert await w.durable(5)  # one batch
        async with running(w):
            assert await w.drain(5)
        assert await tally(pool) == {"before": 1, "after": 1}
        ids = {r["call_id"] for r in await pool.fetch("SELECT call_id FROM calls")}
        assert ids == {"a", "c"}
        assert counter(metrics, "sambung_facts_rejected_total") == 1
        assert counter(metrics, "sambung_db_write_retries_total") == 0
        (line,) = w.rejected_file.read_text().splitlines()
        assert '"sqlstate":"23514"' in line
        assert '"call_id":"bad"' in line
        assert read_spool(spool.read_bytes()).records == []


async def test_given_the_writers_backend_is_terminated_mid_writes_then_nothing_is_rejected(
    tmp_path: Path,
) -> None:
    n = 3000
    spool = tmp_path / "facts.spool"
    async with migrated_pool() as pool:
        await pool.execute(TALLY_TABLE)
        dsn = pool._connect_args[0]  # type: ignore[attr-defined]
        metrics = build_metrics()
        w = FactWriter(pool, metrics, spool, retry_max_seconds=0.2, batch_max=50)
        admin = await asyncpg.connect(dsn)
        killed = 0
        done = asyncio.Event()

        async def produce() -> None:
            for i in range(0, n, 50):
                for j in range(i, i + 50):
                    w.record(TallyFact(f"k{j}"))
                await asyncio.sleep(0.005)
            done.set()

        async def terminate() -> None:
            # pg_terminate_backend: the server ends the session with 57P01 (admin shutdown),
            # as a restart of PostgreSQL does, in the middle of whatever it was writing.
            nonlocal killed
            while not done.is_set():
                await asyncio.sleep(0.03)
                killed += int(
                    await admin.fetchval(
                        """SELECT count(*) FROM (
                               SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                               WHERE datname = current_database() AND pid <> pg_backend_pid()
                           ) t"""
                    )
                )

        try:
            async with running(w):
                await asyncio.gather(produce(), terminate())
                assert await w.drain(30)
        finally:
            await admin.close()
        assert killed >= 3
        assert counter(metrics, "sambung_db_write_retries_total") >= 1
        assert counter(metrics, "sambung_facts_rejected_total") == 0
        assert not w.rejected_file.exists()
        # Counted on a new session: the pool's idle connections were terminated too, and
        # asyncpg may hand one out while it is still taking in the server's goodbye.
        fresh = await asyncpg.connect(dsn)
        try:
            rows = await fresh.fetch("SELECT k, count(*) AS n FROM fact_tally GROUP BY k")
        finally:
            await fresh.close()
        counts = {r["k"]: r["n"] for r in rows}
        assert len(counts) == n
        assert set(counts.values()) == {1}


async def test_given_the_database_turns_read_only_after_a_failover_then_facts_wait(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "facts.spool"
    async with migrated_pool() as pool:
        await pool.execute(TALLY_TABLE)
        dsn = pool._connect_args[0]  # type: ignore[attr-defined]
        name = await pool.fetchval("SELECT current_database()")
        admin = await asyncpg.connect(dsn)
        drop_sessions = """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                           WHERE datname = current_database() AND pid <> pg_backend_pid()"""
        metrics = build_metrics()
        w = FactWriter(pool, metrics, spool, retry_max_seconds=0.1)
        try:
            # New sessions now start read-only, as on a standby (SQLSTATE 25006 on writes).
            await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            await admin.fetchval(drop_sessions)
            async with running(w):
                for i in range(20):
                    w.record(TallyFact(f"k{i}"))

                async def retried() -> bool:
                    return counter(metrics, "sambung_db_write_retries_total") >= 2

                await eventually(retried)
                assert w.pending == 20
                await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
                await admin.fetchval(drop_sessions)
                assert await w.drain(10)
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
            await admin.close()
        assert counter(metrics, "sambung_facts_rejected_total") == 0
        counts = await tally(pool)
        assert len(counts) == 20
        assert set(counts.values()) == {1}


async def test_a_statement_the_schema_does_not_fit_is_retried_not_dropped(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "facts.spool"
    async with migrated_pool() as pool:
        metrics = build_metrics()
        w = FactWriter(pool, metrics, spool, retry_max_seconds=0.1)
        async with running(w):
            w.record(TallyFact("k0"))  # its table is not there yet: 42P01, not the row's fault

            async def retried() -> bool:
                return counter(metrics, "sambung_db_write_retries_total") >= 1

            await eventually(retried)
            await pool.execute(TALLY_TABLE)
            assert await w.drain(5)
        assert await tally(pool) == {"k0": 1}
        assert counter(metrics, "sambung_facts_rejected_total") == 0
