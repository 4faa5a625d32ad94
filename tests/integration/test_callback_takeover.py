"""A callback's talk through an engine kill or stop, on the real Asterisk with SIPp: the agent's
desk phone and the called-back customer talk on, and the next engine finds the talk from the
attempt's bridge and legs alone, puts the agent back on the call and closes it when the agent
hangs up, with the whole talk time.

The engine is a process of its own (tests/integration/engine_proc.py) so that it can be killed
by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from tests.integration.adoption_rig import free_port, proc_engines
from tests.integration.callers import Pause, Press
from tests.integration.harness import engine_database
from tests.integration.phones import AgentPhone, Answer
from tests.integration.sandbox import FaultScope
from tests.integration.test_acd import PHONES, Api, acd_sections, caller, wait_for

pytestmark = pytest.mark.timeout(240)


def callback_sections() -> dict[str, Any]:
    """A support queue with a callback key, and callbacks allowed at any hour of any day (the
    rules are checked as they are, with a calendar of no holidays)."""
    sections = acd_sections(callback_key="1")
    year = datetime.now(UTC).year
    sections["calendars"] = {"always-open": {"package": False, "years": [year - 1, year, year + 1]}}
    sections["acd"]["callbacks"] = {
        "calendar": "always-open",
        "days": list(range(7)),
        "start": "00:00",
        "end": "23:59",
        "last_dial_margin_minutes": 0,
    }
    return sections


@pytest.mark.parametrize("how", ["kill", "term"])
async def test_given_a_callbacks_talk_when_the_engine_goes_then_the_talk_goes_on(
    tmp_path: Path, fault_scope: FaultScope, how: str
) -> None:
    talk_for = 16.0
    port = free_port()
    async with (
        engine_database() as (url, pool),
        aiohttp.ClientSession() as http,
        AgentPhone(*PHONES["siti"], workdir=tmp_path / "siti") as siti,
        AgentPhone("customers", "", 5080, workdir=tmp_path / "customer") as customer,
    ):
        spec: dict[str, Any] = {
            "database_url": url,
            **callback_sections(),
            "http": {"port": port},
            "engine": {"instance_id": f"callback-{how}", "spool_dir": str(tmp_path / "spool")},
        }
        first, second = proc_engines(tmp_path, spec, port)
        api = Api(SimpleNamespace(engine=SimpleNamespace(http_port=port)), http)  # type: ignore[arg-type]
        try:
            fault_scope.track(await first.start(timeout=60))
            await siti.register()
            await siti.serve(Answer(ring=0.2, hang_up_after=talk_for), calls=1, timeout=120)
            await customer.serve("answer", calls=1, timeout=120)
            # Nobody is logged in: the caller asks for a callback and the engine says goodbye.
            await caller(
                tmp_path, "cb", [Pause(1500), Press("1")], number="0812345678", hang_up=False
            )

            async def online() -> bool:
                view = await api.ok("GET", "/api/v1/agents/siti")
                return bool(view["phone_online"])

            await wait_for(online, 10, "siti online")
            await api.ok("POST", "/api/v1/agents/siti/login")

            async def talking() -> Any:
                return await pool.fetchrow(
                    """SELECT call_id FROM call_legs
                       WHERE kind = 'customer' AND answered_at IS NOT NULL"""
                )

            row = await wait_for(talking, 30, "the customer called back and talking")
            cid = row["call_id"]
            # The engine goes a second after the customer answered: perhaps before it put
            # the customer through to the agent (the next engine does it then).
            await asyncio.sleep(1.0)
            if how == "kill":
                await first.kill()
            else:
                assert await first.terminate(30) == 0, first.tail()
                assert "acd.callback_talk_handed_over" in first.tail(40000), first.tail()
            fault_scope.track(await second.start(timeout=60))

            async def on_call() -> bool:
                view = await api.ok("GET", "/api/v1/agents/siti")
                return bool(view["state"] == "on_call")

            await wait_for(on_call, 10, "siti on the call with the new engine")
            # The agent's phone hangs up by itself; the engine hangs the customer up.
            assert await siti.finish(talk_for + 30) == 0
            assert await customer.finish(20) == 0

            async def closed() -> Any:
                return await pool.fetchrow(
                    "SELECT * FROM calls WHERE call_id = $1 AND ended_at IS NOT NULL", cid
                )

            call = await wait_for(closed, 15, "the callback's call closed")
            deadline = time.monotonic() + 10
            while await pool.fetchval(
                "SELECT count(*) FROM call_legs WHERE call_id = $1 AND ended_at IS NULL", cid
            ):
                assert time.monotonic() < deadline, second.tail()
                await asyncio.sleep(0.2)

            async def wrapped() -> bool:
                view = await api.ok("GET", "/api/v1/agents/siti")
                return bool(view["state"] in ("wrap_up", "ready"))

            await wait_for(wrapped, 10, "siti wrapping up")
            # Called back once: nothing of the callback is left to be made again.
            view = await api.ok("GET", "/api/v1/queues")
            assert all(q["calls"] == [] for q in view["queues"]), view
            unsettled = await pool.fetchval(
                "SELECT count(*) FROM pending_callbacks WHERE settled_at IS NULL"
            )
            assert unsettled == 0
            assert len(customer.invites) == 1
            log_text = second.tail(60000)
        finally:
            with contextlib.suppress(Exception):
                await second.terminate(30)

        assert "acd.callback_talk_taken_over" in log_text, log_text[-4000:]
        assert call["end_reason"] == "callback_completed", dict(call)
        legs = {
            r["kind"]: r
            for r in await pool.fetch("SELECT * FROM call_legs WHERE call_id = $1", cid)
        }
        assert legs["customer"]["outcome"] == "answered"
        # The whole talk, from the agent's answer before the restart to the hang-up (the
        # agent is on from before the customer is rung: a few seconds more at most).
        talk = legs["agent"]["talk_seconds"]
        assert talk_for - 2 < talk < talk_for + 6, dict(legs["agent"])
