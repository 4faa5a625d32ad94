"""The recordings and monitoring routes in the engine's HTTP app: roles from the tokens,
downloads with Range, and the audit of every listen, download and monitoring session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from sambung.engine.facts import Fact
from sambung.engine.http import HttpDeps, RoleToken, build_app
from sambung.recordings import Recordings
from sambung.recordings import store as sql
from sambung.recordings.journal import Journal
from sambung.recordings.model import Policy, Rules, ScopeRules
from sambung.recordings.monitor import MonitorService
from sambung.recordings.service import RecordingService
from sambung.recordings.storage import LocalDirectoryStore
from tests.component.test_recordings_service import until
from tests.dbutil import migrated_pool
from tests.unit.test_recordings_fakes import FakeChannel, FakeRecordingAri

ADMIN = "admin-token-0123456789"
SUPERVISOR = "supervisor-token-0123456789"
SITI = "siti-agent-token-0123456789"
MADE = "made-agent-token-0123456789"
NOPHONE = "nophone-supervisor-token-0123"


@contextlib.asynccontextmanager
async def api(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Any]]:
    facts: list[Fact] = []
    ari = FakeRecordingAri()
    async with migrated_pool() as pool:
        service = RecordingService(
            Rules(ScopeRules(Policy.ALL, 90)),
            ari,
            LocalDirectoryStore(tmp_path / "store"),
            Journal(tmp_path / "recordings.jsonl"),
            pool,
            facts.append,
        )
        monitor = MonitorService(ari, service.talk_of, {"sari": "supervisor1"}, facts.append)
        service.talk_end_listeners.append(monitor.call_ended)
        feature = Recordings(service, monitor)
        deps = HttpDeps(
            tokens=[ADMIN],
            registry=CollectorRegistry(),
            readiness=lambda: {},
            active_calls=lambda: [],
            call_record=_no_record,
            role_tokens=[
                RoleToken("sari", SUPERVISOR, "supervisor"),
                RoleToken("rudi", NOPHONE, "supervisor"),
                RoleToken("siti", SITI, "agent"),
                RoleToken("made", MADE, "agent"),
            ],
            features=[feature.add_routes],
        )
        mover = asyncio.create_task(service.run_mover())
        client = TestClient(TestServer(build_app(deps)))
        await client.start_server()
        try:
            yield (
                client,
                type("Ctx", (), {"ari": ari, "facts": facts, "svc": service, "pool": pool}),
            )
        finally:
            await client.close()
            await feature.close()
            mover.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mover


async def _no_record(_: str) -> dict[str, Any] | None:
    return None


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def recorded_call(ctx: Any, call_id: str = "c1") -> bytes:
    svc: RecordingService = ctx.svc
    svc.talk_started(call_id, "siti", f"leg-{call_id}", f"bridge-{call_id}", "support")
    await until(lambda: _yes(f"sambung/{call_id}" in ctx.ari.live), 3, "recording")
    await asyncio.sleep(0.5)
    svc.talk_ended(call_id)
    row = await until(lambda: sql.get_recording(ctx.pool, f"sambung/{call_id}"), 5, "row")
    return (svc.store.root / row["store_key"]).read_bytes()  # type: ignore[attr-defined, no-any-return]


async def _yes(v: bool) -> bool:
    return v


def audits(ctx: Any) -> list[tuple[str, str, int | None, int | None, int | None]]:
    return [
        (f.principal, f.action, f.range_start, f.range_end, f.status)
        for f in ctx.facts
        if isinstance(f, sql.RecordingAuditFact)
    ]


async def test_downloads_need_the_role_and_ranges_are_served_and_audited(tmp_path: Path) -> None:
    async with api(tmp_path) as (client, ctx):
        data = await recorded_call(ctx)
        url = "/api/v1/recordings/c1/file"
        r = await client.get(url)
        assert r.status == 401
        r = await client.get(url, headers=auth(SITI))
        assert r.status == 403
        assert (await r.json())["error_id"] == "api.forbidden"
        r = await client.get(url, headers=auth(SUPERVISOR))
        assert r.status == 200
        assert r.headers["Accept-Ranges"] == "bytes"
        assert r.headers["Content-Type"] == "audio/wav"
        assert r.headers["Content-Disposition"].startswith("attachment;")
        assert await r.read() == data
        r = await client.get(url, headers={**auth(SUPERVISOR), "Range": "bytes=100-1099"})
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
        assert await r.read() == data[100:1100]
        r = await client.get(url, headers={**auth(ADMIN), "Range": "bytes=-44"})
        assert (r.status, await r.read()) == (206, data[-44:])
        r = await client.get(url, headers={**auth(SUPERVISOR), "Range": f"bytes={len(data)}-"})
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{len(data)}"
        r = await client.get(url + "?listen=1", headers=auth(SUPERVISOR))
        assert r.status == 200
        assert r.headers["Content-Disposition"].startswith("inline;")
        await r.read()
        r = await client.get("/api/v1/recordings/nope/file", headers=auth(SUPERVISOR))
        assert r.status == 404
        end = len(data) - 1
        assert audits(ctx) == [
            ("siti", "download", None, None, 403),
            ("sari", "download", None, None, 200),
            ("sari", "download", 100, 1099, 206),
            ("api-token-1", "download", len(data) - 44, end, 206),
            ("sari", "download", None, None, 416),
            ("sari", "listen", None, None, 200),
            ("sari", "download", None, None, 404),
        ]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("bytes=" + "9" * 5000, id="5000 digits"),
        pytest.param("bytes=0-" + "9" * 5000, id="5000-digit end"),
        pytest.param("bytes=" + ",".join(["0-1"] * 300), id="many ranges"),
        pytest.param("bytes=0-1,4-5", id="two ranges"),
        pytest.param("bytes=zz-top", id="garbage"),
        pytest.param("garbage", id="no unit"),
        pytest.param("bytes=9-3", id="end before start"),
    ],
)
async def test_a_malformed_or_absurd_range_is_refused_with_416_and_audited(
    tmp_path: Path, value: str
) -> None:
    async with api(tmp_path) as (client, ctx):
        data = await recorded_call(ctx)
        url = "/api/v1/recordings/c1/file"
        r = await client.get(url, headers={**auth(SUPERVISOR), "Range": value})
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{len(data)}"
        assert (await r.json())["error_id"] == "recordings.range_not_satisfiable"
        # A valid single range still works afterwards.
        r = await client.get(url, headers={**auth(SUPERVISOR), "Range": "bytes=0-9"})
        assert (r.status, await r.read()) == (206, data[:10])
        assert audits(ctx)[0] == ("sari", "download", None, None, 416)
        refused = next(f for f in ctx.facts if isinstance(f, sql.RecordingAuditFact))
        assert len(refused.detail or "") <= 120  # the header is kept, cut short


async def test_listing_and_metadata_are_for_supervisors_and_admins(tmp_path: Path) -> None:
    async with api(tmp_path) as (client, ctx):
        data = await recorded_call(ctx, "c7")
        r = await client.get("/api/v1/recordings?agent_id=siti", headers=auth(MADE))
        assert r.status == 403
        r = await client.get("/api/v1/recordings?agent_id=siti", headers=auth(SUPERVISOR))
        body = await r.json()
        assert [x["id"] for x in body["recordings"]] == ["c7"]
        r = await client.get("/api/v1/recordings/c7", headers=auth(SUPERVISOR))
        meta = await r.json()
        assert (meta["call_id"], meta["size_bytes"]) == ("c7", len(data))
        r = await client.get("/api/v1/recordings/c7/audit", headers=auth(SUPERVISOR))
        assert r.status == 403
        r = await client.get("/api/v1/recordings?since=yesterday", headers=auth(ADMIN))
        assert r.status == 400


async def test_an_agent_pauses_only_their_own_call(tmp_path: Path) -> None:
    async with api(tmp_path) as (client, ctx):
        ctx.svc.talk_started("c2", "siti", "leg-c2", "bridge-c2", "support")
        await until(lambda: _yes("sambung/c2" in ctx.ari.live), 3, "recording")
        r = await client.post("/api/v1/calls/c2/recording/pause", headers=auth(MADE))
        assert r.status == 403
        r = await client.post("/api/v1/calls/c2/recording/pause", headers=auth(SITI))
        assert (r.status, (await r.json())["state"]) == (200, "paused")
        r = await client.get("/api/v1/calls/c2/recording", headers=auth(SITI))
        assert (await r.json())["state"] == "paused"
        r = await client.post("/api/v1/calls/c2/recording/resume", headers=auth(SITI))
        assert (await r.json())["state"] == "recording"
        r = await client.post("/api/v1/calls/c2/recording/rewind", headers=auth(SITI))
        assert r.status == 404
        r = await client.post("/api/v1/calls/zzz/recording/pause", headers=auth(SITI))
        assert (r.status, (await r.json())["error_id"]) == (404, "recordings.no_live_call")
        mutes = [c for c in ctx.ari.calls if c[0] == "mute_recording"]
        assert mutes == [
            ("mute_recording", "sambung/c2", "True"),
            ("mute_recording", "sambung/c2", "False"),
        ]


async def test_a_supervisor_listens_whispers_and_stops_and_every_step_is_audited(
    tmp_path: Path,
) -> None:
    async with api(tmp_path) as (client, ctx):
        ari: FakeRecordingAri = ctx.ari
        ari.channels["leg-c3"] = FakeChannel("Up")
        ctx.svc.talk_started("c3", "siti", "leg-c3", "bridge-c3", "support")
        body = {"agent_id": "siti", "mode": "listen"}
        r = await client.post("/api/v1/monitor", json=body, headers=auth(SITI))
        assert r.status == 403
        r = await client.post("/api/v1/monitor", json=body, headers=auth(NOPHONE))
        assert (r.status, (await r.json())["error_id"]) == (409, "recordings.monitor_unavailable")
        r = await client.post(
            "/api/v1/monitor",
            json={"agent_id": "nobody", "mode": "listen"},
            headers=auth(SUPERVISOR),
        )
        assert r.status == 404
        r = await client.post("/api/v1/monitor", json=body, headers=auth(SUPERVISOR))
        assert r.status == 202
        sid = (await r.json())["session_id"]

        async def state() -> str:
            r = await client.get("/api/v1/monitor", headers=auth(SUPERVISOR))
            sessions = (await r.json())["sessions"]
            return str(sessions[0]["state"]) if sessions else "gone"

        await until(lambda: _is(state, "active"), 5, "session active")
        snoops = [c for c in ari.calls if c[0] == "snoop"]
        assert snoops == [("snoop", "leg-c3", f"sambung-snoop-{sid}-1", "both", "none")]
        assert sorted(ari.bridges[f"sambung-monitor-{sid}"]) == sorted(
            [f"sambung-sup-{sid}", f"sambung-snoop-{sid}-1"]
        )
        r = await client.post(
            f"/api/v1/monitor/{sid}/mode", json={"mode": "whisper"}, headers=auth(SUPERVISOR)
        )
        assert r.status == 202
        await until(
            lambda: _yes(f"sambung-snoop-{sid}-2" in ari.bridges[f"sambung-monitor-{sid}"]),
            5,
            "whisper snoop",
        )
        assert ("snoop", "leg-c3", f"sambung-snoop-{sid}-2", "both", "out") in ari.calls
        await until(lambda: _yes(f"sambung-snoop-{sid}-1" not in ari.channels), 3, "old snoop")
        r = await client.delete(f"/api/v1/monitor/{sid}", headers=auth(SUPERVISOR))
        assert r.status == 202
        await until(lambda: _is(state, "gone"), 5, "session ended")
        assert f"sambung-monitor-{sid}" not in ari.bridges
        assert f"sambung-sup-{sid}" not in ari.channels
        trail = [
            (f.action, f.mode, f.principal, f.detail)
            for f in ctx.facts
            if isinstance(f, sql.SupervisionAuditFact)
        ]
        assert trail == [
            ("start", "listen", "sari", ""),
            ("answered", "listen", "sari", ""),
            ("mode", "whisper", "sari", "listen -> whisper"),
            ("stop", "whisper", "sari", "stopped"),
        ]


async def test_a_session_ends_with_the_agents_talk(tmp_path: Path) -> None:
    async with api(tmp_path) as (client, ctx):
        ctx.ari.channels["leg-c4"] = FakeChannel("Up")
        ctx.svc.talk_started("c4", "siti", "leg-c4", "bridge-c4", "support")
        body = {"call_id": "c4", "mode": "barge"}
        r = await client.post("/api/v1/monitor", json=body, headers=auth(SUPERVISOR))
        assert r.status == 202
        await until(lambda: _yes(any(c[0] == "snoop" for c in ctx.ari.calls)), 5, "snoop")
        assert next(c for c in ctx.ari.calls if c[0] == "snoop")[:2] == ("snoop", "leg-c4")
        ctx.svc.talk_ended("c4")
        await until(
            lambda: _yes(
                any(
                    isinstance(f, sql.SupervisionAuditFact) and f.action == "stop"
                    for f in ctx.facts
                )
            ),
            5,
            "session stopped",
        )
        stop = [
            f for f in ctx.facts if isinstance(f, sql.SupervisionAuditFact) and f.action == "stop"
        ]
        assert stop[0].detail == "call_ended"
        assert stop[0].mode == "barge"


async def _is(get: Any, want: str) -> bool:
    return bool(await get() == want)


@pytest.mark.parametrize("bad", [{"mode": "spy", "agent_id": "siti"}, {"mode": "listen"}])
async def test_monitor_requests_are_checked(tmp_path: Path, bad: dict[str, str]) -> None:
    async with api(tmp_path) as (client, _ctx):
        r = await client.post("/api/v1/monitor", json=bad, headers=auth(SUPERVISOR))
        assert r.status == 400


def test_the_routes_are_added_before_the_engines(tmp_path: Path) -> None:
    seen: list[str] = []

    def extra(app: web.Application) -> None:
        seen.append("added")

    deps = HttpDeps(
        tokens=[ADMIN],
        registry=CollectorRegistry(),
        readiness=lambda: {},
        active_calls=lambda: [],
        call_record=_no_record,
        features=[extra],
    )
    build_app(deps)
    assert seen == ["added"]
