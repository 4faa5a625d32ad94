"""The whole engine (dispatcher, greeting flow, facts) against the fake ARI and real PostgreSQL."""

from __future__ import annotations

import asyncio

from sambung.engine.reconcile import ORPHAN_GRACE_SECONDS
from tests.fakes.fake_ari import FakeAri, channel_json
from tests.integration.harness import engine_database, engine_running, running_engine

NO_AMI = {"enabled": False}


async def test_given_a_hotline_call_then_answered_greeted_hung_up_and_recorded(
    fake_ari: FakeAri,
) -> None:
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        cid = await fake_ari.inbound_call("1700000000.11", did="1500")
        row = await run.wait_closed(call_id=cid, timeout=5)
        assert row["end_reason"] == "completed"
        assert row["hotline"] == "Collections hotline"
        assert row["caller_number"] == "628111000111"
        assert row["asterisk_id"] == fake_ari.entity_id
        assert fake_ari.requests_to("POST", rf"/channels/{cid}/answer")
        plays = fake_ari.requests_to("POST", rf"/channels/{cid}/play.*")
        assert len(plays) == 1
        assert fake_ari.requests_to("DELETE", rf"/channels/{cid}")
        assert run.engine.dispatcher is not None
        assert run.engine.dispatcher.active_calls == {}


async def test_given_an_unknown_did_then_the_unknown_number_prompt_plays(
    fake_ari: FakeAri,
) -> None:
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        cid = await fake_ari.inbound_call("1700000000.12", did="4242")
        row = await run.wait_closed(call_id=cid, timeout=5)
        assert row["end_reason"] == "unknown_number"
        assert row["hotline"] is None
        play = fake_ari.requests_to("POST", rf"/channels/{cid}/play.*")[0]
        assert "sound:sambung/unknown-number" in str(play.body)


async def test_given_the_caller_hangs_up_mid_greeting_then_abandoned_in_the_ivr(
    fake_ari: FakeAri,
) -> None:
    fake_ari.playback_duration = 5.0
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        cid = await fake_ari.inbound_call("1700000000.13")
        await run.wait_open(call_id=cid, timeout=5)
        await fake_ari.caller_hangup(cid)
        row = await run.wait_closed(call_id=cid, timeout=5)
        assert row["end_reason"] == "caller_abandoned_ivr"
        assert row["hangup_cause"] == 16


async def test_given_the_socket_drops_mid_prompt_then_the_call_still_completes(
    fake_ari: FakeAri,
) -> None:
    fake_ari.playback_duration = 0.8
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        cid = await fake_ari.inbound_call("1700000000.14")
        await run.wait_open(call_id=cid, timeout=5)
        await fake_ari.drop_connections()
        # The prompt finishes while the socket is down, so its PlaybackFinished is lost; the
        # call must learn it from the resync after reconnecting.
        row = await run.wait_closed(call_id=cid, timeout=10)
        assert row["end_reason"] == "completed"
        assert fake_ari.connections >= 2
        # The greeting's playback (the flow's first prompt), asked about after the reconnect.
        assert fake_ari.requests_to("GET", rf"/playbacks/{cid}-1-0")


async def test_given_asterisk_restarts_mid_call_then_the_call_is_closed_with_that_reason(
    fake_ari: FakeAri,
) -> None:
    fake_ari.playback_duration = 30.0
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        cid = await fake_ari.inbound_call("1700000000.15")
        await run.wait_open(call_id=cid, timeout=5)
        fake_ari.restart()
        await fake_ari.drop_connections()
        row = await run.wait_closed(call_id=cid, timeout=10)
        assert row["end_reason"] == "asterisk_restart"
        # and the next call is served
        fake_ari.playback_duration = 0.02
        nxt = await fake_ari.inbound_call("1700000000.16")
        assert (await run.wait_closed(call_id=nxt, timeout=5))["end_reason"] == "completed"


async def test_given_rows_left_open_by_a_previous_run_then_closed_at_start(
    fake_ari: FakeAri,
) -> None:
    async with engine_database() as database:
        _, pool = database
        # A row the previous life of this instance never closed (it was killed mid-call).
        await pool.execute(
            """INSERT INTO calls (call_id, direction, channel_name, did, caller_number,
                   engine_instance, started_at)
               VALUES ('stale.1', 'inbound', 'PJSIP/trunk-1', '1500', '1', 'sambung-example',
                       now() - interval '1 hour')"""
        )
        async with engine_running(database, fake_ari.base_url, ami=NO_AMI) as run:
            row = await run.wait_closed(call_id="stale.1", timeout=5)
            assert row["end_reason"] == "engine_restart"


async def test_given_shutdown_with_a_call_up_then_it_is_hung_up_and_recorded(
    fake_ari: FakeAri,
) -> None:
    fake_ari.playback_duration = 30.0
    async with engine_database() as database:
        async with engine_running(
            database, fake_ari.base_url, ami=NO_AMI, engine={"drain_timeout_seconds": 0.3}
        ) as run:
            cid = await fake_ari.inbound_call("1700000000.17")
            await run.wait_open(call_id=cid, timeout=5)
        # The engine has stopped: the call was hung up and its row closed before it exited.
        assert fake_ari.requests_to("DELETE", rf"/channels/{cid}")
        row = await database[1].fetchrow("SELECT * FROM calls WHERE call_id = $1", cid)
        assert row is not None
        assert row["end_reason"] in ("shutdown", "completed")
        assert row["ended_at"] is not None


async def test_given_a_channel_left_by_a_previous_engine_then_it_is_hung_up_after_a_grace(
    fake_ari: FakeAri,
) -> None:
    # In Stasis before this engine connected: nobody can rebuild that call's state.
    fake_ari.channels["left.1"] = channel_json("left.1", state="Up")
    async with running_engine(fake_ari.base_url, ami=NO_AMI) as run:
        # A call arriving right after the connect is not mistaken for an orphan.
        cid = await fake_ari.inbound_call("1700000000.18")
        await run.wait_closed(call_id=cid, timeout=5)
        deadline = asyncio.get_running_loop().time() + ORPHAN_GRACE_SECONDS + 3
        while not fake_ari.requests_to("DELETE", r"/channels/left\.1"):
            assert asyncio.get_running_loop().time() < deadline, "orphan was not hung up"
            await asyncio.sleep(0.1)
        hangups = [r.path for r in fake_ari.requests if r.method == "DELETE"]
        assert hangups.count(f"/channels/{cid}") == 1
