"""The recordings service against a real PostgreSQL and a local store, with ARI played by an
in-memory fake: recording by policy, pause as silence, the move through the durable journal
(also when the database or the store is away, and across a restart), and retention."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from sambung.engine import db
from sambung.engine.facts import Fact
from sambung.recordings import store as sql
from sambung.recordings.journal import Job, Journal
from sambung.recordings.model import Policy, Principal, Role, Rules, ScopeRules
from sambung.recordings.service import RecordingService
from sambung.recordings.storage import LocalDirectoryStore, StoredObject
from tests.dbutil import fresh_database, migrated_pool
from tests.fakes.tcp_proxy import FaultProxy
from tests.unit.test_recordings_fakes import FakeRecordingAri, wav_bytes

RULES = Rules(
    ScopeRules(Policy.ALL, 90, ("sound:beep",)),
    queues={"sales": ScopeRules(Policy.ON_DEMAND, 30), "hr": ScopeRules(Policy.NONE, 0)},
    campaigns={"kolek-30": ScopeRules(Policy.ALL, 365)},
)
ADMIN = Principal("boss", Role.ADMIN)
SITI = Principal("siti", Role.AGENT)


async def until(pred: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await pred()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def service_on(
    pool: asyncpg.Pool,
    tmp: Path,
    ari: FakeRecordingAri | None = None,
    store: Any = None,
    facts: list[Fact] | None = None,
) -> AsyncIterator[RecordingService]:
    svc = RecordingService(
        RULES,
        ari or FakeRecordingAri(),
        store or LocalDirectoryStore(tmp / "store"),
        Journal(tmp / "spool" / "recordings-test.jsonl"),
        pool,
        (facts if facts is not None else []).append,
        campaign_of={"dialer-kolek-30": "kolek-30"}.get,
        retry_max=0.2,
    )
    svc.replay()
    mover = asyncio.create_task(svc.run_mover())
    try:
        yield svc
    finally:
        await svc.close()
        mover.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mover


def samples(data: bytes) -> list[int]:
    with wave.open(io.BytesIO(data)) as w:
        frames = w.readframes(w.getnframes())
    return [
        int.from_bytes(frames[i : i + 2], "little", signed=True) for i in range(0, len(frames), 2)
    ]


async def test_given_policy_all_when_a_talk_ends_then_the_file_moves_with_its_row(
    tmp_path: Path,
) -> None:
    facts: list[Fact] = []
    ari = FakeRecordingAri()
    async with migrated_pool() as pool, service_on(pool, tmp_path, ari, facts=facts) as svc:
        svc.talk_started("1754480000.7", "siti", "leg-1", "sambung-call-1754480000.7", "support")
        name = "sambung/1754480000.7"
        await until(lambda: _true(name in ari.live), 3, "recording started")
        # The announcement was played to the caller first, then the bridge recorded.
        kinds = [c[0] for c in ari.calls if c[0] in ("play", "record_bridge")]
        assert kinds == ["play", "record_bridge"]
        await asyncio.sleep(0.3)
        await svc.pause("1754480000.7", SITI, True)
        await asyncio.sleep(0.4)
        view = await svc.pause("1754480000.7", SITI, False)
        assert view["state"] == "recording"
        await asyncio.sleep(0.3)
        svc.talk_ended("1754480000.7")
        row = await until(lambda: sql.get_recording(pool, name), 5, "the recording's row")
        await until(lambda: _true(name not in ari.stored), 5, "Asterisk's copy deleted")
        assert svc.pending_jobs() == 0
        data = (tmp_path / "store" / row["store_key"]).read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        assert row["size_bytes"] == len(data)
        assert row["duration_seconds"] == pytest.approx(1.0, abs=0.15)
        assert row["store_key"].endswith("/1754480000.7.wav")
        [(start, end)] = row["paused_spans"]
        assert end - start == pytest.approx(0.4, abs=0.1)
        audio = samples(data)
        inside = audio[int((start + 0.05) * 8000) : int((end - 0.05) * 8000)]
        assert len(inside) > 1000
        assert set(inside) == {0}  # the paused span is silent
        assert set(audio[: int(start * 8000) - 400]) == {1000}
        actions = [(f.action, f.principal) for f in facts if isinstance(f, sql.RecordingAuditFact)]
        assert actions == [("pause", "siti"), ("resume", "siti")]


async def _true(v: bool) -> bool:
    return v


async def test_agents_control_only_their_own_calls_and_policies_hold(tmp_path: Path) -> None:
    ari = FakeRecordingAri()
    async with migrated_pool() as pool, service_on(pool, tmp_path, ari) as svc:
        svc.talk_started("c-sales", "siti", "leg-s", "b-s", "sales")  # on demand
        svc.talk_started("c-hr", "made", "leg-h", "b-h", "hr")  # never
        await asyncio.sleep(0.1)
        assert not ari.live
        from sambung.recordings.errors import Forbidden, NotRecording, PolicyForbids

        with pytest.raises(Forbidden):
            await svc.start("c-hr", SITI)  # made's call
        with pytest.raises(PolicyForbids):
            await svc.start("c-hr", ADMIN)
        with pytest.raises(NotRecording):
            await svc.pause("c-sales", SITI, True)
        view = await svc.start("c-sales", SITI)
        assert view["recording"] == "sambung/c-sales"
        assert (await svc.stop("c-sales", SITI))["state"] == "off"
        again = await svc.start("c-sales", SITI)
        assert again["recording"] == "sambung/c-sales-2"  # a second segment, never overwritten
        svc.talk_ended("c-sales")
        svc.talk_ended("c-hr")
        await until(lambda: _true(svc.pending_jobs() == 0), 5, "both segments moved")
        rows = await pool.fetch("SELECT name, segment, policy FROM recordings ORDER BY segment")
        assert [tuple(r) for r in rows] == [
            ("sambung/c-sales", 1, "on_demand"),
            ("sambung/c-sales-2", 2, "on_demand"),
        ]


async def test_given_the_database_down_when_talks_end_then_rows_arrive_when_it_is_back(
    tmp_path: Path,
) -> None:
    async with fresh_database() as url:
        conn = await asyncpg.connect(url)
        try:
            await db.migrate(conn)
        finally:
            await conn.close()
        parts = urlsplit(url)
        proxy = await FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
        via = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
        pool = await db.connect_pool(via, 1, 2)
        ari = FakeRecordingAri()
        try:
            async with service_on(pool, tmp_path, ari) as svc:
                proxy.refuse_for(2.0)
                svc.talk_started("c-down", "siti", "leg", "bridge", "support")
                await until(lambda: _true("sambung/c-down" in ari.live), 3, "recording")
                svc.talk_ended("c-down")
                # The file is in the store at once; the row waits for the database.
                await until(lambda: _true(any((tmp_path / "store").rglob("*.wav"))), 3, "stored")
                assert "sambung/c-down" in ari.stored  # not deleted before it is indexed
                row = await until(
                    lambda: _fetch(pool, "sambung/c-down"), 10, "the row after the outage"
                )
                assert row["agent_id"] == "siti"
                await until(lambda: _true(not ari.stored), 5, "Asterisk's copy deleted")
        finally:
            await pool.close()
            await proxy.close()


async def _fetch(pool: asyncpg.Pool, name: str) -> dict[str, Any] | None:
    try:
        return await sql.get_recording(pool, name)
    except sql.DB_DOWN:
        return None


class FlakyStore(LocalDirectoryStore):
    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    async def put(self, key: str, data: bytes) -> StoredObject:
        if self.failures > 0:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return await super().put(key, data)


async def test_given_the_store_failing_when_moving_then_it_retries(tmp_path: Path) -> None:
    ari = FakeRecordingAri()
    store = FlakyStore(tmp_path / "store", failures=3)
    async with migrated_pool() as pool, service_on(pool, tmp_path, ari, store=store) as svc:
        svc.talk_started("c-disk", "siti", "leg", "bridge", "support")
        await until(lambda: _true("sambung/c-disk" in ari.live), 3, "recording")
        svc.talk_ended("c-disk")
        await until(lambda: sql.get_recording(pool, "sambung/c-disk"), 10, "row after retries")
        assert store.failures == 0


async def test_given_a_crash_mid_call_when_the_engine_starts_again_then_the_file_is_fetched(
    tmp_path: Path,
) -> None:
    ari = FakeRecordingAri()
    # What a previous run left: the job written ahead, and Asterisk still recording (the
    # bridge outlived the engine).
    journal = Journal(tmp_path / "spool" / "recordings-test.jsonl")
    journal.write(
        Job("sambung/c-crash", "c-crash", 1, "siti", "support", None, "all", "wav", _now())
    )
    await ari.record_bridge("sambung-call-c-crash", "sambung/c-crash")
    ari.live["sambung/c-crash"].started -= 2.0
    # And a job whose file Asterisk no longer has at all.
    journal.write(Job("sambung/c-lost", "c-lost", 1, "siti", "support", None, "all", "wav", _now()))
    async with migrated_pool() as pool, service_on(pool, tmp_path, ari) as svc:
        row = await until(lambda: sql.get_recording(pool, "sambung/c-crash"), 5, "adopted row")
        assert 2.0 <= row["duration_seconds"] < 4.0  # two seconds before, and the start-up
        assert ("stop_recording", "sambung/c-crash") in ari.calls
        await until(lambda: _true(svc.pending_jobs() == 0), 5, "journal empty")
        assert await sql.get_recording(pool, "sambung/c-lost") is None
    failed = [json.loads(x) for x in journal.path.read_text().splitlines()]
    assert failed == []  # nothing left to do: the lost one is logged and given up


def _now() -> datetime:
    return datetime.now(UTC)


async def test_retention_removes_exactly_the_expired_files_and_records_it(tmp_path: Path) -> None:
    facts: list[Fact] = []
    now = datetime(2026, 8, 6, 12, 0, tzinfo=UTC)
    store = LocalDirectoryStore(tmp_path / "store")
    ages = {
        "sambung/keep-default": ("support", None, 89),
        "sambung/old-default": ("support", None, 91),
        "sambung/keep-sales": ("sales", None, 29),
        "sambung/old-sales": ("sales", None, 30),
        "sambung/hr-forever": ("hr", None, 4000),
        "sambung/keep-campaign": ("dialer-kolek-30", "kolek-30", 200),
        "sambung/old-campaign": ("dialer-kolek-30", "kolek-30", 400),
    }
    async with migrated_pool() as pool, service_on(pool, tmp_path, store=store, facts=facts) as svc:
        for name, (queue, campaign, days) in ages.items():
            started = now - timedelta(days=days)
            key = f"{started:%Y/%m/%d}/{name.removeprefix('sambung/')}.wav"
            obj = await store.put(key, wav_bytes([1] * 800))
            job = Job(name, name, 1, "siti", queue, campaign, "all", "wav", started)
            job = job.advance(
                "stored", store_key=key, size_bytes=obj.size, sha256=obj.sha256, stored_at=now
            )
            await sql.insert_recording(pool, job)
        deleted = await svc.retention_once(now)
        assert sorted(deleted) == [
            "sambung/old-campaign",
            "sambung/old-default",
            "sambung/old-sales",
        ]
        left = sorted(p.name for p in (tmp_path / "store").rglob("*.wav"))
        assert left == [
            "hr-forever.wav",
            "keep-campaign.wav",
            "keep-default.wav",
            "keep-sales.wav",
        ]
        rows = await pool.fetch(
            "SELECT name, deleted_by FROM recordings WHERE deleted_at IS NOT NULL ORDER BY name"
        )
        assert [(r["name"], r["deleted_by"]) for r in rows] == [
            (n, "retention") for n in sorted(deleted)
        ]
        audits = [f for f in facts if isinstance(f, sql.RecordingAuditFact)]
        assert sorted(a.name or "" for a in audits) == sorted(deleted)
        assert {(a.action, a.principal) for a in audits} == {("delete", "retention")}
        assert await svc.retention_once(now) == []  # nothing twice


async def test_a_talk_carried_on_keeps_the_earlier_segment_and_records_a_new_one(
    tmp_path: Path,
) -> None:
    """A talk another engine left (a takeover, with its own journal): the segment that engine
    was recording is claimed, stopped and kept with its row, and the talk goes on in a second
    segment, with no announcement again."""
    ari = FakeRecordingAri()
    call = "1754480000.9"
    first = f"sambung/{call}"
    await ari.record_bridge(f"sambung-call-{call}", first)  # the earlier engine's segment
    ari.calls.clear()
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=7)
    async with migrated_pool() as pool, service_on(pool, tmp_path, ari) as svc:
        svc.talk_started(
            call, "siti", "leg-9", f"sambung-call-{call}", "support", resumed=True, since=began
        )
        second = f"sambung/{call}-2"
        await until(lambda: _true(second in ari.live), 3, "the second segment recording")
        assert not [c for c in ari.calls if c[0] == "play"], "the announcement said again"
        row = await until(lambda: sql.get_recording(pool, first), 5, "the first segment's row")
        assert row["agent_id"] == "siti"
        # The earlier segment began with the talk, not when this engine took it over.
        assert row["started_at"] == began
        assert first not in ari.live
        svc.talk_ended(call)
        row2 = await until(lambda: sql.get_recording(pool, second), 5, "the second's row")
        assert (row2["call_id"], row2["agent_id"]) == (call, "siti")
        assert row2["started_at"] > began + timedelta(minutes=6)  # this engine's own segment
        assert svc.pending_jobs() == 0
