"""Faults on the real thing: the ARI connection cut mid-call, Asterisk crashed, the engine
killed while PostgreSQL is away; and the suite's own guard that puts the sandbox back.

Every test here that breaks something asks for ``fault_scope`` (tests/integration/conftest.py):
whatever happens, the processes it started are stopped by PID and Asterisk and PostgreSQL
answer again when it ends. Every ops/sandbox call goes through ``run_sandbox*``, so a failed
call shows its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from structlog.testing import capture_logs

from sambung.engine.facts import read_spool
from tests.fakes.tcp_proxy import FaultProxy
from tests.integration.harness import (
    ARI_URL,
    EXAMPLE_HOTLINE,
    LONG_HOTLINE,
    ROOT,
    ari_up,
    engine_database,
    running_engine,
    sipp,
)
from tests.integration.sandbox import (
    FaultScope,
    SandboxError,
    ensure_sandbox,
    run_sandbox,
    run_sandbox_async,
)


async def test_given_a_call_up_when_the_ari_socket_is_cut_then_engine_recovers_and_serves() -> None:
    target = urlsplit(ARI_URL)
    proxy = await FaultProxy(target.hostname or "127.0.0.1", target.port or 8088).start()
    try:
        with capture_logs() as logs:
            async with running_engine(
                ari_url=f"http://127.0.0.1:{proxy.port}", hotlines=[LONG_HOTLINE, EXAMPLE_HOTLINE]
            ) as run:
                call = asyncio.create_task(sipp("uac_wait_bye.xml", "1501"))
                await run.wait_open(did="1501")
                # Cut every connection and keep refusing for longer than the rest of the
                # greeting: its PlaybackFinished is lost, so only reconciliation can finish it.
                proxy.refuse_for(6.0)
                result = await call
                assert result.returncode == 0, result.output
                row = await run.wait_closed(did="1501")
                assert row["end_reason"] == "completed"
                assert run.engine.metrics.ari_reconnects._value.get() >= 1
                # The next call works as if nothing happened.
                assert (await sipp("uac_wait_bye.xml", "1500")).returncode == 0
                assert (await run.wait_closed(did="1500"))["end_reason"] == "completed"
        names = [e["event"] for e in logs]
        assert names.count("ari.disconnected") == 1, names
        assert names.count("ari.connected") >= 2
    finally:
        await proxy.close()


async def test_given_a_call_up_when_asterisk_crashes_then_call_closed_and_next_served(
    fault_scope: FaultScope,
) -> None:
    async with running_engine(hotlines=[LONG_HOTLINE, EXAMPLE_HOTLINE]) as run:
        call = asyncio.create_task(sipp("uac_wait_bye.xml", "1501", timeout=30))
        row = await run.wait_open(did="1501")
        # SIGKILL: Asterisk sends no hang-up and no event; only its new start-up time tells.
        # Not blocking: the engine under test runs in this event loop.
        await run_sandbox_async("restart", "--crash")
        call.cancel()  # that caller's call died with Asterisk; free the trunk's port
        with contextlib.suppress(asyncio.CancelledError):
            await call
        closed = await run.wait_closed(timeout=60, call_id=row["call_id"])
        assert closed["end_reason"] == "asterisk_restart"
        await run.wait_connected(60)
        result = await sipp("uac_wait_bye.xml", "1500")
        assert result.returncode == 0, result.output
        assert (await run.wait_closed(did="1500"))["end_reason"] == "completed"


# ---- the engine killed while PostgreSQL is away ---------------------------------------------

ENGINE_CONFIG = """
[engine]
instance_id = "faults-spool"
log_format = "json"
log_level = "info"
spool_dir = "{spool}"
drain_timeout_seconds = 2
[http]
port = {port}
api_tokens = ["integration-token-0123456789"]
[database]
url = "{db}"
retry_max_seconds = 0.5
[ari]
backoff_initial_seconds = 0.2
backoff_max_seconds = 2.0
[[hotlines]]
did = "1500"
name = "Collections hotline"
greeting = ["sound:sambung/welcome", "sound:hello-world"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


async def start_engine(
    scope: FaultScope, config: Path, log: Path, port: int
) -> asyncio.subprocess.Process:
    """``sambung run`` as a process of its own (so that it can be SIGKILLed), ready or failed."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        proc = scope.track(
            await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "sambung"),
                "run",
                env={**os.environ, "SAMBUNG_CONFIG": str(config)},
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
            )
        )
    finally:
        os.close(fd)
    deadline = time.monotonic() + 30
    while not await asyncio.to_thread(ready, port):
        if proc.returncode is not None or time.monotonic() > deadline:
            pytest.fail(f"the engine did not get ready; its log:\n{tail(log)}")
        await asyncio.sleep(0.2)
    return proc


async def test_given_postgres_away_when_the_engine_is_killed_then_its_facts_land_after_restart(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    spool_dir = tmp_path / "spool"
    spool = spool_dir / "facts-faults-spool.jsonl"
    log = tmp_path / "engine.log"
    port = free_port()
    async with engine_database() as (url, pool):
        # The engine reaches PostgreSQL through a proxy that can turn it away: the machine's
        # server itself is never stopped.
        db = urlsplit(url)
        proxy = await FaultProxy(db.hostname or "127.0.0.1", db.port or 5432).start()
        try:
            via_proxy = urlunsplit(db._replace(netloc=f"{db.username}@127.0.0.1:{proxy.port}"))
            config = tmp_path / "engine.toml"
            config.write_text(ENGINE_CONFIG.format(spool=spool_dir, port=port, db=via_proxy))
            first = await start_engine(fault_scope, config, log, port)

            proxy.refuse_for(600)  # PostgreSQL is away from here on
            for _ in range(2):
                result = await sipp("uac_wait_bye.xml", "1500")
                assert result.returncode == 0, result.output
            # The calls' facts (started, answered, ended) are on disk, nowhere else.
            deadline = time.monotonic() + 10
            while len(read_spool(spool.read_bytes()).records) < 6:
                assert time.monotonic() < deadline, f"spool: {spool.read_bytes()!r}"
                await asyncio.sleep(0.1)
            assert await pool.fetchval("SELECT count(*) FROM calls WHERE did = '1500'") == 0

            os.kill(first.pid, signal.SIGKILL)  # no shutdown, no flush: a crash
            assert await first.wait() == -signal.SIGKILL

            proxy.refuse_for(0)  # PostgreSQL is back
            second = await start_engine(fault_scope, config, log, port)
            deadline = time.monotonic() + 20
            while True:
                rows = await pool.fetch(
                    "SELECT * FROM calls WHERE did = '1500' AND ended_at IS NOT NULL"
                )
                if len(rows) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert len(rows) == 2, tail(log)
            # Replayed in order, before anything else: each call ended as it really did, not
            # closed by the new engine's start-up as left open.
            assert {r["end_reason"] for r in rows} == {"completed"}
            assert all(r["answered_at"] is not None for r in rows)
            text = log.read_text()
            assert '"facts.spool_replayed"' in text
            assert '"facts.rejected"' not in text

            second.terminate()
            assert await second.wait() == 0
            assert read_spool(spool.read_bytes()).records == []
        finally:
            await proxy.close()


async def test_given_postgres_sessions_shut_down_mid_writes_then_no_fact_is_rejected() -> None:
    """PostgreSQL ends the engine's sessions again and again while calls are written (what a
    server restart or a failover does to its clients: SQLSTATE 57P01, admin shutdown). Those
    are transient: the facts are retried until written, none is set aside as rejected."""
    async with running_engine(hotlines=[EXAMPLE_HOTLINE, LONG_HOTLINE]) as run:
        killer = await asyncpg.connect(run.database_url)
        stop = asyncio.Event()
        ended = 0

        async def shut_down_sessions() -> None:
            nonlocal ended
            while not stop.is_set():
                ended += await killer.fetchval(
                    """SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
                       FROM pg_stat_activity
                       WHERE datname = current_database() AND pid <> pg_backend_pid()"""
                )
                await asyncio.sleep(0.25)

        shutting = asyncio.create_task(shut_down_sessions())
        try:
            # One after another from the trunk's own port (the sandbox knows the carrier by
            # it), each call's facts written while sessions keep being shut down.
            results = [await sipp("uac_wait_bye.xml", did) for did in ("1500", "1501", "1500")]
        finally:
            stop.set()
            await shutting
            await killer.close()
        for r in results:
            assert r.returncode == 0, r.output
        assert ended > 0, "no session was ever shut down: the test proved nothing"
        facts = run.engine.facts
        assert facts is not None
        deadline = time.monotonic() + 30
        while facts.pending:
            assert time.monotonic() < deadline, f"{facts.pending} facts still pending"
            await asyncio.sleep(0.2)
        metrics = run.engine.metrics.registry
        assert metrics.get_sample_value("sambung_facts_rejected_total") in (None, 0.0)
        retries = metrics.get_sample_value("sambung_db_write_retries_total") or 0.0
        conn = await asyncpg.connect(run.database_url)  # the test's pool saw the shutdowns too
        try:
            rows = await conn.fetch(
                "SELECT did, end_reason FROM calls WHERE ended_at IS NOT NULL ORDER BY started_at"
            )
        finally:
            await conn.close()
        # Every call is there, closed as it really ended, whatever was cut in between.
        assert [r["did"] for r in rows] == ["1500", "1501", "1500"], (rows, retries)
        assert {r["end_reason"] for r in rows} == {"completed"}, rows


# ---- the suite's guard ------------------------------------------------------------------------


def test_a_failed_sandbox_call_shows_its_output() -> None:
    with pytest.raises(SandboxError) as e:
        run_sandbox("restart", "--no-such-option", timeout=60)
    text = str(e.value)
    assert "ops/sandbox restart --no-such-option exited 2" in text
    assert "restart takes no argument but --crash" in text  # its stderr, shown


async def test_given_asterisk_is_down_then_the_guard_brings_it_back(
    fault_scope: FaultScope,
) -> None:
    await run_sandbox_async("down")
    assert not ari_up()
    # What the autouse fixture does before every integration test.
    done = await asyncio.to_thread(ensure_sandbox)
    assert done == ["ops/sandbox up (exit 0)"]
    assert ari_up()
