"""A hot standby on the real Asterisk: two engines share one lease in PostgreSQL
(``[engine] lease = true``, sambung/engine/lease.py); the standby takes over the callers when the
active engine dies, and an engine that lost its lease stops touching calls.

Engines are ``sambung run`` processes stopped by their PIDs (``fault_scope``); callers are SIPp
on the carrier trunk, the agent a SIPp desk phone. The lease lasts 4 s and is renewed each
second here, so a takeover is due within about 5 s of a crash, plus the start of the full
service.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from sambung.acd.place import parse_place
from tests.integration.adoption_rig import Callers, place_on, readiness
from tests.integration.harness import ari_get
from tests.integration.sandbox import FaultScope
from tests.integration.test_adoption import (
    check_served_in_order,
    floor,
    queued,
    serve_all,
    until,
)

pytestmark = pytest.mark.timeout(240)

TTL, RENEW = 4.0, 1.0
# A lease lapses TTL after the last renewal; the standby asks every RENEW; then it starts
# the full service and adopts. Generous on a loaded two-core machine.
TAKEOVER_BOUND = TTL + RENEW + 10.0


async def test_given_a_standby_when_the_active_engine_is_killed_then_it_takes_over_the_callers(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    n = 4
    lease: dict[str, Any] = {"lease": True, "lease_ttl": TTL, "lease_renew": RENEW}
    async with floor(tmp_path, fault_scope) as f:
        alpha = await f.start(f.engine("alpha", instance="alpha", **lease))
        beta = await f.start(f.engine("beta", instance="beta", **lease), role="standby")
        # The standby is alive and says what it is, but takes no traffic.
        body = readiness(beta.port)
        assert body is not None
        assert body["role"] == "standby", body
        assert body["ready"] is False, body
        assert beta.metric('sambung_engine_active{instance="beta"}') == 0.0
        assert alpha.metric('sambung_engine_active{instance="alpha"}') == 1.0

        callers = Callers(f.work, n, every=0.6)
        await callers.start()
        try:
            ids = await queued(f, alpha, n)
            await alpha.kill()
            killed = time.monotonic()

            async def active() -> bool:
                b = await asyncio.to_thread(readiness, beta.port)
                return b is not None and b.get("role") == "active" and bool(b.get("ready"))

            await until(active, "the standby active", TAKEOVER_BOUND)
            took = time.monotonic() - killed

            async def taken_over() -> bool:
                return await beta.waiting() == n

            await until(taken_over, f"{n} callers taken over", 15)

            async def places_rewritten() -> bool:
                tags = [parse_place(place_on(cid)) for cid in ids]
                return all(t is not None and t.generation == 1 for t in tags)

            await until(places_rewritten, "the places rewritten by the standby", 10)
            # Counted as a takeover from another instance, and the standby is now active.
            assert beta.metric('sambung_engine_takeovers_total{instance="beta"}') == 1.0
            assert beta.metric('sambung_engine_active{instance="beta"}') == 1.0
            # Nobody was hung up meanwhile, and every caller is served in the order they
            # called; the rows the dead engine opened are closed by the one that took over.
            await serve_all(f, beta, callers, n)
            await check_served_in_order(f, ids)
            assert took < TAKEOVER_BOUND, took
            assert await beta.terminate() == 0, beta.tail()
        finally:
            await callers.stop()


async def test_given_an_engine_frozen_past_its_lease_when_it_wakes_then_it_stops_untouching(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    """SIGSTOP the active engine for longer than its lease: the standby takes over and adopts
    the callers. On SIGCONT the old engine finds its lease gone and exits (75, to be started
    again as a standby) without ending, moving or hanging up any call."""
    n = 2
    lease: dict[str, Any] = {"lease": True, "lease_ttl": TTL, "lease_renew": RENEW}
    async with floor(tmp_path, fault_scope) as f:
        alpha = await f.start(f.engine("alpha", instance="alpha", **lease))
        beta = await f.start(f.engine("beta", instance="beta", **lease), role="standby")
        callers = Callers(f.work, n, every=0.6)
        await callers.start()
        try:
            ids = await queued(f, alpha, n)
            assert alpha.proc is not None
            os.kill(alpha.proc.pid, signal.SIGSTOP)
            try:

                async def taken_over() -> bool:
                    b = await asyncio.to_thread(readiness, beta.port)
                    return bool(b and b.get("role") == "active") and await beta.waiting() == n

                await until(taken_over, "the standby active with the callers", TAKEOVER_BOUND + 15)
            finally:
                os.kill(alpha.proc.pid, signal.SIGCONT)
            code = await asyncio.wait_for(alpha.proc.wait(), 20)
            assert code == 75, alpha.tail()
            assert "engine.fenced" in alpha.tail(20000)
            # The callers are still there, waiting with the standby's places.
            live = {c["id"] for c in ari_get("/channels")}
            assert set(ids) <= live
            tags = [parse_place(place_on(cid)) for cid in ids]
            assert all(t is not None and t.generation == 1 for t in tags), tags
            await serve_all(f, beta, callers, n)
            await check_served_in_order(f, ids)
            assert await beta.terminate() == 0, beta.tail()
        finally:
            await callers.stop()


async def test_a_second_engine_with_a_live_instance_id_is_refused(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    lease: dict[str, Any] = {"lease": True, "lease_ttl": TTL, "lease_renew": RENEW}
    async with floor(tmp_path, fault_scope) as f:
        await f.start(f.engine("alpha", instance="alpha", **lease))
        twin = f.engine("twin", instance="alpha", **lease)
        with pytest.raises(AssertionError, match="did not get ready"):
            await f.start(twin, role="standby")
        assert twin.proc is not None
        code = await asyncio.wait_for(twin.proc.wait(), 20)
        assert code != 0
        assert "another engine runs as instance 'alpha'" in twin.tail(20000), twin.tail()
