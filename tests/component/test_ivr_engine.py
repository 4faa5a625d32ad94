"""The IVR inside the engine, against the fake ARI and a real PostgreSQL."""

from __future__ import annotations

from ivr.flows import FlowTable
from ivr.model import Flow, HangupNode, MenuNode, Retry
from tests.fakes.fake_ari import FakeAri
from tests.integration.harness import running_engine

NO_AMI = {"enabled": False}


def flow(version: str, did: str = "1502") -> Flow:
    nodes = (
        MenuNode(
            "main",
            ("sound:demo-congrats",),
            (("1", "bye"),),
            timeout_seconds=30,
            retry=Retry(1, (), (), "bye"),
        ),
        HangupNode("bye", ("sound:vm-goodbye",), "ivr_completed"),
    )
    return Flow(
        name="cc",
        dids=(did,),
        start="main",
        nodes=tuple((n.id, n) for n in nodes),
        default_language="en",
        languages=("en",),
        zero_out_target=None,
        source="test",
        version=version,
    )


async def test_a_call_keeps_its_flow_version_across_a_reload(fake_ari: FakeAri) -> None:
    fake_ari.playback_duration = 30.0
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        run.engine.flows = FlowTable({"1502": flow("v1")})
        first = await fake_ari.inbound_call("1700000000.31", did="1502")
        await run.wait_open(call_id=first, timeout=5)
        # A reload swaps the table; the call in progress holds on to v1.
        run.engine.flows = FlowTable({"1502": flow("v2")})
        second = await fake_ari.inbound_call("1700000000.32", did="1502")
        await run.wait_open(call_id=second, timeout=5)
        versions = {
            r["call_id"]: r["flow_version"]
            for r in await run.pool.fetch("SELECT call_id, flow_version FROM ivr_sessions")
        }
        assert versions == {first: "v1", second: "v2"}
        fake_ari.playback_duration = 0.02
        await fake_ari.press_digit(first, "1")
        await fake_ari.press_digit(second, "1")
        assert (await run.wait_closed(call_id=first, timeout=5))["end_reason"] == "ivr_completed"
        assert (await run.wait_closed(call_id=second, timeout=5))["end_reason"] == "ivr_completed"


async def test_menu_key_barges_in_and_the_step_facts_are_written(fake_ari: FakeAri) -> None:
    fake_ari.playback_duration = 30.0
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        run.engine.flows = FlowTable({"1502": flow("v1")})
        cid = await fake_ari.inbound_call("1700000000.33", did="1502")
        await run.wait_open(call_id=cid, timeout=5)
        fake_ari.playback_duration = 0.02
        await fake_ari.press_digit(cid, "1")
        row = await run.wait_closed(call_id=cid, timeout=5)
        assert row["end_reason"] == "ivr_completed"
        # The menu prompt was stopped at the key press, not played to its end.
        assert fake_ari.requests_to("DELETE", rf"/playbacks/{cid}-.*")
        steps = [
            (r["node"], r["kind"], r["choice"])
            for r in await run.pool.fetch(
                "SELECT * FROM ivr_steps WHERE call_id = $1 ORDER BY seq", cid
            )
        ]
        assert ("main", "option", "1") in steps
        assert steps[0][:2] == ("main", "enter")
        metrics = run.engine.metrics
        assert metrics.ivr_outcomes.labels(flow="cc", outcome="completed")._value.get() == 1


async def test_a_caller_who_leaves_mid_menu_is_an_abandoned_session(fake_ari: FakeAri) -> None:
    fake_ari.playback_duration = 30.0
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        run.engine.flows = FlowTable({"1502": flow("v1")})
        cid = await fake_ari.inbound_call("1700000000.34", did="1502")
        await run.wait_open(call_id=cid, timeout=5)
        await fake_ari.caller_hangup(cid)
        row = await run.wait_closed(call_id=cid, timeout=5)
        assert row["end_reason"] == "caller_abandoned_ivr"
        s = await run.pool.fetchrow("SELECT * FROM ivr_sessions WHERE call_id = $1", cid)
        assert s is not None
        assert s["outcome"] == "abandoned"
        assert s["last_node"] == "main"
