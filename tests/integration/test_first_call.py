"""A real SIP call from the trunk through the engine, end to end, including the database row."""

from __future__ import annotations

import aiohttp

from tests.integration.harness import TOKEN, running_engine, sipp


async def test_given_the_hotline_when_a_caller_dials_then_greeted_hung_up_and_recorded() -> None:
    async with running_engine() as run:
        result = await sipp("uac_wait_bye.xml", "1500")
        assert result.returncode == 0, result.output
        row = await run.wait_closed(did="1500")
        assert row["direction"] == "inbound"
        assert row["hotline"] == "Collections hotline"
        assert row["caller_number"] == "sipp"
        assert row["channel_name"].startswith("PJSIP/trunk-")
        assert row["started_at"] <= row["answered_at"] <= row["ended_at"]
        assert row["end_reason"] == "completed"
        assert row["hangup_cause"] == 16
        # The API shows the same record to an authenticated client, and nothing without a token.
        port = run.engine.http_port
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/api/v1/calls/{row['call_id']}"
            async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                assert resp.status == 200
                assert (await resp.json())["end_reason"] == "completed"
            async with http.get(url) as resp:
                assert resp.status == 401
            async with http.get(f"http://127.0.0.1:{port}/ready") as resp:
                assert resp.status == 200


async def test_given_an_unknown_number_when_dialled_then_a_polite_message_and_hang_up() -> None:
    async with running_engine() as run:
        result = await sipp("uac_wait_bye.xml", "9999")
        assert result.returncode == 0, result.output
        row = await run.wait_closed(did="9999")
        assert row["hotline"] is None
        assert row["answered_at"] is not None
        assert row["end_reason"] == "unknown_number"


async def test_given_a_caller_who_hangs_up_mid_greeting_then_the_row_says_so() -> None:
    long_greeting = {
        "did": "1501",
        "name": "Long greeting",
        "language": "en",
        "greeting": ["sound:sambung/welcome"] * 4,
    }
    async with running_engine(hotlines=[long_greeting]) as run:
        # The caller stays one second, well inside the greeting, then sends BYE.
        result = await sipp("uac_call.xml", "1501", extra=["-d", "1000"])
        assert result.returncode == 0, result.output
        row = await run.wait_closed(did="1501")
        assert row["end_reason"] == "caller_abandoned_ivr"
        assert row["hangup_cause"] == 16
        assert (row["ended_at"] - row["answered_at"]).total_seconds() < 4
