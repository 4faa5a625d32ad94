"""ops/demo's test calls, run exactly as printed, against the example contact centre.

The commands come from ops/demo_calls.py, which ops/demo prints: each SIPp command runs as is
(same arguments, from the checkout's top folder, where its scenario paths are relative to)
against an engine running the example settings' flows, hotlines, queues and agents. Only
what an in-process engine under test needs differs from examples/sambung.toml (a fresh
database, a free HTTP port, the test token; tests/integration/harness.py).

One more difference, on purpose: the collections hotline's office hours. The example is open
on Jakarta working days only, and the suite runs at any hour, so the running flow's ``office``
calendar is widened to always open: the menu walk then goes through the whole menu every
time. After hours the printed walk still ends with exit 0 (the hotline hangs up and the
scenario answers that BYE), which the scenario's comment explains.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from examples.crm_stub import ACCOUNTS, build_app
from ops import demo_calls
from sambung.engine.config import load_settings
from sambung.ivr.flows import FlowTable
from sambung.ivr.model import Calendar, OpenSpan
from tests.integration.harness import ROOT, TOKEN, RunningEngine, running_engine
from tests.integration.phones import AgentPhone, Answer

pytestmark = pytest.mark.integration

CRM_PORT = 8490  # the example flow's lookup URL names it
ACCOUNT = "12345678"


def example_sections() -> dict[str, Any]:
    """The example's IVR flows and hotlines (the harness swaps in a plain hotline on 1500)."""
    s = load_settings(ROOT / "examples" / "sambung.toml", env={})
    return {
        "ivr": {"flows": list(s.ivr.flows)},
        "hotlines": [h.model_dump(mode="python") for h in s.hotlines],
    }


def set_office_hours(run: RunningEngine, spans: tuple[OpenSpan, ...]) -> None:
    """Give every calendar of the running flows these open spans and no holidays."""

    def hours(c: Calendar) -> Calendar:
        return replace(c, open_spans=spans, holidays=frozenset(), national=None)

    table = run.engine.ivr.flows
    by_did = {
        did: replace(flow, calendars=tuple(hours(c) for c in flow.calendars))
        for did, flow in table.by_did.items()
    }
    assert by_did["1500"].calendars, "the example hotline has office hours"
    run.engine.ivr.flows = FlowTable(by_did)


ALWAYS_OPEN = (OpenSpan(frozenset(range(7)), time(0), time.max),)
ALWAYS_CLOSED: tuple[OpenSpan, ...] = ()


@contextlib.asynccontextmanager
async def example_crm() -> AsyncIterator[bool]:
    """The stand-in CRM on the example flow's port; yields False when something else (an
    ops/demo running beside the suite) holds the port, and that one answers instead."""
    runner = web.AppRunner(build_app(json.loads(ACCOUNTS.read_text())))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", CRM_PORT)
        try:
            await site.start()
        except OSError:
            yield False
        else:
            yield True
    finally:
        await runner.cleanup()


async def run_printed(call: demo_calls.DemoCall) -> tuple[int, str]:
    """The command as ops/demo prints it, from the checkout's top folder; bounded."""
    proc = await asyncio.create_subprocess_exec(
        *call.argv(),
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), call.timeout_seconds + 15)
    except (TimeoutError, asyncio.CancelledError):
        # Never leave a SIPp behind holding the trunk's port for the next test.
        proc.kill()
        await proc.wait()
        raise
    rc = proc.returncode if proc.returncode is not None else -1
    return rc, out.decode(errors="replace")[-3000:]


async def steps_of(run: RunningEngine, call_id: str) -> list[tuple[str, str, str | None]]:
    rows = await run.pool.fetch(
        "SELECT node, kind, choice FROM ivr_steps WHERE call_id = $1 ORDER BY seq", call_id
    )
    return [(r["node"], r["kind"], r["choice"]) for r in rows]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_prints_every_command_the_tests_run() -> None:
    demo = demo_calls.load_demo(demo_calls.DEFAULT_CONFIG)
    printed = demo_calls.text(demo)
    for call in demo_calls.CALLS:
        assert call.command() in printed
        assert (ROOT / call.scenario).is_file(), call.scenario
    first = demo.phones[0]
    assert demo.login_command(first) in printed
    assert first.password
    assert f"password {first.password}" in printed
    # The queue call rings a queue of the example, and the menu walk its IVR's DID.
    s = load_settings(demo_calls.DEFAULT_CONFIG, env={})
    queued = {h.did: h.queue for h in s.hotlines if h.queue}
    assert demo_calls.QUEUE_CALL.did in queued


async def test_given_the_example_engine_when_the_printed_calls_run_then_they_end_cleanly() -> None:
    async with example_crm() as crm_is_ours, running_engine(**example_sections()) as run:
        set_office_hours(run, ALWAYS_OPEN)
        outputs: dict[str, str] = {}
        for call in demo_calls.CALLS:
            rc, out = await run_printed(call)
            outputs[call.key] = out
            assert rc == 0, f"{call.command()}\n{out}"
            row = await run.wait_closed(did=call.did)
            if call is demo_calls.MENU_WALK:
                steps = await steps_of(run, row["call_id"])
                taken = {(n, k): c for n, k, c in steps}
                assert taken[("language", "option")] == "2", steps
                assert taken[("main", "option")] == "1", steps
                assert taken[("account", "input")] == ACCOUNT, steps
                if crm_is_ours:
                    assert any(n == "lookup" and k.endswith("ok") for n, k, _ in steps), steps
                assert row["end_reason"] == "caller_abandoned_ivr"  # the caller hung up
            elif call is demo_calls.QUEUE_CALL:
                entry = await run.pool.fetchrow(
                    "SELECT queue, outcome FROM queue_entries WHERE call_id = $1",
                    row["call_id"],
                )
                assert entry is not None
                assert (entry["queue"], entry["outcome"]) == ("collections", "abandoned")
                assert row["end_reason"] == "caller_abandoned_queue"
            elif call is demo_calls.UNKNOWN_NUMBER:
                assert row["end_reason"] == "unknown_number"
            else:
                assert row["end_reason"] == "completed", (call.key, dict(row))
        # Printed commands write nothing into the checkout (no -trace_* options).
        stray = [p.name for p in ROOT.glob("*.log")] + [p.name for p in ROOT.glob("*.csv")]
        assert not stray, stray


async def test_given_office_hours_over_when_the_printed_menu_walk_runs_then_it_still_exits_0() -> (
    None
):
    async with running_engine(**example_sections()) as run:
        set_office_hours(run, ALWAYS_CLOSED)
        rc, out = await run_printed(demo_calls.MENU_WALK)
        assert rc == 0, out  # the hotline hung up after the language; SIPp answered its BYE
        row = await run.wait_closed(did=demo_calls.MENU_WALK.did)
        steps = await steps_of(run, row["call_id"])
        assert ("language", "option", "2") in steps
        assert not [s for s in steps if s[0] == "main"], steps
        assert row["end_reason"] == "after_hours"


async def test_given_the_printed_softphone_account_when_logged_in_then_the_queue_call_rings_it(
    tmp_path: Any,
) -> None:
    demo = demo_calls.load_demo(demo_calls.DEFAULT_CONFIG)
    agent = demo.phones[0]
    async with (
        running_engine(**example_sections()) as run,
        AgentPhone(agent.endpoint, agent.password, free_udp_port(), workdir=tmp_path) as phone,
        aiohttp.ClientSession() as http,
    ):
        await phone.register()  # the printed user and password: Asterisk takes them
        await phone.serve(Answer(), calls=1, timeout=60)
        url = f"http://127.0.0.1:{run.engine.http_port}{agent.login_path}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(50):  # the engine learns of the registration from ARI's events
            async with http.post(url, headers=headers) as resp:
                body = await resp.json(content_type=None)
                if resp.status < 300:
                    break
            await asyncio.sleep(0.1)
        assert resp.status < 300, body
        rc, out = await run_printed(demo_calls.QUEUE_CALL)
        assert rc == 0, out
        invite = await phone.wait_invite(5)
        assert invite.user == agent.endpoint
        row = await run.wait_closed(did=demo_calls.QUEUE_CALL.did)
        entry = await run.pool.fetchrow(
            "SELECT outcome, agent_id FROM queue_entries WHERE call_id = $1", row["call_id"]
        )
        assert entry is not None
        assert (entry["outcome"], entry["agent_id"]) == ("answered", agent.agent_id)
