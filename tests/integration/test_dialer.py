"""The dialer on the real Asterisk: a campaign dials a SIPp "customers" trunk whose numbers
answer, are busy, never answer, are invalid or congested by their last digit (see
sipp/customer_trunk.xml), and answered numbers speak (a short "halo" for a person, a long
greeting for a machine) so that AMD() in the sandbox's dialplan has real audio to judge.
Agents are SIPp desk phones registered as agent1001 (siti) and agent1003 (made).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from sambung.acd.agents import AgentState
from sambung.dialer import pacing
from sambung.engine.events import AmdDecided, EngineEvent, PromptStarted
from tests.integration.customers import CustomerTrunk
from tests.integration.harness import RunningEngine, running_engine
from tests.integration.phones import AgentPhone, Answer
from tests.integration.test_acd import Api, facts_written, tap, wait_for

pytestmark = pytest.mark.integration

CAMPAIGN = "it"
# Last digit -> what the trunk does (sipp/customer_trunk.xml) -> the outcome we expect.
EXPECTED = {
    "3": "machine",
    "4": "busy",
    "5": "no_answer",
    "6": "invalid_number",
    "7": "congestion",
}
WIB = ZoneInfo("Asia/Jakarta")
AGENTS = {"siti": ("agent1001", "a1001", 5091), "made": ("agent1003", "a1003", 5093)}


def numbers(n: int) -> list[str]:
    """``n`` mobile numbers in 08... form whose last digits cycle through every behaviour."""
    digits = "0123456789"
    return [f"0812{i:04d}{100 + i:03d}{digits[i % 10]}" for i in range(n)]


def csv_for(nums: list[str]) -> str:
    rows = ["account_id,name,phone1,amount_due,days_past_due,province"]
    for i, num in enumerate(nums):
        rows.append(f"ACC{i:04d},Debitur {i},{num},{1_500_000 + i * 1000},{10 + i},DKI Jakarta")
    return "\n".join(rows) + "\n"


def campaign(**over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": CAMPAIGN,
        "mode": "predictive",
        "agents": list(AGENTS),
        "caller_id": "02150000000",
        "max_lines": 6,
        "ring_seconds": 6,
        "wrap_up_seconds": 1,
        "connect_limit_seconds": 2,
        "amd": True,
        "machine_message": [],
        # Always open, so the test runs at any hour and on any day (a national holiday
        # included: the calendar has no days and vouches for these years); the calling rules
        # have a test of their own below.
        "calendar": "always-open",
        "days": [0, 1, 2, 3, 4, 5, 6],
        "start": "00:00",
        "end": "23:59",
        "last_dial_margin_minutes": 0,
        "max_attempts_per_day": 3,
        "max_attempts_per_7_days": 10,
    }
    c.update(over)
    return c


def sections(**over: Any) -> dict[str, Any]:
    agents = [
        {
            "id": aid,
            "name": aid.title(),
            "endpoint": ep,
            "pin": "1001",
            "skills": {"collections": 3},
            "queues": [],
        }
        for aid, (ep, _, _) in AGENTS.items()
    ]
    year = datetime.now(UTC).year
    calendars = {"always-open": {"package": False, "years": [year - 1, year, year + 1]}}
    calendars.update(over.pop("calendars", {}))
    return {
        "acd": {"queues": [], "agents": agents},
        "dialer": {"campaigns": [campaign(**over)], "dnc_files": [], "tick_seconds": 0.5},
        "calendars": calendars,
    }


@contextlib.asynccontextmanager
async def dialer_engine(**over: Any) -> AsyncIterator[tuple[RunningEngine, Api]]:
    async with running_engine(**sections(**over)) as run, aiohttp.ClientSession() as http:
        yield run, Api(run, http)


async def import_list(api: Api, text: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_token()}", "Content-Type": "text/csv"}
    async with api.http.post(
        f"{api.base}/api/v1/campaigns/{CAMPAIGN}/imports", data=text, headers=headers
    ) as r:
        started = await r.json()
        assert r.status == 202, started
    import_id = started["import_id"]

    async def done() -> dict[str, Any] | None:
        st = await api.ok("GET", f"/api/v1/imports/{import_id}")
        return st if st["state"] != "running" else None

    status: dict[str, Any] = await wait_for(done, 20, "import done")
    assert status["state"] == "done", status
    return status


def api_token() -> str:
    from tests.integration.harness import TOKEN

    return TOKEN


async def staff(api: Api, tmp_path: Path, talk: float) -> dict[str, AgentPhone]:
    phones: dict[str, AgentPhone] = {}
    for aid, (ep, pw, port) in AGENTS.items():
        phone = AgentPhone(ep, pw, port, workdir=tmp_path / aid)
        await phone.__aenter__()
        await phone.register()
        await phone.serve(Answer(ring=0.0, hang_up_after=talk), calls=40, timeout=200)
        phones[aid] = phone

    async def online() -> bool:
        agents = (await api.ok("GET", "/api/v1/agents"))["agents"]
        return all(a["phone_online"] for a in agents if a["agent_id"] in AGENTS)

    await wait_for(online, 10, "agent phones online")
    for aid in AGENTS:
        await api.ok("POST", f"/api/v1/agents/{aid}/login")
    return phones


async def attempts(run: RunningEngine) -> list[Any]:
    return list(
        await run.pool.fetch(
            """SELECT a.*, r.account_id AS acct FROM dial_attempts a
               JOIN dial_records r USING (record_id) ORDER BY a.created_at"""
        )
    )


async def test_a_campaign_dials_classifies_retries_and_connects(tmp_path: Path) -> None:
    nums = numbers(30)
    async with (
        CustomerTrunk(tmp_path / "trunk", calls=40) as trunk,
        dialer_engine() as (run, api),
    ):
        seen = tap(run)
        phones = await staff(api, tmp_path, talk=1.5)
        try:
            report = await import_list(api, csv_for(nums))
            assert report["imported"] == 30, report
            assert report["rejected"] == 0, report
            assert report["suppressed"] == 0, report
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/start")

            async def all_ended() -> bool:
                rows = await attempts(run)
                return len(rows) >= 30 and all(r["ended_at"] is not None for r in rows)

            await wait_for(all_ended, 150, "every number tried once")
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/pause")
            await facts_written(run)
            rows = await attempts(run)
        finally:
            for p in phones.values():
                await p.__aexit__(None, None, None)

        # Every attempt row was written before its originate: each INVITE the trunk saw
        # belongs to an attempt that was already in the table, and no number twice at once.
        dialled = [i.user for i in trunk.invites]
        assert sorted(set(dialled)) == sorted(f"62{n[1:]}" for n in nums)
        assert len(rows) == len(dialled)

        by_digit: dict[str, list[Any]] = {}
        for r in rows:
            by_digit.setdefault(r["phone"][-1], []).append(r)
        for digit, outcome in EXPECTED.items():
            got = {r["outcome"] for r in by_digit[digit]}
            assert got == {outcome}, (digit, got)
        people = [r for d, rs in by_digit.items() if d not in EXPECTED for r in rs]
        # Every person is taken for a person (NOTSURE is connected like HUMAN). AMD decides on
        # timing, and on a loaded two-core machine it has answered NOTSURE for one "halo" in
        # about twenty: never MACHINE, and HUMAN for nearly all.
        statuses = [r["amd_status"] for r in people]
        causes = [r["amd_cause"] for r in people]
        assert set(statuses) <= {"HUMAN", "NOTSURE"}, causes
        assert statuses.count("HUMAN") >= 0.8 * len(statuses), causes
        assert {r["amd_status"] for r in by_digit["3"]} == {"MACHINE"}
        connected = [r for r in people if r["outcome"] == "connected"]
        abandoned = [r for r in people if r["outcome"] == "abandoned"]
        assert len(connected) + len(abandoned) == len(people)
        assert connected, "no live answer reached an agent"
        for r in connected:
            assert r["agent_id"] in AGENTS
            assert r["connect_seconds"] is not None
            assert r["connect_seconds"] < 2.0
        # The abandon cap (3%) leaves no budget before 34 live answers: the planner must
        # have stayed progressive, so no person waited in vain.
        assert abandoned == [], [(r["phone"], r["connect_seconds"]) for r in abandoned]
        verdicts = [e for e in seen if isinstance(e, AmdDecided)]
        assert len(verdicts) == len(people) + len(by_digit["3"])

        # Retries follow the rules: busy 15 min, no answer 60 min, congestion 5 min, a
        # machine the next calling day; an invalid (only) number stops the record.
        recs = {
            r["account_id"]: r
            for r in await run.pool.fetch(
                "SELECT * FROM dial_records WHERE campaign = $1", CAMPAIGN
            )
        }
        now = datetime.now(UTC)
        for r in rows:
            rec = recs[r["acct"]]
            out = r["outcome"]
            if out == "invalid_number":
                assert rec["state"] == "stopped", dict(rec)
                assert rec["stop_reason"] == "no_phone", dict(rec)
                assert r["phone"] in rec["bad_phones"]
            elif out in ("busy", "no_answer", "congestion"):
                minutes = {"busy": 15, "no_answer": 60, "congestion": 5}[out]
                assert rec["state"] == "scheduled", dict(rec)
                delay = rec["next_at"] - r["ended_at"]
                # A retry due in the window's last minute (23:59-24:00 in the debtor's zone,
                # Jakarta here) waits for the window to open again at midnight.
                earliest = (r["ended_at"] + timedelta(minutes=minutes, seconds=-5)).astimezone(WIB)
                midnight = datetime.combine(earliest.date() + timedelta(days=1), time(0), WIB)
                if rec["next_at"] == midnight and midnight - earliest <= timedelta(seconds=70):
                    continue
                assert timedelta(minutes=minutes) - timedelta(seconds=5) <= delay, (out, delay)
                assert delay <= timedelta(minutes=minutes) + timedelta(seconds=5), (out, delay)
            elif out == "machine":
                assert rec["state"] == "scheduled"
                local = rec["next_at"].astimezone(ZoneInfo("Asia/Jakarta"))
                assert local.date() > now.astimezone(ZoneInfo("Asia/Jakarta")).date()
            elif out == "connected":
                assert rec["state"] == "done"

        # A disposition with a promise to pay lands with the call, and ends the wrap-up.
        call = connected[0]
        status, body = await api.call(
            "POST",
            f"/api/v1/calls/{call['attempt_id']}/disposition",
            {"agent_id": call["agent_id"], "code": "ptp", "amount": "500000"},
        )
        assert status == 422, body
        assert "date" in body["detail"], body
        promise_day = (now + timedelta(days=3)).date().isoformat()
        await api.ok(
            "POST",
            f"/api/v1/calls/{call['attempt_id']}/disposition",
            {"agent_id": call["agent_id"], "code": "ptp", "amount": "500000", "date": promise_day},
        )
        await facts_written(run)
        d = await run.pool.fetchrow(
            "SELECT * FROM dispositions WHERE call_id = $1", call["attempt_id"]
        )
        assert d is not None
        assert d["amount"] == 500000
        assert d["right_party"]
        assert d["promise_date"].isoformat() == promise_day
        detail = await api.ok("GET", f"/api/v1/campaigns/{CAMPAIGN}")
        assert detail["kpis"]["promises"] == 1
        assert detail["attempts_today"]["busy"] == len(by_digit["4"])


async def test_no_free_agent_hears_the_safe_harbour_within_two_seconds(tmp_path: Path) -> None:
    one = ["081200000121"]  # a person ("halo")
    async with (
        CustomerTrunk(tmp_path / "trunk", calls=5) as trunk,
        dialer_engine(mode="progressive", agents=["siti"]) as (run, api),
    ):
        seen = tap(run)
        ep, pw, port = AGENTS["siti"]
        async with AgentPhone(ep, pw, port, workdir=tmp_path / "siti") as phone:
            await phone.register()
            await phone.serve(Answer(ring=0.0, hang_up_after=2), calls=2, timeout=60)
            await wait_for(lambda: _online(api, "siti"), 10, "siti's phone online")
            await api.ok("POST", "/api/v1/agents/siti/login")
            await import_list(api, csv_for(one))
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/start")

            async def dialled() -> bool:
                return bool(trunk.invites)

            await wait_for(dialled, 15, "the progressive dial")
            # The agent steps away while the debtor's phone rings: nobody is free at answer.
            await api.ok("POST", "/api/v1/agents/siti/pause", {"reason": "break"})

            async def ended() -> Any:
                rows = await attempts(run)
                return rows[0] if rows and rows[0]["ended_at"] is not None else None

            row = await wait_for(ended, 30, "the attempt's end")
            await facts_written(run)
            row = (await attempts(run))[0]
        assert row["outcome"] == "abandoned", dict(row)
        assert row["amd_status"] == "HUMAN"
        verdict = next(e for e in seen if isinstance(e, AmdDecided))
        harbour = [e for e in seen if isinstance(e, PromptStarted) and e.prompt_id.endswith("-bye")]
        assert harbour, "the safe-harbour message never started"
        delay = (harbour[0].at - verdict.at).total_seconds()
        assert 0 < delay <= 2.0, delay
        assert phone.invites == [], "the paused agent's phone rang"
        view = await api.ok("GET", f"/api/v1/campaigns/{CAMPAIGN}")
        assert view["window"]["abandoned"] == 1
        assert view["abandon_rate"] == 1.0


async def test_a_closed_window_gives_zero_originates(tmp_path: Path) -> None:
    jakarta = datetime.now(ZoneInfo("Asia/Jakarta")).date()
    holidays = tmp_path / "today.yaml"
    holidays.write_text(
        f"covers: [{jakarta.year - 1}, {jakarta.year}, {jakarta.year + 1}]\nchanges:\n"
        f'  - add: "{jakarta.isoformat()}"\n    name: Hari libur uji\n    source: test\n'
        f'  - add: "{(jakarta + timedelta(days=1)).isoformat()}"\n'
        "    name: Hari libur uji\n    source: test\n"
    )
    own = {"own": {"package": False, "overrides": [str(holidays)]}}
    async with (
        CustomerTrunk(tmp_path / "trunk", calls=5) as trunk,
        dialer_engine(mode="progressive", calendar="own", calendars=own) as (run, api),
    ):
        ep, pw, port = AGENTS["siti"]
        async with AgentPhone(ep, pw, port, workdir=tmp_path / "siti") as phone:
            await phone.register()
            await phone.serve(Answer(ring=0.0, hang_up_after=1), calls=1, timeout=30)
            await wait_for(lambda: _online(api, "siti"), 10, "siti's phone online")
            await api.ok("POST", "/api/v1/agents/siti/login")
            await import_list(api, csv_for(numbers(5)))
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/start")
            await asyncio.sleep(4)  # eight pacing ticks with a ready agent
            view = await api.ok("GET", f"/api/v1/campaigns/{CAMPAIGN}")
        assert trunk.invites == []
        assert await run.pool.fetchval("SELECT count(*) FROM dial_attempts") == 0
        recs = await run.pool.fetch("SELECT state, next_at FROM dial_records")
        assert {r["state"] for r in recs} == {"scheduled"}
        for r in recs:
            local = r["next_at"].astimezone(ZoneInfo("Asia/Jakarta"))
            assert local.date() >= jakarta + timedelta(days=2), local
        assert view["state"] == "running"
        assert view["lines_in_flight"] == 0


async def _online(api: Api, *agents: str) -> bool:
    listed = (await api.ok("GET", "/api/v1/agents"))["agents"]
    return all(a["phone_online"] for a in listed if a["agent_id"] in agents)


__all__ = ["EngineEvent"]


async def test_preview_shows_the_record_and_the_agent_starts_the_call(tmp_path: Path) -> None:
    async with (
        CustomerTrunk(tmp_path / "trunk", calls=3) as trunk,
        dialer_engine(mode="preview", agents=["siti"]) as (run, api),
    ):
        ep, pw, port = AGENTS["siti"]
        async with AgentPhone(ep, pw, port, workdir=tmp_path / "siti") as phone:
            await phone.register()
            await phone.serve(Answer(ring=0.0, hang_up_after=1.5), calls=1, timeout=60)
            await wait_for(lambda: _online(api, "siti"), 10, "siti's phone online")
            await api.ok("POST", "/api/v1/agents/siti/login")
            await import_list(api, csv_for(["081200000220"]))
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/start")
            await asyncio.sleep(1.5)
            assert trunk.invites == [], "preview never dials by itself"
            status, body = await api.call(
                "GET", f"/api/v1/campaigns/{CAMPAIGN}/preview?agent_id=made"
            )
            assert status == 409, body  # made does not work this campaign
            got = await api.ok("GET", f"/api/v1/campaigns/{CAMPAIGN}/preview?agent_id=siti")
            rec = got["record"]
            assert rec["debtor"]["account_id"] == "ACC0000"
            assert rec["debtor"]["amount_due"] == "1500000.00"
            assert rec["next_phone"] == "+6281200000220"
            started = await api.ok(
                "POST",
                f"/api/v1/campaigns/{CAMPAIGN}/records/{rec['record_id']}/dial",
                {"agent_id": "siti"},
            )
            invite = await phone.wait_invite(20)
            assert invite.user == "agent1001"

            async def ended() -> Any:
                rows = await attempts(run)
                return rows[0] if rows and rows[0]["ended_at"] is not None else None

            await wait_for(ended, 30, "the preview call's end")
            await facts_written(run)
            row = (await attempts(run))[0]
        assert row["attempt_id"] == started["attempt_id"]
        assert row["outcome"] == "connected", dict(row)
        assert row["agent_id"] == "siti"
        assert row["mode"] == "preview"


async def test_an_agentless_reminder_says_the_amount(tmp_path: Path) -> None:
    async with (
        CustomerTrunk(tmp_path / "trunk", calls=3) as trunk,
        dialer_engine(mode="reminder", agents=["made"], max_lines=2) as (run, api),
    ):
        seen = tap(run)
        await import_list(api, csv_for(["081200000330"]))
        await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/start")

        async def ended() -> Any:
            rows = await attempts(run)
            return rows[0] if rows and rows[0]["ended_at"] is not None else None

        await wait_for(ended, 60, "the reminder call's end")
        await facts_written(run)
        row = (await attempts(run))[0]
    assert len(trunk.invites) == 1
    assert row["outcome"] == "reminder", dict(row)
    said = [e.prompt_id for e in seen if isinstance(e, PromptStarted)]
    assert any(p.endswith("-d-reminder") for p in said), said


# ---- predictive pacing on the engine's live inputs -------------------------------------------

IN_CALL = {AgentState.RESERVED, AgentState.RINGING, AgentState.ON_CALL, AgentState.ON_HOLD}
SLACK = 0.3  # seconds: the loop clock (inputs) against wall times (agent book, attempt rows)


@dataclass
class Round:
    """One call of ``plan()``: when, what it was given and said, and the agent book then."""

    at: datetime
    inp: pacing.PacingInput
    decision: pacing.PacingDecision
    agents: dict[str, tuple[AgentState, datetime]]


def _bounds(at: datetime, spans: list[tuple[datetime, datetime | None]]) -> tuple[int, int]:
    """How many spans surely hold ``at`` (with SLACK inside both ends), and how many may."""
    sure = maybe = 0
    for start, end in spans:
        since = (at - start).total_seconds()
        until = float("inf") if end is None else (end - at).total_seconds()
        sure += since > SLACK and until > SLACK
        maybe += since > -SLACK and until > -SLACK
    return sure, maybe


async def test_predictive_pacing_leaves_warm_up_on_the_engines_live_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A predictive campaign with enough live answers to leave the warm-up (3 in the test
    settings, and a 20% cap so the window's guard allows lines beyond the ready agents after
    a handful of answers). Every call of ``plan()`` is captured with the agent book at that
    moment; afterwards each one is checked against the agent book and the attempt rows: the
    agents in a call and in wrap-up and their time in it, the lines still ringing and their
    ages, and the live answers waiting for an agent."""
    # People (last digits 0-2) and numbers that ring out (5): lines of several ages at once.
    nums = [n for n in numbers(40) if n[-1] in "0125"][:16]
    rounds: list[Round] = []
    real_plan = pacing.plan
    async with (
        CustomerTrunk(tmp_path / "trunk", calls=30),
        dialer_engine(abandon_cap=0.2, pacing_warmup_live=3, wrap_up_seconds=2) as (run, api),
    ):
        book = run.engine.acd.service.agents

        def recording(inp: pacing.PacingInput) -> pacing.PacingDecision:
            decision = real_plan(inp)
            agents = {a.profile.agent_id: (a.state, a.since) for a in book.all()}
            rounds.append(Round(datetime.now(UTC), inp, decision, agents))
            return decision

        monkeypatch.setattr(pacing, "plan", recording)
        phones = await staff(api, tmp_path, talk=3)
        try:
            await import_list(api, csv_for(nums))
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/start")

            async def all_ended() -> bool:
                rows = await attempts(run)
                return len(rows) >= len(nums) and all(r["ended_at"] is not None for r in rows)

            await wait_for(all_ended, 150, "every number tried once")
            await api.ok("POST", f"/api/v1/campaigns/{CAMPAIGN}/pause")
            view = await api.ok("GET", f"/api/v1/campaigns/{CAMPAIGN}")
            await facts_written(run)
            rows = await attempts(run)
        finally:
            for p in phones.values():
                await p.__aexit__(None, None, None)

    predictive = [r for r in rounds if r.inp.mode == "predictive"]
    assert predictive, "plan() was never asked"
    # Pacing left the warm-up once the window held 3 live answers.
    after = [r for r in predictive if not r.decision.warmup]
    assert after, [r.inp.window_live for r in predictive][-5:]
    assert all(r.inp.window_live >= 3 for r in after)
    assert all(r.decision.warmup for r in predictive if r.inp.window_live < 3)
    # The campaign's view shows the last round and what it was given.
    last = view["last_plan"]
    assert last["warmup"] is False, last
    assert set(last["inputs"]) >= {"talk_elapsed", "wrap_elapsed", "line_ages", "waiting_answers"}

    # Phases: the agents in a call and in wrap-up, and their time in it, are the agent book's.
    for r in predictive:
        talk = sorted(
            0.0
            if state in (AgentState.RESERVED, AgentState.RINGING)
            else (r.at - since).total_seconds()
            for state, since in r.agents.values()
            if state in IN_CALL
        )
        wrap = sorted(
            (r.at - since).total_seconds()
            for state, since in r.agents.values()
            if state is AgentState.WRAP_UP
        )
        assert len(r.inp.talk_elapsed) == len(talk), (r.inp.talk_elapsed, r.agents)
        assert len(r.inp.wrap_elapsed) == len(wrap), (r.inp.wrap_elapsed, r.agents)
        for got, want in zip(sorted(r.inp.talk_elapsed), talk, strict=True):
            assert abs(got - want) <= SLACK, (r.inp.talk_elapsed, talk)
        for got, want in zip(sorted(r.inp.wrap_elapsed), wrap, strict=True):
            assert abs(got - want) <= SLACK, (r.inp.wrap_elapsed, wrap)
    assert any(x > 1.0 for r in predictive for x in r.inp.talk_elapsed), "no talk time seen"
    assert any(r.inp.wrap_elapsed for r in predictive), "no wrap-up seen"

    # Lines still ringing (not yet a live answer) and answers waiting for an agent, from the
    # attempt rows: ringing from the dial to the live answer (or the end); waiting from the
    # live answer to the agent (or the end).
    ringing = [(a["created_at"], a["live_at"] or a["ended_at"]) for a in rows]
    waiting = [(a["live_at"], a["connected_at"] or a["ended_at"]) for a in rows if a["live_at"]]
    checked = 0
    for r in predictive:
        sure, maybe = _bounds(r.at, ringing)
        assert sure <= len(r.inp.line_ages) <= maybe, (r.at, r.inp.line_ages)
        if sure == maybe:
            checked += 1
            ages = sorted(
                (r.at - a["created_at"]).total_seconds()
                for a in rows
                if a["created_at"] <= r.at < (a["live_at"] or a["ended_at"])
            )
            for got, want in zip(sorted(r.inp.line_ages), ages, strict=True):
                assert abs(got - want) <= SLACK, (r.inp.line_ages, ages)
        sure, maybe = _bounds(r.at, waiting)
        assert sure <= r.inp.waiting_answers <= maybe, (r.at, r.inp.waiting_answers)
    assert checked >= len(predictive) // 2
    # The last hour's live answers (all of this test's are inside it; the window counts an
    # answer once its attempt ends, as a restart rebuilds it from the rows) and the seconds
    # since the first of them, which tell the pacer how much of the hour they took.
    lives = sorted(a["ended_at"] for a in rows if a["live_at"] and a["ended_at"])
    assert lives, "no live answer"
    for r in predictive:
        since = [(r.at - t).total_seconds() for t in lives]
        sure = sum(1 for x in since if x > SLACK)
        maybe = sum(1 for x in since if x > -SLACK)
        assert r.inp.hour_live is not None
        assert sure <= r.inp.hour_live <= maybe, (r.inp.hour_live, sure, maybe, since)
        if r.inp.hour_live:
            assert r.inp.hour_seconds is not None
            assert abs(r.inp.hour_seconds - since[0]) <= SLACK, (r.inp.hour_seconds, since[0])
        else:
            assert r.inp.hour_seconds is None
    assert any(r.inp.hour_live for r in predictive), "no live answer in the hour seen"
    assert any(len(r.inp.line_ages) >= 2 for r in predictive), "never two lines at once"
    assert any(r.inp.line_ages and max(r.inp.line_ages) > 2.0 for r in predictive)
    assert any(r.inp.waiting_answers >= 1 for r in predictive), "no waiting answer seen"
