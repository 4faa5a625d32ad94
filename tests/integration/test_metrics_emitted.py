"""The metric contract in a real run: a documented metric must move, not only be registered.

One inbound call on the Asterisk sandbox, with the example settings (their queues, agents,
campaigns and calendars): an IVR menu, a key press, a transfer to the example's collections
queue, where nobody is logged in, so the caller waits and gives up. ``/metrics`` is scraped
during the call and after it, as Prometheus would (the metrics role's token). Every family of
docs/metrics.md must then show a sample that says something happened: a counter above 0, a
histogram with observations, a labelled gauge with a labelled sample, an unlabelled gauge off 0
at one of the scrapes. The exceptions are listed below, each with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sambung.ivr.flows import FlowTable
from sambung.ivr.model import Flow, HangupNode, MenuNode, Retry, TransferNode
from tests.integration.callers import Pause, Press, Step, write_scenario
from tests.integration.harness import METRICS_TOKEN, RunningEngine, running_engine, sipp
from tests.unit.test_metrics_contract import documented

DID = "1502"
QUEUE = "collections"  # a queue of the example settings

# Families one inbound call cannot move. Each is checked elsewhere (unit, component or its
# feature's integration test); here they only have to be exposed.
NOT_TOUCHED_BY_ONE_CALL = {
    # Connections that stay up: counted only when they drop and come back.
    "sambung_ari_reconnects_total": "the ARI stream stays connected",
    "sambung_ami_reconnects_total": "AMI stays logged in",
    "sambung_db_write_retries_total": "PostgreSQL stays up",
    "sambung_facts_rejected_total": "every fact of one call is valid",
    # Failures a healthy call need not have (a hang-up race may give one, or not).
    "sambung_ari_http_errors_total": "no REST call has to fail",
    # IVR features this call's flow does not use.
    "sambung_ivr_lookups_total": "the flow has no CRM lookup node",
    "sambung_ivr_flow_reloads_total": "nobody reloads the flows",
    "sambung_calendar_reloads_total": "nobody reloads the calendars",
    # An agent's part of a call: nobody is logged in, so the caller only waits.
    "sambung_agent_offers_total": "no agent is ready to be offered the call",
    "sambung_talk_seconds": "no agent talks",
    "sambung_hold_seconds": "no agent holds",
    "sambung_wrap_up_seconds": "no agent wraps up",
    "sambung_hold_reminders_total": "no agent holds",
    "sambung_agent_feature_codes_total": "no desk phone dials a feature code",
    # The dialer: campaigns are configured but not started, and nothing is dialled.
    "sambung_dialer_attempts_total": "nothing is dialled",
    "sambung_dialer_blocked_total": "nothing is dialled",
    "sambung_dialer_right_party_contacts_total": "no dialer call reaches an agent",
    "sambung_dialer_dispositions_total": "no dialer call is dispositioned",
    "sambung_dialer_promises_total": "no dialer call is dispositioned",
    "sambung_dialer_promised_amount_total": "no dialer call is dispositioned",
    "sambung_dialer_payments_total": "no payment arrives",
    "sambung_dialer_collected_amount_total": "no payment arrives",
    "sambung_dialer_connect_delay_seconds": "no dialer call is answered live",
    "sambung_dialer_import_rows_total": "no list is imported",
    # Engines taking calls over from each other (tests/integration/test_adoption.py).
    "sambung_calls_adopted_total": "no earlier engine left a caller waiting",
    "sambung_engine_takeovers_total": "one engine runs alone: nobody to take the lease from",
    "sambung_safeguard_sweep_seconds": "the call waits less than a third of adopt_within",
    # People, not calls.
    "sambung_auth_logins_total": "nobody logs in",
    "sambung_console_streams": "no console screen is open",
}
# Unlabelled gauges whose truthful value at a quiet moment is 0: a scrape cannot catch them off
# it without luck. They must be exposed, and 0 once the call is over (nothing left behind).
ZERO_AT_REST = {
    # Call tasks take events within microseconds; checked off 0 below by holding one event.
    "sambung_dispatch_queue_depth": "events are taken as soon as they arrive",
    "sambung_db_pending_writes": "facts are written within milliseconds",
}


def make_flow() -> Flow:
    retry = Retry(2, ("sound:vm-sorry",), ("sound:pbx-invalid",), "bye")
    nodes = (
        MenuNode("main", ("sound:hello-world",), (("1", "agent"),), retry=retry),
        TransferNode("agent", QUEUE, ("sound:queue-thankyou",)),
        HangupNode("bye", ("sound:vm-goodbye",), "ivr_completed"),
    )
    return Flow(
        name="metrics-test",
        dids=(DID,),
        start="main",
        nodes=tuple((n.id, n) for n in nodes),
        default_language="en",
        languages=("en",),
        zero_out_target=None,
        source="tests/integration/test_metrics_emitted.py",
        version="test-v1",
    )


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """Sample name -> (labels, value), for every sample of the exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def sample_name(name: str, kind: str) -> str:
    """The sample that shows a documented family exists (a histogram by its count)."""
    return f"{name}_count" if kind == "histogram" else name


def moved(name: str, kind: str, labels: tuple[str, ...], scrape: Samples) -> bool:
    """Whether this scrape shows that something happened to the documented family."""
    if kind == "counter":
        return any(v > 0 for _, v in scrape.get(name, []))
    if kind == "histogram":
        return any(v > 0 for _, v in scrape.get(f"{name}_count", []))
    if labels:
        # A label set appears only once the code has set it (or registered its function).
        return bool(scrape.get(name))
    return any(v != 0 for _, v in scrape.get(name, []))


def value(scrape: Samples, name: str, **labels: str) -> float | None:
    for got, v in scrape.get(name, []):
        if got == labels:
            return v
    return None


async def scrape(run: RunningEngine) -> Samples:
    url = f"http://127.0.0.1:{run.engine.http_port}/metrics"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}) as resp,
    ):
        assert resp.status == 200, resp.status
        return parse(await resp.text())


async def until(
    run: RunningEngine, what: str, holds: Callable[[Samples], bool], timeout: float
) -> Samples:
    """Scrape until ``holds`` is true of the scrape; that scrape."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await scrape(run)
        if holds(got):
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not seen within {timeout}s: {what}")
        await asyncio.sleep(0.2)


def held_depth(run: RunningEngine, call_id: str) -> float:
    """The queue depth with one event waiting for the live call's task.

    The dispatcher's own resync (what it sends every call after a reconnect; a waiting caller's
    task only notes it) is put in the call's inbox, and the registry is read before this test
    yields to the event loop, so the call task cannot have taken it yet.
    """
    dispatcher = run.engine.dispatcher
    assert dispatcher is not None
    dispatcher.resync_calls({call_id})
    text = generate_latest(run.engine.metrics.registry).decode()
    found = value(parse(text), "sambung_dispatch_queue_depth")
    assert found is not None
    return found


async def test_given_one_inbound_call_then_every_documented_metric_moves(tmp_path: Path) -> None:
    contract = documented()
    assert not (set(NOT_TOUCHED_BY_ONE_CALL) | set(ZERO_AT_REST)) - set(contract), "stale list"
    async with running_engine() as run:
        run.engine.ivr.flows = FlowTable({DID: make_flow()})
        # Key 1 a moment into the menu, then about 9 s waiting in the queue (the example's
        # short-abandon limit is 5 s, so this is an abandon with its wait observed), then BYE.
        # The queue offers callbacks, so joining it screens the caller's number: "sipp" is a
        # SIP user, not a number (sambung_callbacks_refused_total{reason="withheld"}).
        steps: list[Step] = [Pause(1500), Press("1"), Pause(11000)]
        scenario = write_scenario(tmp_path, "metrics", steps, hang_up=True)
        caller = asyncio.create_task(sipp(scenario, DID, timeout=60))
        try:
            during = await until(
                run,
                "the caller waiting in the queue",
                lambda got: value(got, "sambung_queue_waiting", queue=QUEUE) == 1,
                15,
            )
            call_ids = list(run.engine.active_calls())
            assert len(call_ids) == 1, call_ids
            assert held_depth(run, str(call_ids[0]["call_id"])) >= 1
            result = await caller
        finally:
            if not caller.done():
                caller.cancel()
                await asyncio.gather(caller, return_exceptions=True)
        assert result.returncode == 0, result.output
        row = await run.wait_closed(did=DID)
        assert row["end_reason"] == "caller_abandoned_queue"
        # The calls row closes when its end fact is written; the call's task ends just after.
        after = await until(
            run,
            "the call counted",
            lambda got: value(got, "sambung_call_duration_seconds_count") == 1,
            10,
        )

    # The three this contract was extended for, with the values this call must give them.
    assert value(during, "sambung_calls_active") == 1
    assert value(after, "sambung_calls_active") == 0
    assert value(after, "sambung_calls_total", direction="inbound", outcome="abandoned") == 1
    assert sum(v for _, v in after.get("sambung_calls_total", [])) == 1
    duration = value(after, "sambung_call_duration_seconds_sum")
    length = (row["ended_at"] - row["started_at"]).total_seconds()
    assert duration is not None
    assert abs(duration - length) < 1.0, (duration, length)
    assert value(after, "sambung_dispatch_queue_depth") == 0

    silent = []
    for name, (kind, labels) in contract.items():
        # A labelled family has no sample until a label set is used; the unit contract test
        # checks that it is registered.
        exposed = any(sample_name(name, kind) in got for got in (during, after))
        assert exposed or labels, f"{name} is not exposed"
        if name in NOT_TOUCHED_BY_ONE_CALL:
            continue
        if name in ZERO_AT_REST:
            assert value(after, name) == 0, name
            continue
        if not any(moved(name, kind, labels, s) for s in (during, after)):
            silent.append(name)
    assert silent == [], f"documented but not moved by a real call: {silent}"


pytestmark = pytest.mark.timeout(120)
