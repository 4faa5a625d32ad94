"""The whole engine counts each call once, by how it ended: the fake ARI and real PostgreSQL.

The unit tests drive the dispatcher with facts by hand; here the facts come from the features
themselves, recorded through the engine's own fact writer from the call's task.
"""

from __future__ import annotations

import asyncio

from sambung.engine.metrics import Metrics
from tests.fakes.fake_ari import FakeAri
from tests.integration.harness import RunningEngine, running_engine

NO_AMI = {"enabled": False}


def calls(m: Metrics, direction: str, outcome: str) -> float:
    labels = {"direction": direction, "outcome": outcome}
    return m.registry.get_sample_value("sambung_calls_total", labels) or 0.0


def counted(m: Metrics) -> float:
    return m.registry.get_sample_value("sambung_call_duration_seconds_count") or 0.0


async def until_counted(run: RunningEngine, n: int, timeout: float = 5.0) -> None:
    # The calls row closes when the end fact is written; the call's task ends just after.
    deadline = asyncio.get_running_loop().time() + timeout
    while counted(run.engine.metrics) < n:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{n} calls not counted within {timeout}s")
        await asyncio.sleep(0.05)


async def test_given_hotline_calls_then_each_counted_by_its_outcome(fake_ari: FakeAri) -> None:
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        m = run.engine.metrics
        done = await fake_ari.inbound_call("1700000000.21", did="1500")
        row = await run.wait_closed(call_id=done, timeout=5)
        await until_counted(run, 1)
        assert calls(m, "inbound", "completed") == 1
        length = (row["ended_at"] - row["started_at"]).total_seconds()
        total = m.registry.get_sample_value("sambung_call_duration_seconds_sum")
        assert total is not None
        assert abs(total - length) < 0.01  # the facts' own times, offer to end

        unknown = await fake_ari.inbound_call("1700000000.22", did="4242")
        await run.wait_closed(call_id=unknown, timeout=5)
        await until_counted(run, 2)
        assert calls(m, "inbound", "refused") == 1

        fake_ari.playback_duration = 5.0
        gone = await fake_ari.inbound_call("1700000000.23")
        await run.wait_open(call_id=gone, timeout=5)
        await fake_ari.caller_hangup(gone)
        await run.wait_closed(call_id=gone, timeout=5)
        await until_counted(run, 3)
        assert calls(m, "inbound", "abandoned") == 1


async def test_given_asterisk_restarts_mid_call_then_the_call_is_counted_lost(
    fake_ari: FakeAri,
) -> None:
    fake_ari.playback_duration = 30.0
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        cid = await fake_ari.inbound_call("1700000000.24")
        await run.wait_open(call_id=cid, timeout=5)
        fake_ari.restart()
        await fake_ari.drop_connections()
        await run.wait_closed(call_id=cid, timeout=10)
        await until_counted(run, 1)
        assert calls(run.engine.metrics, "inbound", "lost") == 1
