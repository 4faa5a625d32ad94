"""A predictive campaign whose engine is SIGKILLed with lines ringing, on the real Asterisk with
the SIPp customers trunk: no debtor ever has two of our lines at once, the attempts the dead
engine left are closed as ``lost``, and the next engine's rolling window counts what really
happened.

The engine is a process of its own (tests/integration/engine_proc.py) so that it can be killed
by its PID; a sampler asks Asterisk for its channels every 100 ms throughout and maps each to
the number its attempt dialled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from sambung.acd.place import parse_place
from sambung.dialer import outcomes
from tests.integration.adoption_rig import free_port, place_on, proc_engines
from tests.integration.customers import CustomerTrunk
from tests.integration.harness import ari_get, engine_database
from tests.integration.sandbox import FaultScope
from tests.integration.test_acd import Api
from tests.integration.test_dialer import (
    CAMPAIGN,
    csv_for,
    import_list,
    numbers,
    sections,
    staff,
)

pytestmark = pytest.mark.timeout(240)

RING = 20  # seconds: numbers ending in 5 never answer, so their lines ring this long


async def test_given_lines_ringing_when_the_engine_is_killed_then_no_debtor_has_two_at_once(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    # Numbers that ring out (5) and people (0): lines ringing and live answers at the kill.
    nums = [n for n in numbers(40) if n[-1] in "05"][:8]
    port = free_port()
    async with (
        engine_database() as (url, pool),
        CustomerTrunk(tmp_path / "trunk", calls=40),
        aiohttp.ClientSession() as http,
    ):
        spec: dict[str, Any] = {
            "database_url": url,
            **sections(ring_seconds=RING, max_lines=6),
            "http": {"port": port},
            "engine": {"instance_id": "dialer-crash", "spool_dir": str(tmp_path / "spool")},
        }
        first, second = proc_engines(tmp_path, spec, port)
        api = Api(SimpleNamespace(engine=SimpleNamespace(http_port=port)), http)  # type: ignore[arg-type]

        phone_of: dict[str, str] = {}  # attempt id (its channel id) -> the number dialled
        worst: Counter[str] = Counter()
        sampling = True

        async def sample() -> None:
            while sampling:
                for r in await pool.fetch("SELECT attempt_id, phone FROM dial_attempts"):
                    phone_of[r["attempt_id"]] = r["phone"]
                with contextlib.suppress(OSError):
                    live = Counter(
                        phone_of[c["id"]]
                        for c in await asyncio.to_thread(ari_get, "/channels")
                        if c["id"] in phone_of
                    )
                    for phone, n in live.items():
                        worst[phone] = max(worst[phone], n)
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        phones: dict[str, Any] = {}
        try:
            fault_scope.track(await first.start(timeout=60))
            phones = await staff(api, tmp_path, talk=30)
            await import_list(api, csv_for(nums))
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/start")

            async def ringing() -> bool:
                open_ = await pool.fetch(
                    "SELECT attempt_id FROM dial_attempts WHERE ended_at IS NULL"
                )
                chans = {c["id"] for c in await asyncio.to_thread(ari_get, "/channels")}
                return len([r for r in open_ if r["attempt_id"] in chans]) >= 2

            deadline = time.monotonic() + 60
            while not await ringing():
                assert time.monotonic() < deadline, first.tail()
                await asyncio.sleep(0.2)
            in_flight = {
                r["attempt_id"]
                for r in await pool.fetch(
                    "SELECT attempt_id FROM dial_attempts WHERE ended_at IS NULL"
                )
            }
            await first.kill()
            killed = time.time()

            fault_scope.track(await second.start(timeout=60))
            # The dead engine's attempts are closed as lost, and their records wait out the
            # hold (the longest ring and a minute) before anyone dials them again.
            rows = await pool.fetch(
                """SELECT a.attempt_id, a.outcome, a.live_at, a.connected_at, r.next_at
                   FROM dial_attempts a JOIN dial_records r USING (record_id)
                   WHERE a.attempt_id = ANY($1)""",
                sorted(in_flight),
            )
            assert {r["outcome"] for r in rows} == {"lost"}, [dict(r) for r in rows]
            for r in rows:
                assert r["next_at"].timestamp() >= killed + RING + 55, dict(r)
            # The old lines ring out (or are hung up) while the new engine dials others; then
            # the campaign is paused and every line left to end.
            await asyncio.sleep(RING + 3)
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/pause")
            deadline = time.monotonic() + RING + 15
            while await pool.fetchval("SELECT count(*) FROM dial_attempts WHERE ended_at IS NULL"):
                assert time.monotonic() < deadline, second.tail()
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the last end reaches the campaign's window
            view = await api.ok("GET", f"/api/v1/campaigns/{CAMPAIGN}")
        finally:
            sampling = False
            await sampler
            for p in phones.values():
                await p.__aexit__(None, None, None)
            with contextlib.suppress(Exception):
                await second.terminate(30)

        # Nobody ever had two of our lines at once, before, across or after the kill.
        assert worst, "the sampler saw no line at all"
        twice = [phone for phone, n in worst.items() if n > 1]
        if twice:
            # Enough to tell which engine dialled what, when, and how each line ended.
            rows = await pool.fetch(
                """SELECT attempt_id, record_id, created_at, ended_at, outcome, engine_instance
                   FROM dial_attempts WHERE phone = ANY($1) ORDER BY created_at""",
                twice,
            )
            ids = [r["attempt_id"] for r in rows]
            lines = [
                line
                for e in (first, second)
                for line in e.log.read_text(errors="replace").splitlines()
                if any(i in line for i in ids) or "recovered" in line or "stray" in line
            ]
            detail = "\n".join([str(dict(worst)), *map(str, map(dict, rows)), *lines[-80:]])
            raise AssertionError(f"a debtor had two of our lines at once:\n{detail}")
        # The new engine's window counts every attempt ended so far, and as an abandon each
        # live answer no agent took, those the dead engine lost included.
        ended = await pool.fetch(
            "SELECT outcome, live_at, connected_at FROM dial_attempts WHERE ended_at IS NOT NULL"
        )
        window = view["window"]
        assert window["attempts"] == len(ended), (window, [dict(r) for r in ended])
        counted_live = ("connected", "abandoned")
        live = [r for r in ended if r["live_at"] is not None or r["outcome"] in counted_live]
        assert window["live_answers"] == len(live), window
        abandons = sum(
            outcomes.abandoned_in_window(
                r["outcome"], r["live_at"] is not None, r["connected_at"] is not None
            )
            for r in ended
        )
        assert window["abandoned"] == abandons, window


@pytest.mark.parametrize("how", ["kill", "term"])
async def test_given_a_debtor_talking_when_the_engine_goes_then_the_talk_goes_on(
    tmp_path: Path, fault_scope: FaultScope, how: str
) -> None:
    """A debtor answers and talks to an agent's SIPp desk phone; the engine is SIGKILLed (a
    crash) or SIGTERMed (a deploy: the line is handed over). The next engine carries the line
    on: the agent stays on the call, the attempt ends once as connected with its own connect
    delay when the phone hangs up, the record is done, the window counts one live answer and
    no abandon, and the agent's disposition is the campaign's."""
    talk_for = 14.0
    port = free_port()
    async with (
        engine_database() as (url, pool),
        CustomerTrunk(tmp_path / "trunk", calls=4),
        aiohttp.ClientSession() as http,
    ):
        spec: dict[str, Any] = {
            "database_url": url,
            **sections(ring_seconds=RING, max_lines=2),
            "http": {"port": port},
            "engine": {"instance_id": "dialer-talk", "spool_dir": str(tmp_path / "spool")},
        }
        first, second = proc_engines(tmp_path, spec, port)
        api = Api(SimpleNamespace(engine=SimpleNamespace(http_port=port)), http)  # type: ignore[arg-type]
        phones: dict[str, Any] = {}
        try:
            fault_scope.track(await first.start(timeout=60))
            phones = await staff(api, tmp_path, talk=talk_for)
            await import_list(api, csv_for(numbers(1)))  # one person: the number ends in 0
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/start")

            async def talking() -> Any:
                row = await pool.fetchrow(
                    "SELECT * FROM dial_attempts WHERE connected_at IS NOT NULL"
                )
                if row is None:
                    return None
                tag = await asyncio.to_thread(place_on, row["attempt_id"])
                parsed = parse_place(tag) if tag else None
                return row if parsed is not None and parsed.talking else None

            deadline = time.monotonic() + 40
            while (attempt := await talking()) is None:
                assert time.monotonic() < deadline, first.tail()
                await asyncio.sleep(0.2)
            aid, agent = attempt["attempt_id"], attempt["agent_id"]
            if how == "kill":
                await first.kill()
            else:
                assert await first.terminate(30) == 0, first.tail()
                assert "dialer.line_handed_over" in first.tail(40000), first.tail()
            fault_scope.track(await second.start(timeout=60))

            async def on_call() -> bool:
                view = await api.ok("GET", f"/api/v1/agents/{agent}")
                return bool(view["state"] == "on_call" and view.get("call_id") in (aid, None))

            deadline = time.monotonic() + 15
            while not await on_call():
                assert time.monotonic() < deadline, second.tail()
                await asyncio.sleep(0.2)
            # The phone hangs up by itself; the attempt ends with the talk.
            deadline = time.monotonic() + talk_for + 20
            while await pool.fetchval(
                "SELECT ended_at IS NULL FROM dial_attempts WHERE attempt_id = $1", aid
            ):
                assert time.monotonic() < deadline, second.tail()
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the end reaches the campaign's window
            view = await api.ok("GET", f"/api/v1/campaigns/{CAMPAIGN}")
            await api.ok(
                "POST",
                f"/api/v1/calls/{aid}/disposition",
                {"agent_id": agent, "code": "hardship"},
            )
            log_text = second.tail(60000)
        finally:
            for p in phones.values():
                await p.__aexit__(None, None, None)
            with contextlib.suppress(Exception):
                await second.terminate(30)

        assert "dialer.line_taken_over" in log_text, log_text[-4000:]
        rows = await pool.fetch("SELECT * FROM dial_attempts")
        assert len(rows) == 1, [dict(r) for r in rows]  # never dialled again
        (row,) = rows
        assert row["outcome"] == "connected", dict(row)
        assert row["agent_id"] == agent
        assert row["connect_seconds"] is not None
        assert row["connect_seconds"] < 3.0, dict(row)
        # Connected: the disposition decides, and "hardship" closes the record.
        deadline = time.monotonic() + 10
        while await pool.fetchval("SELECT state FROM dial_records") != "done":
            assert time.monotonic() < deadline, log_text[-4000:]
            await asyncio.sleep(0.2)
        window = view["window"]
        assert (window["attempts"], window["live_answers"], window["abandoned"]) == (1, 1, 0)
        leg = await pool.fetchrow(
            "SELECT talk_seconds FROM call_legs WHERE call_id = $1 AND answered_at IS NOT NULL",
            aid,
        )
        assert leg is not None
        # The whole talk, from the agent's answer before the restart to the hang-up.
        assert talk_for - 2 < leg["talk_seconds"] < talk_for + 4, dict(leg)
        d = await pool.fetchrow("SELECT * FROM dispositions WHERE call_id = $1", aid)
        assert d is not None
        assert d["code"] == "hardship"
        assert d["campaign"] == CAMPAIGN  # the campaign's disposition, not the queue's
