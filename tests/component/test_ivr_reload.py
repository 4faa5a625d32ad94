"""Hot reload of flow files through the API: a good file swaps in, a bad one is refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp

from sambung.dialer import compliance
from tests.fakes.fake_ari import FakeAri
from tests.integration.harness import TOKEN, running_engine

FLOW = """
flow: reloadable
dids: ["1502"]
default_language: en
languages: [en]
start: bye
nodes:
  bye: {type: hangup, prompts: [%s], reason: ivr_completed}
"""


async def test_reload_swaps_a_good_flow_and_refuses_a_bad_one(
    fake_ari: FakeAri, tmp_path: Path
) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW % "vm-goodbye")
    async with running_engine(
        fake_ari.base_url,
        ami={"enabled": False},
        ivr={"flows": [path], "sounds_root": None, "queues": []},
    ) as run:
        v1 = run.engine.ivr.flows.by_did["1502"].version
        url = f"http://127.0.0.1:{run.engine.http_port}/api/v1/flows/reload"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:
            path.write_text(FLOW % "hello-world")
            async with http.post(url, headers=auth) as resp:
                assert resp.status == 200
                body = await resp.json()
            v2 = run.engine.ivr.flows.by_did["1502"].version
            assert v2 != v1
            assert body["flows"][0]["version"] == v2[:12]

            path.write_text(FLOW.replace("start: bye", "start: byee") % "hello-world")
            async with http.post(url, headers=auth) as resp:
                assert resp.status == 422
                problem = await resp.json()
            assert problem["error_id"] == "ivr.flow_invalid"
            assert "byee" in problem["detail"]
            assert str(path) in problem["detail"]
            assert run.engine.ivr.flows.by_did["1502"].version == v2  # the old one stays

            async with http.post(url) as resp:
                assert resp.status == 401
        m = run.engine.metrics.ivr_flow_reloads
        assert m.labels(result="ok")._value.get() == 1
        assert m.labels(result="refused")._value.get() == 1


CAL_FLOW = """
flow: calendared
dids: ["1502"]
default_language: en
languages: [en]
start: bye
calendars:
  office:
    timezone: Asia/Jakarta
    hours: {mon-sat: "08:00-17:00"}
    holiday_calendar: id-national
nodes:
  bye: {type: hangup, prompts: [vm-goodbye], reason: ivr_completed}
"""
ADDED = date(2027, 6, 2)  # a Wednesday, no holiday in the package
NOON_WIB = datetime(2027, 6, 2, 5, 0, tzinfo=UTC)
ADD = f"""changes:
  - add: "{ADDED}"
    name: Example one-off holiday
    source: test
"""


async def test_reload_and_sighup_reload_dialer_and_ivr_calendars_alike(
    fake_ari: FakeAri, tmp_path: Path
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(CAL_FLOW)
    over = tmp_path / "overrides.yaml"
    over.write_text("changes: []\n")
    async with running_engine(
        fake_ari.base_url,
        ami={"enabled": False},
        ivr={"flows": [flow], "sounds_root": None, "queues": []},
        calendars={"id-national": {"overrides": [over]}},
    ) as run:
        engine = run.engine

        def ivr_closed() -> bool:
            return engine.ivr.flows.by_did["1502"].calendar("office").closed_day(ADDED)

        def dialer_closed() -> set[str | None]:
            return {
                compliance.closed_reason(c.window, "Asia/Jakarta", NOON_WIB)
                for c in engine.dialer.service.campaigns.values()
            }

        assert not ivr_closed()
        assert dialer_closed() == {None}

        # `sambung reload` (the API it calls): the added day reaches both.
        over.write_text(ADD)
        url = f"http://127.0.0.1:{engine.http_port}/api/v1/flows/reload"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(url, headers=auth) as resp:
                assert resp.status == 200
            assert ivr_closed()
            assert dialer_closed() == {"holiday"}

            # A broken override file is refused, naming file and key; both keep the old days.
            over.write_text('changes:\n  - add: "2027-02-30"\n    name: x\n    source: y\n')
            async with http.post(url, headers=auth) as resp:
                assert resp.status == 422
                problem = await resp.json()
            assert problem["error_id"] == "calendar.invalid"
            assert str(over) in problem["detail"]
            assert "changes[0].add" in problem["detail"]
            assert ivr_closed()
            assert dialer_closed() == {"holiday"}

        # SIGHUP runs engine.request_reload: the day is dropped again, in both.
        over.write_text("changes: []\n")
        engine.request_reload()
        for _ in range(100):
            if not ivr_closed():
                break
            await asyncio.sleep(0.05)
        assert not ivr_closed()
        assert dialer_closed() == {None}
        m = engine.metrics.calendar_reloads
        assert m.labels(result="ok")._value.get() == 2
        assert m.labels(result="refused")._value.get() == 1
