"""The IVR inside the engine, against the fake ARI and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from sambung.ivr.flows import FlowTable
from sambung.ivr.model import EnvHeader, Flow, HangupNode, InputNode, LookupNode, MenuNode, Retry
from tests.fakes.fake_ari import FakeAri
from tests.integration.harness import RunningEngine, running_engine

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
        run.engine.ivr.flows = FlowTable({"1502": flow("v1")})
        first = await fake_ari.inbound_call("1700000000.31", did="1502")
        await run.wait_open(call_id=first, timeout=5)
        # A reload swaps the table; the call in progress holds on to v1.
        run.engine.ivr.flows = FlowTable({"1502": flow("v2")})
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
        run.engine.ivr.flows = FlowTable({"1502": flow("v1")})
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
        run.engine.ivr.flows = FlowTable({"1502": flow("v1")})
        cid = await fake_ari.inbound_call("1700000000.34", did="1502")
        await run.wait_open(call_id=cid, timeout=5)
        await fake_ari.caller_hangup(cid)
        row = await run.wait_closed(call_id=cid, timeout=5)
        assert row["end_reason"] == "caller_abandoned_ivr"
        s = await run.pool.fetchrow("SELECT * FROM ivr_sessions WHERE call_id = $1", cid)
        assert s is not None
        assert s["outcome"] == "abandoned"
        assert s["last_node"] == "main"


# ---- lookups: caller data never walks the CRM's paths; headers from the environment --------


@dataclass
class CrmSeen:
    url: str
    paths: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)


@asynccontextmanager
async def crm_recorder() -> AsyncIterator[CrmSeen]:
    """A CRM stand-in that answers every path and keeps the raw path and Authorization."""
    seen = CrmSeen("")

    async def anything(request: web.Request) -> web.Response:
        seen.paths.append(request.raw_path)
        seen.auth.append(request.headers.get("Authorization"))
        return web.json_response({"name": "Budi"})

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    seen.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield seen
    finally:
        await runner.cleanup()


def lookup_flow(crm: str) -> Flow:
    nodes = (
        LookupNode(
            "crm",
            crm + "/accounts/by-phone/{caller_number}/detail",
            next="found",
            on_failure="refused",
            timeout_seconds=2.0,
            retries=0,
            headers=(EnvHeader("Authorization", "CRM_AUTH", "Bearer t0ken"),),
        ),
        HangupNode("found", (), "found"),
        HangupNode("refused", (), "lookup_refused"),
    )
    return Flow(
        name="crm",
        dids=("1503",),
        start="crm",
        nodes=tuple((n.id, n) for n in nodes),
        default_language="en",
        languages=("en",),
        zero_out_target=None,
        source="test",
        version="v1",
    )


async def steps_of(run: RunningEngine, cid: str) -> list[tuple[str, str, str | None]]:
    rows = await run.pool.fetch("SELECT * FROM ivr_steps WHERE call_id = $1 ORDER BY seq", cid)
    return [(r["node"], r["kind"], r["choice"]) for r in rows]


async def test_given_a_caller_number_of_dot_dot_then_the_crm_never_sees_a_request(
    fake_ari: FakeAri,
) -> None:
    async with crm_recorder() as crm, running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        run.engine.ivr.flows = FlowTable({"1503": lookup_flow(crm.url)})
        cid = await fake_ari.inbound_call("1700000000.41", did="1503", caller_number="..")
        row = await run.wait_closed(call_id=cid, timeout=5)
        assert row["end_reason"] == "lookup_refused"
        assert crm.paths == []
        assert ("crm", "lookup_failed", "dot_segment:caller_number") in await steps_of(run, cid)

        # A number is one segment, sent as built, with the header from the environment.
        ok = await fake_ari.inbound_call("1700000000.42", did="1503", caller_number="0811/234")
        assert (await run.wait_closed(call_id=ok, timeout=5))["end_reason"] == "found"
        assert crm.paths == ["/accounts/by-phone/0811%2F234/detail"]
        assert crm.auth == ["Bearer t0ken"]


def input_flow(name: str, did: str, node: InputNode) -> Flow:
    """A one-input flow on ``did``: the input, then a hang-up."""
    nodes = (node, HangupNode("bye", (), "ivr_completed"))
    return Flow(
        name,
        (did,),
        node.id,
        tuple((n.id, n) for n in nodes),
        "en",
        ("en",),
        zero_out_target=None,
        source="test",
        version="v1",
    )


async def test_given_a_sensitive_input_then_its_digits_are_not_stored(fake_ari: FakeAri) -> None:
    flow = input_flow(
        "pin",
        "1504",
        InputNode(
            "pin", ("sound:beep",), "secret", "bye", min_length=4, max_length=4, sensitive=True
        ),
    )
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        run.engine.ivr.flows = FlowTable({"1504": flow})
        cid = await fake_ari.inbound_call("1700000000.43", did="1504")
        await run.wait_open(call_id=cid, timeout=5)
        for d in "4321":
            await fake_ari.press_digit(cid, d)
        assert (await run.wait_closed(call_id=cid, timeout=5))["end_reason"] == "ivr_completed"
        assert ("pin", "input", None) in await steps_of(run, cid)
        session = await run.pool.fetchrow("SELECT * FROM ivr_sessions WHERE call_id = $1", cid)
        assert session is not None
        assert "4321" not in str(session["attributes"])
        assert "4321" not in str(await run.pool.fetch("SELECT * FROM ivr_steps"))
