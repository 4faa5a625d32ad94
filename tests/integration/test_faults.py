"""Faults on the real thing: the ARI connection cut mid-call, and Asterisk restarted."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from urllib.parse import urlsplit

from structlog.testing import capture_logs

from tests.fakes.tcp_proxy import FaultProxy
from tests.integration.harness import (
    ARI_URL,
    EXAMPLE_HOTLINE,
    LONG_HOTLINE,
    ROOT,
    running_engine,
    sipp,
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


async def test_given_a_call_up_when_asterisk_crashes_then_call_closed_and_next_served() -> None:
    async with running_engine(hotlines=[LONG_HOTLINE, EXAMPLE_HOTLINE]) as run:
        call = asyncio.create_task(sipp("uac_wait_bye.xml", "1501", timeout=30))
        row = await run.wait_open(did="1501")
        # SIGKILL: Asterisk sends no hang-up and no event; only its new start-up time tells.
        restart = await asyncio.create_subprocess_exec(
            str(ROOT / "ops" / "sandbox"),
            "restart",
            "--crash",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert await restart.wait() == 0
        call.cancel()  # that caller's call died with Asterisk; free the trunk's port
        with contextlib.suppress(asyncio.CancelledError):
            await call
        closed = await run.wait_closed(timeout=60, call_id=row["call_id"])
        assert closed["end_reason"] == "asterisk_restart"
        await run.wait_connected(60)
        result = await sipp("uac_wait_bye.xml", "1500")
        assert result.returncode == 0, result.output
        assert (await run.wait_closed(did="1500"))["end_reason"] == "completed"
