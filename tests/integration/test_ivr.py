"""The IVR on the real Asterisk: SIPp callers press real RFC 4733 keys; facts in PostgreSQL.

The flow is built from the model directly (the loader has its own tests) so each test states
exactly the flow it runs; prompts are Asterisk's stock English sounds.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from sambung.ivr.flows import FlowTable
from sambung.ivr.model import (
    Branch,
    Calendar,
    ConditionNode,
    Flow,
    HangupNode,
    InBusinessHours,
    InputNode,
    LookupNode,
    MenuNode,
    OpenSpan,
    Retry,
    SayNode,
    TransferNode,
)
from tests.integration.callers import Pause, Press, write_scenario
from tests.integration.harness import RunningEngine, running_engine, sipp

DID = "1502"
LONG_PROMPT = "sound:demo-congrats"  # 30 s: any early end is barge-in


def make_flow(
    crm_url: str,
    *,
    start: str = "main",
    menu_prompt: str = LONG_PROMPT,
    calendar: Calendar | None = None,
) -> Flow:
    retry = Retry(3, ("sound:vm-sorry",), ("sound:pbx-invalid",), "bye_fail")
    nodes: list[Any] = [
        MenuNode(
            "main",
            (menu_prompt,),
            (("1", "acct"), ("2", "bye")),
            timeout_seconds=2.0,
            retry=retry,
            repeat_key="*",
        ),
        InputNode(
            "acct",
            ("sound:vm-enter-num-to-call",),
            "account",
            "lookup",
            min_length=4,
            max_length=10,
            terminator="#",
            first_digit_timeout_seconds=5.0,
            inter_digit_timeout_seconds=3.0,
            pattern="[0-9]+",
            retry=retry,
        ),
        LookupNode(
            "lookup", crm_url + "/accounts/{account}", "say", "bye_fail", timeout_seconds=2.0
        ),
        SayNode("say", "amount_due", "money", "bye"),
        HangupNode("bye", ("sound:vm-goodbye",), "ivr_completed"),
        HangupNode("bye_fail", ("sound:vm-goodbye",), "ivr_failed"),
        TransferNode("agent", "collections", ("sound:queue-thankyou",)),
        HangupNode("closed", ("sound:vm-goodbye",), "after_hours"),
    ]
    calendars: tuple[Calendar, ...] = ()
    if calendar is not None:
        calendars = (calendar,)
        nodes.append(
            ConditionNode("hours", (Branch(InBusinessHours(calendar.name), "main"),), "closed")
        )
    return Flow(
        name="ivr-test",
        dids=(DID,),
        start=start,
        nodes=tuple((n.id, n) for n in nodes),
        default_language="en",
        languages=("en",),
        calendars=calendars,
        zero_out_key="0",
        zero_out_target="agent",
        source="tests/integration/test_ivr.py",
        version="test-v1",
    )


async def call_ivr(
    run: RunningEngine, tmp_path: Path, name: str, steps: list[Any], *, hang_up: bool
) -> None:
    scenario = write_scenario(tmp_path, name, steps, hang_up=hang_up)
    result = await sipp(scenario, DID, timeout=60)
    assert result.returncode == 0, result.output


async def steps_of(run: RunningEngine, call_id: str) -> list[tuple[str, str, str | None]]:
    rows = await run.pool.fetch(
        "SELECT node, kind, choice FROM ivr_steps WHERE call_id = $1 ORDER BY seq", call_id
    )
    return [(r["node"], r["kind"], r["choice"]) for r in rows]


async def session(run: RunningEngine, call_id: str) -> Any:
    for _ in range(50):
        row = await run.pool.fetchrow("SELECT * FROM ivr_sessions WHERE call_id = $1", call_id)
        if row is not None and row["ended_at"] is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"IVR session of {call_id} not closed")


def with_flow(run: RunningEngine, flow: Flow) -> None:
    run.engine.ivr.flows = FlowTable({DID: flow})


async def test_full_menu_path_with_barge_in_account_lookup_and_amount(
    crm: str, tmp_path: Path
) -> None:
    async with running_engine() as run:
        with_flow(run, make_flow(crm))
        # Key 1 two seconds into a 30 s prompt (barge-in), then the account and #.
        await call_ivr(
            run,
            tmp_path,
            "full",
            [Pause(2000), Press("1"), Pause(1500), Press("87654321#")],
            hang_up=False,
        )
        row = await run.wait_closed(did=DID)
        assert row["end_reason"] == "ivr_completed"
        assert (row["ended_at"] - row["answered_at"]).total_seconds() < 25  # prompt cut short
        steps = await steps_of(run, row["call_id"])
        kinds = [(n, k) for n, k, _ in steps]
        assert ("main", "option") in kinds
        assert ("acct", "input") in kinds
        assert ("lookup", "lookup_ok") in kinds or ("lookup", "ok") in kinds
        assert dict(((n, k), c) for n, k, c in steps)[("main", "option")] == "1"
        s = await session(run, row["call_id"])
        assert s["outcome"] == "completed"
        attrs = json.loads(s["attributes"])
        assert attrs["account"] == "87654321"
        assert attrs["amount_due"] == "475500"


async def test_invalid_key_then_valid(crm: str, tmp_path: Path) -> None:
    async with running_engine() as run:
        with_flow(run, make_flow(crm, menu_prompt="sound:hello-world"))
        await call_ivr(
            run,
            tmp_path,
            "invalid",
            [Pause(500), Press("9"), Pause(2500), Press("2")],
            hang_up=False,
        )
        row = await run.wait_closed(did=DID)
        steps = await steps_of(run, row["call_id"])
        kinds = [k for n, k, _ in steps if n == "main"]
        assert "invalid" in kinds
        assert kinds.index("invalid") < kinds.index("option")
        assert row["end_reason"] == "ivr_completed"


async def test_no_input_timeouts_then_zero_out_to_an_agent(crm: str, tmp_path: Path) -> None:
    async with running_engine() as run:
        with_flow(run, make_flow(crm, menu_prompt="sound:beep"))
        # Say nothing through one 2 s timeout (and its retry prompt), then press 0; wait in
        # the queue the IVR hands the call to (nobody is logged in), then give up.
        steps = [Pause(4500), Press("0"), Pause(8000)]
        await call_ivr(run, tmp_path, "zero", steps, hang_up=True)
        row = await run.wait_closed(did=DID)
        ivr_steps = await steps_of(run, row["call_id"])
        assert ("main", "no_input") in [(n, k) for n, k, _ in ivr_steps]
        s = await session(run, row["call_id"])
        assert s["outcome"] == "transferred"
        assert s["end_reason"] == "transfer:collections"
        # The same call, still up, waited in the queue until the caller hung up.
        entry = await run.pool.fetchrow(
            "SELECT * FROM queue_entries WHERE call_id = $1", row["call_id"]
        )
        assert entry is not None
        assert (entry["queue"], entry["outcome"]) == ("collections", "abandoned")
        assert entry["wait_seconds"] > 1
        assert row["end_reason"] == "caller_abandoned_queue"


async def test_after_hours_branch(crm: str, tmp_path: Path) -> None:
    # Open only on a weekday that is not today in Jakarta: now is after hours, whatever the time.
    today = (datetime.now(UTC) + timedelta(hours=7)).weekday()
    closed_today = Calendar(
        "office", "Asia/Jakarta", (OpenSpan(frozenset({(today + 3) % 7}), time(8), time(17)),)
    )
    async with running_engine() as run:
        with_flow(run, make_flow(crm, start="hours", calendar=closed_today))
        await call_ivr(run, tmp_path, "closed", [], hang_up=False)
        row = await run.wait_closed(did=DID)
        assert row["end_reason"] == "after_hours"
        s = await session(run, row["call_id"])
        assert s["outcome"] == "completed"  # contained: the IVR answered the caller's need


async def test_caller_hangs_up_mid_menu_without_errors(crm: str, tmp_path: Path) -> None:
    with capture_logs() as logs:
        async with running_engine() as run:
            with_flow(run, make_flow(crm))
            await call_ivr(run, tmp_path, "abandon", [Pause(2000)], hang_up=True)
            row = await run.wait_closed(did=DID)
            s = await session(run, row["call_id"])
    assert s["outcome"] == "abandoned"
    assert row["end_reason"] == "caller_abandoned_ivr"
    errors = [e for e in logs if e.get("log_level") in ("error", "critical")]
    assert errors == []


async def test_a_prompt_missing_in_the_callers_language_plays_in_english(
    crm: str, tmp_path: Path
) -> None:
    # hello-world exists only in English (1.4 s); an Indonesian caller must still hear it.
    flow = Flow(
        name="fallback",
        dids=(DID,),
        start="bye",
        nodes=(("bye", HangupNode("bye", ("sound:hello-world",), "ivr_completed")),),
        default_language="id",
        languages=("id", "en"),
        zero_out_target=None,
        source="tests/integration/test_ivr.py",
        version="test-v1",
    )
    async with running_engine() as run:
        with_flow(run, flow)
        await call_ivr(run, tmp_path, "fallback", [], hang_up=False)
        row = await run.wait_closed(did=DID)
        assert row["end_reason"] == "ivr_completed"
        assert (row["ended_at"] - row["answered_at"]).total_seconds() > 1.2
