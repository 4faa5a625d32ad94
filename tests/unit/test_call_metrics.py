"""The shell's call metrics: calls ended by direction and outcome, their length, and the events
waiting in call inboxes. Counted by the dispatcher from what each call's facts said."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import asyncpg
import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from sambung.engine.calls import (
    CALL_DIRECTIONS,
    CALL_OUTCOMES,
    CallDispatcher,
    CallHandler,
    CallInbox,
    call_outcome,
)
from sambung.engine.events import CallEnded, CallOffered, DigitPressed
from sambung.engine.facts import (
    CallEndedFact,
    CallStartedFact,
    FactWriter,
    IvrSessionEndedFact,
    fact_to_json,
)
from sambung.engine.metrics import Metrics, build_metrics

T = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def offer(cid: str, kind: str = "inbound") -> CallOffered:
    return CallOffered(cid, f"PJSIP/trunk-{cid}", "1500", "0811", "Budi", T, kind=kind)


def started(cid: str, direction: str = "inbound", at: datetime = T) -> CallStartedFact:
    return CallStartedFact(cid, direction, "", "1500", "0811", "", None, "ast", "e1", at)


def ended(cid: str, reason: str, after: float) -> CallEndedFact:
    return CallEndedFact(cid, T + timedelta(seconds=after), reason, 16, None, None)


def writer(metrics: Metrics, tmp_path: Path) -> FactWriter:
    # ``record`` never touches the pool: the writer task (not run here) does.
    return FactWriter(cast("asyncpg.Pool", None), metrics, tmp_path / "facts.jsonl")


def calls(m: Metrics, direction: str, outcome: str) -> float:
    value = m.registry.get_sample_value(
        "sambung_calls_total", {"direction": direction, "outcome": outcome}
    )
    return value or 0.0


def durations(m: Metrics) -> tuple[float, float]:
    count = m.registry.get_sample_value("sambung_call_duration_seconds_count") or 0.0
    total = m.registry.get_sample_value("sambung_call_duration_seconds_sum") or 0.0
    return count, total


def depth(m: Metrics) -> float:
    # Through the exposition, as Prometheus reads it (the gauge is computed at scrape time).
    text = generate_latest(m.registry).decode()
    found = re.search(r"^sambung_dispatch_queue_depth (\S+)$", text, re.M)
    assert found is not None
    return float(found.group(1))


async def no_offers(o: CallOffered, inbox: CallInbox) -> None:
    raise AssertionError("no offer expected")


async def no_refusals(o: CallOffered) -> None:
    raise AssertionError("not refusing")


def dispatcher(m: Metrics, handler: CallHandler = no_offers) -> CallDispatcher:
    return CallDispatcher(handler, no_refusals, m)


# ---- counting a call -----------------------------------------------------------------------


async def test_given_a_start_and_an_end_then_one_call_and_one_duration(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        facts.record(started(o.call_id))
        await inbox.next(timeout=1)
        facts.record(ended(o.call_id, "completed", 42.5))

    d = dispatcher(m, handler)
    d.dispatch(offer("a"))
    await asyncio.sleep(0)
    assert calls(m, "inbound", "completed") == 0  # counted when the call ends, not before
    d.dispatch(CallEnded("a", 16, "Normal Clearing", T))
    assert await d.drain(1)
    assert calls(m, "inbound", "completed") == 1
    assert durations(m) == (1, 42.5)  # the facts' own times: offer to end


async def test_given_an_end_without_a_start_then_counted_from_when_the_task_began(
    tmp_path: Path,
) -> None:
    # The dialer writes its calls row itself, so an attempt's task records only the end.
    m = build_metrics()
    facts = writer(m, tmp_path)
    before = datetime.now(UTC)

    async def attempt(inbox: CallInbox) -> None:
        facts.record(CallEndedFact("att-1", datetime.now(UTC), "not_answered:busy", 17, "", 486))

    d = dispatcher(m)
    assert d.start_owned("att-1", attempt)
    assert await d.drain(1)
    after = datetime.now(UTC)
    assert calls(m, "outbound", "not_reached") == 1
    count, total = durations(m)
    assert count == 1
    assert 0 <= total <= (after - before).total_seconds()


async def test_a_start_fact_names_the_direction_over_the_dispatchers_guess(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def callback(inbox: CallInbox) -> None:
        facts.record(started("cb-1", "callback"))
        facts.record(ended("cb-1", "callback_completed", 300))

    d = dispatcher(m)
    assert d.start_owned("cb-1", callback)
    assert await d.drain(1)
    assert calls(m, "callback", "completed") == 1
    assert durations(m) == (1, 300)


async def test_start_owned_takes_a_direction_for_calls_that_record_none(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def attempt(inbox: CallInbox) -> None:
        facts.record(CallEndedFact("att-2", datetime.now(UTC), "reminder_played", 16, "", None))

    d = dispatcher(m)
    assert d.start_owned("att-2", attempt, direction="dialer")
    assert await d.drain(1)
    assert calls(m, "dialer", "completed") == 1


async def test_a_task_that_placed_no_call_is_not_counted(tmp_path: Path) -> None:
    m = build_metrics()

    async def held_back(inbox: CallInbox) -> None:
        return  # the callback rules said not now: nothing dialled, no facts

    d = dispatcher(m)
    assert d.start_owned("cb-2", held_back)
    assert await d.drain(1)
    assert durations(m) == (0, 0)


async def test_an_offer_whose_task_records_no_end_is_lost_and_said_so(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        facts.record(started(o.call_id))
        raise RuntimeError("a bug before the end was recorded")

    with capture_logs() as logs:
        d = dispatcher(m, handler)
        d.dispatch(offer("a"))
        assert await d.drain(1)
    assert calls(m, "inbound", "lost") == 1
    assert durations(m)[0] == 1
    assert any(e["event"] == "calls.end_not_recorded" for e in logs)


async def test_a_desk_phone_feature_code_is_an_agent_feature_call(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        facts.record(ended(o.call_id, "feature_wrong_pin", 8))

    d = dispatcher(m, handler)
    d.dispatch(offer("f", kind="feature"))
    assert await d.drain(1)
    assert calls(m, "agent_feature", "refused") == 1
    assert durations(m) == (1, 8)  # from the offer's time


async def test_given_the_engine_ended_the_call_then_lost_whatever_the_feature_says(
    tmp_path: Path,
) -> None:
    # A queue reads a synthetic end like a caller leaving; the truth is that the engine lost it.
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        facts.record(started(o.call_id))
        ev = await inbox.next(timeout=1)
        assert isinstance(ev, CallEnded)
        facts.record(ended(o.call_id, "caller_abandoned_queue", 20))

    d = dispatcher(m, handler)
    d.dispatch(offer("a"))
    d.dispatch(offer("b"))
    d.end_calls({"a"}, "asterisk_restart")
    # The adapter's own "lost while disconnected" end, routed like any event.
    d.dispatch(CallEnded("b", 0, "lost while disconnected", T, reason="lost"))
    assert await d.drain(1)
    assert calls(m, "inbound", "lost") == 2
    assert calls(m, "inbound", "abandoned") == 0


async def test_the_first_end_counts_once_and_facts_of_other_calls_are_ignored(
    tmp_path: Path,
) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        facts.record(started(o.call_id))
        facts.record(ended("someone-else", "engine_error", 1))
        facts.record(ended(o.call_id, "agent_hung_up", 60))
        facts.record(ended(o.call_id, "engine_error", 61))  # ignored, as by the calls row

    d = dispatcher(m, handler)
    d.dispatch(offer("a"))
    assert await d.drain(1)
    assert calls(m, "inbound", "completed") == 1
    assert calls(m, "inbound", "failed") == 0
    assert durations(m) == (1, 60)


async def test_facts_recorded_by_a_task_the_call_started_still_count(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        async def helper() -> None:
            facts.record(ended(o.call_id, "ivr_completed", 30))

        await asyncio.create_task(helper())

    d = dispatcher(m, handler)
    d.dispatch(offer("a"))
    assert await d.drain(1)
    assert calls(m, "inbound", "completed") == 1


async def test_facts_outside_call_tasks_count_nothing(tmp_path: Path) -> None:
    m = build_metrics()
    # A previous run's facts (a spool of an earlier version: plain JSON lines), replayed at
    # start: that run counted its calls.
    spool = tmp_path / "facts.jsonl"
    spool.write_text(fact_to_json(started("y")) + "\n" + fact_to_json(ended("y", "completed", 5)))
    facts = writer(m, tmp_path)
    d = dispatcher(m)
    assert facts.replay_spool() == 2
    facts.record(started("x"))
    facts.record(ended("x", "completed", 5))
    assert await d.drain(1)
    assert durations(m) == (0, 0)
    assert facts.pending == 4


async def test_a_flows_own_hang_up_reason_reads_as_the_ivr_says(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        facts.record(started(o.call_id))
        facts.record(
            IvrSessionEndedFact(o.call_id, T, "completed", "after_hours", "closed", "id", "{}")
        )
        facts.record(ended(o.call_id, "after_hours", 12))

    d = dispatcher(m, handler)
    d.dispatch(offer("a"))
    assert await d.drain(1)
    assert calls(m, "inbound", "completed") == 1


async def test_an_unknown_end_reason_is_other_and_logged_once(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        facts.record(started(o.call_id))
        facts.record(ended(o.call_id, "gremlins", 3))

    with capture_logs() as logs:
        d = dispatcher(m, handler)
        d.dispatch(offer("a"))
        d.dispatch(offer("b"))
        assert await d.drain(1)
    assert calls(m, "inbound", "other") == 2
    unknown = [e for e in logs if e["event"] == "calls.unknown_end_reason"]
    assert [e["reason"] for e in unknown] == ["gremlins"]


async def test_an_unknown_direction_is_other(tmp_path: Path) -> None:
    m = build_metrics()
    facts = writer(m, tmp_path)

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        facts.record(started(o.call_id, "sideways"))
        facts.record(ended(o.call_id, "completed", 3))

    d = dispatcher(m, handler)
    d.dispatch(offer("a"))
    assert await d.drain(1)
    assert calls(m, "other", "completed") == 1


# ---- the outcome label -------------------------------------------------------------------

# Every end reason the features record today (search CallEndedFact, end_reason, _finish,
# _polite_hangup, _close, _hangup, .end( in acd/, ivr/, dialer/, engine/), with the outcome
# the contract gives it. A new reason lands in "other" (and the log) until it is added to
# sambung/engine/calls.py and here.
REASONS_IN_USE = {
    # hotline greetings (sambung/ivr/greeting.py: a flow, so the IVR's reasons below apply too)
    "completed": "completed",
    "unknown_number": "refused",
    "engine_error": "failed",
    "timeout": "failed",
    "refused_shutdown": "refused",
    "shutdown": "lost",
    # the engine's own ends (sambung/engine/calls.py end_calls, the ARI adapter, start-up)
    "asterisk_restart": "lost",
    "lost_while_disconnected": "lost",
    "lost": "lost",
    "engine_restart": "lost",
    # the IVR (sambung/ivr/runner.py, sambung/ivr/menu.py; a flow's hang-up nodes name their own)
    "ivr_completed": "completed",
    "max_attempts": "completed",
    "caller_abandoned_ivr": "abandoned",
    "flow_loop": "failed",
    "flow_error": "failed",
    "transfer:collections": "abandoned",
    # queues (sambung/acd/call.py)
    "agent_hung_up": "completed",
    "caller_hung_up": "completed",
    "message_left": "completed",
    "callback_requested": "completed",
    "caller_abandoned_queue": "abandoned",
    "message_abandoned": "abandoned",
    "overflow_hangup": "refused",
    # callbacks (sambung/acd/callback.py): "callback_agent_" + the offer's outcome
    "callback_completed": "completed",
    "callback_no_answer": "not_reached",
    "callback_failed": "failed",
    "callback_agent_rona": "not_reached",
    "callback_agent_busy": "not_reached",
    "callback_agent_unavailable": "not_reached",
    # desk-phone feature codes (sambung/acd/features.py): "feature_" + the result
    "feature_ok": "completed",
    "feature_abandoned": "abandoned",
    "feature_wrong_pin": "refused",
    "feature_refused": "refused",
    "feature_unknown_phone": "refused",
    "feature_unknown_code": "refused",
    "feature_failed": "failed",
    # the dialer (sambung/dialer/call.py): its end reason, else the attempt's outcome
    "originate_failed": "failed",
    "ring_timeout": "not_reached",
    "not_answered:busy": "not_reached",
    "not_answered:no_answer": "not_reached",
    "not_answered:rejected": "not_reached",
    "not_answered:congestion": "not_reached",
    "not_answered:invalid_number": "not_reached",
    "not_answered:failed": "failed",
    "not_answered:cancelled": "refused",
    "hung_up_at_answer": "abandoned",
    "hung_up_during_amd": "abandoned",
    "machine": "not_reached",
    "reminder_played": "completed",
    "connected": "completed",
    "reminder": "completed",
    "abandoned": "abandoned",
    "busy": "not_reached",
    "no_answer": "not_reached",
    "rejected": "not_reached",
    "congestion": "not_reached",
    "invalid_number": "not_reached",
    "failed": "failed",
    "cancelled": "refused",
}


@pytest.mark.parametrize(("reason", "outcome"), sorted(REASONS_IN_USE.items()))
def test_every_end_reason_in_use_has_its_outcome(reason: str, outcome: str) -> None:
    assert call_outcome(reason) == outcome


@pytest.mark.parametrize(
    "reason", ["", "gremlins", "not_answered:", "not_answered:gremlins", "feature_", "ivr_failed"]
)
def test_an_unknown_reason_is_other(reason: str) -> None:
    assert call_outcome(reason) == "other"


def test_a_flows_reason_follows_the_ivr_only_when_the_ivr_ended_the_call_with_it() -> None:
    assert call_outcome("after_hours", ("after_hours", "completed")) == "completed"
    assert call_outcome("ivr_failed", ("ivr_failed", "failed")) == "failed"
    assert call_outcome("after_hours", ("transfer:collections", "transferred")) == "other"
    assert call_outcome("after_hours", ("after_hours", "transferred")) == "other"
    # A reason the table knows is not second-guessed.
    assert call_outcome("caller_abandoned_queue", ("x", "completed")) == "abandoned"


def test_the_label_values_are_the_documented_ones() -> None:
    text = " ".join(DOC.read_text().split())
    bullet = re.search(r"- `direction` of `sambung_calls_total`: (.*?)\. A call is counted", text)
    assert bullet is not None
    listing = re.sub(r"\([^)]*\)", "", bullet.group(1))
    directions, outcomes = listing.split("; `outcome`: ")
    assert {v.strip() for v in directions.split(",")} == CALL_DIRECTIONS | {"other"}
    assert [v.strip() for v in outcomes.split(",")] == list(CALL_OUTCOMES)
    assert set(REASONS_IN_USE.values()) <= set(CALL_OUTCOMES) - {"other"}


# ---- events waiting in call inboxes -------------------------------------------------------


async def test_the_queue_depth_counts_events_not_yet_taken_by_call_tasks() -> None:
    m = build_metrics()
    release = asyncio.Event()

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        await release.wait()  # busy elsewhere: events wait
        while (ev := await inbox.next(timeout=1)) is not None:
            if isinstance(ev, CallEnded):
                return

    d = dispatcher(m, handler)
    assert depth(m) == 0
    d.dispatch(offer("a"))
    d.dispatch(offer("b"))
    d.dispatch(DigitPressed("a", "1", 80, T))
    d.dispatch(DigitPressed("b", "2", 80, T))
    d.dispatch(DigitPressed("a", "3", 80, T))
    d.dispatch(DigitPressed("nobody", "4", 80, T))  # no owner: dropped, never waiting
    assert depth(m) == 3
    d.dispatch(CallEnded("a", 16, "Normal Clearing", T))
    d.dispatch(CallEnded("b", 16, "Normal Clearing", T))
    assert depth(m) == 5
    release.set()
    assert await d.drain(1)
    assert depth(m) == 0


async def test_events_left_unread_when_a_task_ends_do_not_stay_in_the_depth() -> None:
    m = build_metrics()

    async def handler(o: CallOffered, inbox: CallInbox) -> None:
        await asyncio.sleep(0.01)  # ends without reading what came meanwhile

    d = dispatcher(m, handler)
    d.dispatch(offer("a"))
    d.dispatch(DigitPressed("a", "1", 80, T))
    assert depth(m) == 1
    assert await d.drain(1)
    assert depth(m) == 0
