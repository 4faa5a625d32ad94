"""Callers waiting in a queue outlive the engine, on the real Asterisk with SIPp callers.

The engine is a ``sambung run`` process killed by its PID: SIGKILL (a crash: nothing is handed
over, the next engine finds the callers by the place written on their channels) or SIGTERM (a
deploy: waiting callers are handed over). A new engine then takes them over, an agent becomes
ready, and every caller is served, in the order they called. And when no engine comes back,
Asterisk's safeguard releases the caller with the engine-down message, and the next engine
closes its entry as ``lost``.

Every test asks for ``fault_scope``: the engines it starts are stopped by their PIDs whatever
happens, and the sandbox is checked afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from sambung.acd.place import parse_place
from sambung.asterisk import talk_guard
from tests.integration.adoption_rig import (
    AGENT,
    Callers,
    Engine,
    kendall_tau,
    place_on,
    write_config,
)
from tests.integration.harness import ari_get, ari_request, engine_database
from tests.integration.phones import AgentPhone, Answer
from tests.integration.sandbox import FaultScope

pytestmark = pytest.mark.timeout(240)


async def until(pred: Callable[[], Awaitable[Any]], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await pred()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what}")
        await asyncio.sleep(0.2)
    return value


@dataclass
class Floor:
    work: Path
    pool: asyncpg.Pool
    url: str
    scope: FaultScope

    def engine(self, name: str, **config: Any) -> Engine:
        cfg, port = write_config(self.work, self.url, name=name, **config)
        return Engine(cfg, port, self.work / f"{name}.log")

    async def start(self, engine: Engine, role: str = "active") -> Engine:
        try:
            await engine.start(role=role)
        finally:
            # Stopped by its PID at the end even when it never got ready.
            if engine.proc is not None:
                self.scope.track(engine.proc)
        return engine

    async def call_ids(self) -> list[str]:
        """The callers, in the order they called."""
        rows = await self.pool.fetch("SELECT call_id FROM calls ORDER BY started_at, call_id")
        return [r["call_id"] for r in rows]


@contextlib.asynccontextmanager
async def floor(tmp_path: Path, scope: FaultScope) -> AsyncIterator[Floor]:
    try:
        async with engine_database() as (url, pool):
            yield Floor(tmp_path, pool, url, scope)
    finally:
        # Callers left in Asterisk by a test that failed midway (SIPp stopped without a BYE)
        # would wait on with their places, and the next test's engine would rightly adopt
        # them: end them, so each test starts from an empty floor.
        hang_up_callers()


def hang_up_callers() -> None:
    for ch in ari_get("/channels"):
        if not str(ch.get("name", "")).startswith(("Announcer/", "Recorder/")):
            with contextlib.suppress(OSError):
                ari_request("DELETE", f"/channels/{ch['id']}")


async def queued(f: Floor, engine: Engine, n: int) -> list[str]:
    """Wait until ``n`` callers wait in the engine's queue with their place on their channel;
    their call ids in calling order."""

    async def all_waiting() -> bool:
        # The engine lists them at once; their calls rows and the places on their channels
        # follow a moment later (the fact writer, ARI's variables), later still on a busy
        # machine: wait for all three rather than read them once.
        if await engine.waiting() != n or len(await f.call_ids()) != n:
            return False
        tags = [parse_place(place_on(cid)) for cid in await f.call_ids()]
        return all(t is not None and t.queue == "support" for t in tags)

    await until(all_waiting, f"{n} callers waiting with their place", 30)
    return await f.call_ids()


async def serve_all(f: Floor, engine: Engine, callers: Callers, n: int) -> None:
    """One agent takes the callers one after another; every caller's SIPp call must go as its
    scenario says (answered, waiting, hung up by the far end after the talk)."""
    agent, endpoint, password, port = AGENT
    async with AgentPhone(endpoint, password, port, workdir=f.work) as phone:
        await phone.register()
        await phone.serve(Answer(ring=0.2, hang_up_after=1.0), calls=n, timeout=120)

        async def online() -> bool:
            view = await engine.aapi("GET", f"/api/v1/agents/{agent}")
            return bool(view["phone_online"])

        await until(online, "the agent's phone online", 10)
        await engine.aapi("POST", f"/api/v1/agents/{agent}/login")
        code = await callers.finish(120)
        assert code == 0, callers.output.decode(errors="replace")[-2000:]


async def written(f: Floor, n: int) -> list[asyncpg.Record]:
    async def closed() -> list[asyncpg.Record] | None:
        rows = await f.pool.fetch(
            "SELECT * FROM queue_entries WHERE ended_at IS NOT NULL ORDER BY entry_id"
        )
        return rows if len(rows) >= n else None

    rows: list[asyncpg.Record] = await until(closed, f"{n} queue entries closed", 30)
    return rows


async def check_served_in_order(f: Floor, ids: list[str]) -> None:
    n = len(ids)
    entries = await written(f, n)
    # Each caller's one entry, closed once, as answered by the agent: nobody was dropped.
    assert len(entries) == n
    assert {e["call_id"] for e in entries} == set(ids)
    assert [(e["outcome"], e["agent_id"]) for e in entries] == [("answered", AGENT[0])] * n
    calls = await f.pool.fetch("SELECT call_id, end_reason FROM calls")
    assert {c["end_reason"] for c in calls} == {"agent_hung_up"}, calls
    # Served in the order they called: the agent was offered them in that order.
    legs = await f.pool.fetch(
        "SELECT call_id FROM call_legs WHERE outcome = 'answered' ORDER BY created_at"
    )
    served = [r["call_id"] for r in legs]
    assert served == ids
    assert kendall_tau(served, ids) == 1.0


async def restart_and_serve(f: Floor, how: str, n: int = 5) -> None:
    first = await f.start(f.engine("first"))
    callers = Callers(f.work, n, every=0.6)
    await callers.start()
    try:
        ids = await queued(f, first, n)
        if how == "kill":
            await first.kill()
        else:
            t0 = time.monotonic()
            assert await first.terminate() == 0, first.tail()
            # Handing over is quick: no drain wait for callers who only wait.
            assert time.monotonic() - t0 < 5, first.tail()
            assert "engine.stopping" in first.tail(20000)
        # Nobody drives them now; they wait in the holding bridge with their place.
        live = {c["id"] for c in ari_get("/channels")}
        assert set(ids) <= live
        second = await f.start(f.engine("second"))

        async def taken_over() -> bool:
            return await second.waiting() == n

        await until(taken_over, f"{n} callers taken over", 15)

        async def places_rewritten() -> bool:
            # The new engine writes each place again, one generation on.
            tags = [parse_place(place_on(cid)) for cid in ids]
            return all(t is not None and t.generation == 1 for t in tags)

        await until(places_rewritten, "the places rewritten by the new engine", 10)
        await serve_all(f, second, callers, n)
        await check_served_in_order(f, ids)
        assert await second.terminate() == 0
    finally:
        await callers.stop()


async def test_given_callers_waiting_when_the_engine_is_killed_then_the_next_serves_them_in_order(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    async with floor(tmp_path, fault_scope) as f:
        await restart_and_serve(f, "kill")


async def test_given_callers_waiting_when_the_engine_is_stopped_then_they_are_handed_over(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    async with floor(tmp_path, fault_scope) as f:
        await restart_and_serve(f, "term")


async def test_given_no_engine_comes_back_then_asterisk_releases_the_caller_with_the_message(
    tmp_path: Path, fault_scope: FaultScope
) -> None:
    bound = 8.0
    async with floor(tmp_path, fault_scope) as f:
        first = await f.start(f.engine("first", adopt_within=bound))
        callers = Callers(f.work, 1, wait_for_bye=60)
        await callers.start()
        try:
            (cid,) = await queued(f, first, 1)
            killed = time.monotonic()
            await first.kill()
            # Watch the channel as Asterisk runs it: out of the dead app into extension T of
            # its context, which plays the engine-down message.
            seen: set[tuple[str, str]] = set()
            while callers.proc is not None and callers.proc.returncode is None:
                with contextlib.suppress(OSError):
                    ch = ari_get(f"/channels/{cid}")
                    plan = ch["dialplan"]
                    seen.add((plan["exten"], plan["app_name"]))
                if time.monotonic() - killed > bound + 20:
                    break
                await asyncio.sleep(0.1)
            assert await callers.finish(10) == 0, callers.output.decode(errors="replace")
            released = time.monotonic() - killed
            # At least two thirds of the bound after the last refresh, at most the bound, plus
            # the message (about 3 s).
            assert bound * 2 / 3 - 0.5 < released < bound + 8, released
            assert ("T", "Playback") in seen, seen
            # Released as a call that finds no engine is: cause 34, a carrier may retry.
            bye = callers.messages.read_text(errors="replace")
            assert "BYE sip:" in bye
            assert "Reason: Q.850;cause=34" in bye

            # The next engine finds the caller gone and closes the entry as lost.
            second = await f.start(f.engine("second", adopt_within=bound))

            async def lost() -> asyncpg.Record | None:
                return await f.pool.fetchrow(
                    "SELECT * FROM queue_entries WHERE outcome IS NOT NULL"
                )

            entry = await until(lost, "the entry closed", 15)
            assert entry["outcome"] == "lost"
            assert entry["detail"] == "engine_restart"
            row = await f.pool.fetchrow("SELECT end_reason FROM calls WHERE call_id = $1", cid)
            assert row is not None
            assert row["end_reason"] == "engine_restart"
            assert await second.terminate() == 0
        finally:
            await callers.stop()


@dataclass
class Talk:
    first: Engine
    phone: AgentPhone
    callers: Callers
    call_id: str
    agent: str


@contextlib.asynccontextmanager
async def a_talk(f: Floor, talk_for: float, **callers: Any) -> AsyncIterator[Talk]:
    """A first engine, and one caller talking to the agent's SIPp desk phone, which hangs up
    ``talk_for`` seconds after it answered; yields once the talk is written on the caller's
    channel (what a next engine would carry on)."""
    first = await f.start(f.engine("first"))
    agent, endpoint, password, port = AGENT
    caller = Callers(f.work, 1, every=0.5, **callers)
    async with AgentPhone(endpoint, password, port, workdir=f.work) as phone:
        await phone.register()
        await phone.serve(Answer(ring=0.2, hang_up_after=talk_for), calls=1, timeout=90)

        async def online() -> bool:
            view = await first.aapi("GET", f"/api/v1/agents/{agent}")
            return bool(view["phone_online"])

        await until(online, "the agent's phone online", 10)
        await first.aapi("POST", f"/api/v1/agents/{agent}/login")
        await caller.start()
        try:

            async def talking() -> str | None:
                rows = await f.pool.fetch(
                    "SELECT call_id FROM call_legs WHERE answered_at IS NOT NULL"
                )
                return str(rows[0]["call_id"]) if rows else None

            cid = await until(talking, "the caller talking to the agent", 20)

            async def talk_written() -> bool:
                tag = parse_place(place_on(cid))
                return tag is not None and tag.talking

            await until(talk_written, "the talk written on the caller's channel", 5)
            yield Talk(first, phone, caller, cid, agent)
        finally:
            await caller.stop()


@pytest.mark.parametrize("how", ["kill", "term"])
async def test_given_a_caller_talking_when_the_engine_goes_then_the_talk_goes_on(
    tmp_path: Path, fault_scope: FaultScope, how: str
) -> None:
    """A caller talks to the agent's SIPp desk phone; the engine is SIGKILLed (a crash) or
    SIGTERMed (a deploy: the talk is handed over). Nobody is hung up: the next engine carries
    the talk on, the agent stays on the call, and when the phone hangs up (12 s after it
    answered) the talk is recorded with its whole time and the agent wraps up."""
    talk_for = 12.0
    async with floor(tmp_path, fault_scope) as f, a_talk(f, talk_for) as t:
        first, phone, callers, cid, agent = t.first, t.phone, t.callers, t.call_id, t.agent
        if how == "kill":
            await first.kill()
        else:
            assert await first.terminate() == 0, first.tail()
            assert "acd.talk_handed_over" in first.tail(20000)
        second = await f.start(f.engine("second"))

        async def on_call() -> bool:
            view = await second.aapi("GET", f"/api/v1/agents/{agent}")
            return bool(view["state"] == "on_call")

        await until(on_call, "the agent on the call with the new engine", 10)
        # The phone hangs up by itself; the caller's SIPp sees a clean end.
        assert await phone.finish(talk_for + 30) == 0
        code = await callers.finish(30)
        assert code == 0, callers.output.decode(errors="replace")[-2000:]

        async def leg_closed() -> asyncpg.Record | None:
            row: asyncpg.Record | None = await f.pool.fetchrow(
                "SELECT * FROM call_legs WHERE call_id = $1 AND ended_at IS NOT NULL",
                cid,
            )
            return row

        leg = await until(leg_closed, "the agent's leg closed", 15)
        # The whole talk, from the agent's answer before the restart to the hang-up.
        assert talk_for - 1.5 < leg["talk_seconds"] < talk_for + 3, dict(leg)
        call = await f.pool.fetchrow("SELECT * FROM calls WHERE call_id = $1", cid)
        assert call is not None
        assert call["end_reason"] == "agent_hung_up", dict(call)

        async def wrapped() -> bool:
            view = await second.aapi("GET", f"/api/v1/agents/{agent}")
            return bool(view["state"] in ("wrap_up", "ready"))

        await until(wrapped, "the agent wrapping up", 10)
        entries = await f.pool.fetch("SELECT outcome FROM queue_entries")
        assert [e["outcome"] for e in entries] == ["answered"]
        assert await second.terminate() == 0


@pytest.mark.parametrize("how", ["kill", "term"])
async def test_given_no_engine_when_the_agent_hangs_up_then_asterisk_ends_the_caller_too(
    tmp_path: Path, fault_scope: FaultScope, how: str
) -> None:
    """A caller talks to the agent's SIPp desk phone; the engine is SIGKILLed (a crash) or
    SIGTERMed (a deploy), and no engine comes back. When the agent hangs up, nobody is left
    to end the caller's side, which used to sit in its bridge in silence for as long as the
    caller cared to wait. Asterisk's talk guard ends it (normal clearing, as the engine
    would). The engine started afterwards finds nothing to carry on and leaves nothing open."""
    # The phone hangs up this long after it answered: well after the last beat has run out.
    talk_for = talk_guard.ENGINE_UNTIL_AHEAD + 10.0
    async with floor(tmp_path, fault_scope) as f, a_talk(f, talk_for, wait_for_bye=90) as t:
        first, phone, callers, cid, agent = t.first, t.phone, t.callers, t.call_id, t.agent
        if how == "kill":
            await first.kill()
        else:
            assert await first.terminate() == 0, first.tail()
        gone = time.monotonic()
        # No engine now. The phone hangs up by itself; then the caller's SIPp must get its
        # BYE from Asterisk alone.
        assert await phone.finish(talk_for + 30) == 0
        agent_left = time.monotonic()
        last_beat_out = talk_guard.ENGINE_UNTIL_AHEAD + 1
        assert agent_left - gone > last_beat_out, "the agent hung up before the beat ran out"
        code = await callers.finish(15)
        released = time.monotonic() - agent_left
        assert code == 0, callers.output.decode(errors="replace")[-2000:]
        assert released < 5, released
        bye = callers.messages.read_text(errors="replace")
        assert "Reason: Q.850;cause=16" in bye, bye[-3000:]
        with pytest.raises(urllib.error.HTTPError, match="404"):
            ari_get(f"/channels/{cid}")  # gone from Asterisk

        # The next engine has nothing to carry on: every row is closed, the agent is not
        # left on a call that no longer exists.
        second = await f.start(f.engine("second"))
        counts: dict[str, int] = {}

        async def closed() -> bool:
            row = await f.pool.fetchrow(
                "SELECT count(*) FILTER (WHERE ended_at IS NULL) AS calls,"
                " (SELECT count(*) FROM call_legs WHERE ended_at IS NULL) AS legs,"
                " (SELECT count(*) FROM queue_entries WHERE outcome IS NULL) AS entries"
                " FROM calls"
            )
            assert row is not None
            counts.update(dict(row))
            return set(counts.values()) == {0}

        try:
            await until(closed, "every row closed", 15)
        except AssertionError as err:
            raise AssertionError(f"{err}: open {counts}") from None

        async def off_the_call() -> bool:
            view = await second.aapi("GET", f"/api/v1/agents/{agent}")
            return bool(view["state"] != "on_call")

        await until(off_the_call, "the agent off the ended call", 10)
        assert await second.terminate() == 0
