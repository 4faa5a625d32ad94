"""A caller in an IVR flow outlives the engine, on the real Asterisk with a SIPp caller.

The caller chooses English (the flow's default is Indonesian), keys in an account number and
reaches the main menu, whose prompt is long. The engine (a ``sambung run`` process) is then
killed by its PID, with SIGKILL (a crash) or SIGTERM (a deploy, which hands the caller over),
and a new one started. The new engine finds the caller in no bridge, reads its open session
from PostgreSQL and resumes the flow at the menu, stopping the prompt the last engine left
playing: the caller's key then takes the menu's option, and the session ends once, in
English, with the account it was given. With no engine coming back, Asterisk's safeguard
releases the caller.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.adoption_rig import IVR_DID as DID
from tests.integration.adoption_rig import Engine, ivr_flow_config, readiness, write_config
from tests.integration.callers import Pause, Press, write_scenario
from tests.integration.harness import sipp
from tests.integration.sandbox import FaultScope
from tests.integration.test_adoption import Floor, floor, until

pytestmark = pytest.mark.timeout(180)


async def node_stored(f: Floor) -> str | None:
    row = await f.pool.fetchrow("SELECT live_state::text AS s FROM ivr_sessions")
    if row is None or row["s"] is None:
        return None
    node: str = json.loads(row["s"])["node"]
    return node


async def resume_after(f: Floor, how: str) -> None:
    """``how``: "kill" or "term" the engine and start it again, or "standby": kill the active
    engine of a hot standby pair, and the standby takes the caller over when the lease lapses."""
    extra = ivr_flow_config(f.work)
    if how == "standby":
        lease: dict[str, Any] = {"lease": True, "lease_ttl": 4.0, "lease_renew": 1.0}
        first = f.engine("first", instance="ivr-a", extra=extra, **lease)
        standby = f.engine("second", instance="ivr-b", extra=extra, **lease)
    else:
        cfg, port = write_config(f.work, f.url, extra=extra, on_stop="handover")
        first = Engine(cfg, port, f.work / "first.log")
    await f.start(first)
    if how == "standby":
        await f.start(standby, role="standby")
    # Key 2 (English) as the language menu plays, the account, then the main menu's 1 long
    # after the engine went: by then the next engine has resumed the call at the menu.
    steps: list[Any] = [Pause(1500), Press("2"), Pause(2500), Press("4321#"), Pause(16000)]
    steps += [Press("1")]
    scenario = write_scenario(f.work, f"resume-{how}", steps, hang_up=False)
    caller = asyncio.create_task(sipp(scenario, DID, timeout=90, workdir=f.work))
    try:
        await until(lambda: _at(f, "main"), "the caller at the main menu, stored", 20)
        (call_id,) = [r["call_id"] for r in await f.pool.fetch("SELECT call_id FROM calls")]
        if how == "standby":
            await first.kill()
            second = standby

            async def active() -> bool:
                body = await asyncio.to_thread(readiness, second.port)
                return bool(body and body.get("ready"))

            await until(active, "the standby active", 15)
        elif how == "kill":
            await first.kill()
            second = await f.start(Engine(cfg, port, f.work / "second.log"))
        else:
            assert await first.terminate() == 0
            assert first.events("ivr.handed_over"), first.tail()
            second = await f.start(Engine(cfg, port, f.work / "second.log"))
        result = await caller
    finally:
        if not caller.done():
            caller.cancel()
    assert result.returncode == 0, result.output + second.tail()
    assert second.events("ivr.resumed"), second.tail()

    session = await until(lambda: _ended(f, call_id), "the session closed", 20)
    assert (session["outcome"], session["end_reason"]) == ("completed", "resumed_menu_option")
    assert session["language"] == "en"
    assert json.loads(session["attributes"])["account"] == "4321"
    assert session["live_state"] is None
    steps_taken = await f.pool.fetch(
        "SELECT seq, node, kind, choice FROM ivr_steps WHERE call_id = $1 ORDER BY seq", call_id
    )
    path = [(r["node"], r["kind"], r["choice"]) for r in steps_taken]
    # The resumed engine carries on the same record: resumed at the menu, then the key.
    resumed = path.index(("main", "resumed", None))
    assert ("account", "input", "4321") in path[:resumed]
    assert path[resumed + 1 :][:3] == [
        ("main", "enter", None),
        ("main", "option", "1"),
        ("known", "enter", None),
    ]
    seqs = [r["seq"] for r in steps_taken]
    assert seqs == sorted(set(seqs))
    call = await f.pool.fetchrow("SELECT * FROM calls WHERE call_id = $1", call_id)
    assert call is not None
    assert call["end_reason"] == "resumed_menu_option"
    assert second.metric('sambung_calls_adopted_total{kind="ivr"}') == 1.0


async def _at(f: Floor, node: str) -> bool:
    return await node_stored(f) == node


async def _ended(f: Floor, call_id: str) -> Any:
    row = await f.pool.fetchrow("SELECT * FROM ivr_sessions WHERE call_id = $1", call_id)
    return row if row is not None and row["ended_at"] is not None else None


async def test_given_a_caller_in_a_flow_when_the_engine_is_killed_then_the_next_resumes_it(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    async with floor(tmp_path, fault_scope) as f:
        await resume_after(f, "kill")


async def test_given_a_caller_in_a_flow_when_the_engine_is_stopped_then_it_is_handed_over(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    async with floor(tmp_path, fault_scope) as f:
        await resume_after(f, "term")


async def test_given_a_caller_in_a_flow_when_the_active_engine_dies_then_the_standby_resumes_it(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    async with floor(tmp_path, fault_scope) as f:
        await resume_after(f, "standby")


async def test_given_no_engine_comes_back_then_asterisk_releases_the_caller_in_the_flow(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    bound = 8.0
    async with floor(tmp_path, fault_scope) as f:
        extra = ivr_flow_config(f.work)
        cfg, port = write_config(f.work, f.url, extra=extra, adopt_within=bound)
        first = await f.start(Engine(cfg, port, f.work / "first.log"))
        steps: list[Any] = [Pause(1500), Press("2"), Pause(2500), Press("4321#")]
        scenario = write_scenario(f.work, "released", steps, hang_up=False)
        caller = asyncio.create_task(sipp(scenario, DID, timeout=90, workdir=f.work))
        try:
            await until(lambda: _at(f, "main"), "the caller at the main menu, stored", 20)
            (call_id,) = [r["call_id"] for r in await f.pool.fetch("SELECT call_id FROM calls")]
            killed = asyncio.get_running_loop().time()
            await first.kill()
            result = await asyncio.wait_for(caller, bound + 30)
        finally:
            if not caller.done():
                caller.cancel()
        released = asyncio.get_running_loop().time() - killed
        # Released by Asterisk (extension T: the engine-down message, cause 34) within the
        # bound after the last refresh, plus the message; not left in silence.
        assert result.returncode == 0, result.output
        assert bound * 2 / 3 - 0.5 < released < bound + 10, released
        # The next engine finds the caller gone and closes the call and its session as lost.
        second = await f.start(Engine(cfg, port, f.work / "second.log"))
        session = await until(lambda: _ended(f, call_id), "the session closed", 15)
        assert (session["outcome"], session["end_reason"]) == ("lost", "engine_restart")
        assert session["live_state"] is None
        assert await second.terminate() == 0
