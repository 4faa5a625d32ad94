"""Waiting callers outlive the engine: the whole engine against the fake ARI and a real
PostgreSQL. A graceful stop hands them over, a crash leaves them; either way the next engine
takes each over at its place from what its channel says, and closes as ``lost`` only what it
cannot carry on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sambung.acd.place import PlaceTag, format_place, parse_place
from sambung.engine.reconcile import ORPHAN_GRACE_SECONDS
from tests.fakes.fake_ari import FakeAri, channel_json
from tests.integration.harness import RunningEngine, engine_database, engine_running

NO_AMI = {"enabled": False}
DID = "1600"
INSTANCE = "sambung-example"  # the example settings' instance id


def queue_sections(**engine: Any) -> dict[str, Any]:
    agents = [
        {"id": a, "name": a, "endpoint": ep, "pin": "1234", "queues": ["support"]}
        for a, ep in (("siti", "agent1001"), ("budi", "agent1002"), ("made", "agent1003"))
    ]
    return {
        "ami": NO_AMI,
        "engine": {"drain_timeout_seconds": 1, **engine},
        "acd": {
            "queues": [{"name": "support", "announce_every_seconds": 0, "greeting": []}],
            "agents": agents,
            "adopt_within_seconds": 30,
        },
        "hotlines": [{"did": DID, "name": "Support", "queue": "support"}],
    }


async def until(pred: Callable[[], Awaitable[Any]], what: str, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await pred()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)
    return value


def place_of(fake: FakeAri, cid: str) -> PlaceTag | None:
    return parse_place(fake.variables.get((cid, "SAMBUNG_PLACE"), ""))


async def waiting(run: RunningEngine, *entry_ids: str) -> list[str]:
    """The entries the engine has waiting, in the order it would serve them."""
    acd = run.engine.acd.service

    async def there() -> bool:
        return set(entry_ids) <= set(acd.entries)

    await until(there, f"entries {entry_ids} waiting")
    return sorted(entry_ids, key=acd.position)


async def test_given_callers_waiting_when_the_engine_stops_then_the_next_takes_them_over(
    fake_ari: FakeAri,
) -> None:
    async with engine_database() as database:
        pool = database[1]
        async with engine_running(database, fake_ari.base_url, **queue_sections()):
            first_id = await fake_ari.inbound_call("1700000000.61", did=DID)
            await asyncio.sleep(0.05)
            second_id = await fake_ari.inbound_call("1700000000.62", did=DID)

            async def marked() -> bool:
                return all(place_of(fake_ari, c) for c in (first_id, second_id))

            await until(marked, "places written")
            tags = {c: place_of(fake_ari, c) for c in (first_id, second_id)}
        # Stopped gracefully: nobody hung up, both wait in Asterisk with their place and a
        # fresh safeguard, and their rows stay open.
        assert not fake_ari.requests_to("DELETE", r"/channels/.*")
        assert {first_id, second_id} <= set(fake_ari.channels)
        assert fake_ari.variables[(first_id, "TIMEOUT(absolute)")] == "30"
        open_calls = await pool.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NULL")
        open_entries = await pool.fetchval(
            "SELECT count(*) FROM queue_entries WHERE ended_at IS NULL"
        )
        assert (open_calls, open_entries) == (2, 2)

        async with engine_running(database, fake_ari.base_url, **queue_sections()) as second:
            ids = [t.entry_id for t in tags.values() if t is not None]
            assert await waiting(second, *ids) == ids  # served in their original order
            assert (
                second.engine.metrics.registry.get_sample_value(
                    "sambung_calls_adopted_total", {"kind": "caller"}
                )
                == 2
            )
            tag = place_of(fake_ari, first_id)
            assert tag is not None
            assert tag.generation == 1
            assert tag.first_wall == tags[first_id].first_wall  # type: ignore[union-attr]
            await fake_ari.caller_hangup(first_id)
            row = await second.wait_closed(call_id=first_id, timeout=5)
            assert row["end_reason"] == "caller_abandoned_queue"
            # Answered once, by the first engine; the second one carried it on as it was.
            assert len(fake_ari.requests_to("POST", rf"/channels/{second_id}/answer")) == 1
        rows = await pool.fetch("SELECT call_id, outcome FROM queue_entries ORDER BY call_id")
        assert [(r["call_id"], r["outcome"]) for r in rows] == [
            (first_id, "abandoned"),
            (second_id, None),  # handed over again by the second engine
        ]
        restart = await pool.fetchval(
            "SELECT count(*) FROM calls WHERE end_reason = 'engine_restart'"
        )
        assert restart == 0


async def test_given_an_engine_crashed_then_waiting_callers_are_taken_over_and_the_rest_lost(
    fake_ari: FakeAri,
) -> None:
    now = datetime.now(UTC)
    async with engine_database() as database:
        pool = database[1]
        # What a killed engine left: three calls and their rows. held.1 waits in the queue's
        # holding bridge with its place written; plain.1 waits there with no place (an engine
        # before this version); gone.1's caller hung up while no engine was there.
        for cid in ("held.1", "plain.1", "gone.1"):
            await pool.execute(
                """INSERT INTO calls (call_id, direction, channel_name, did, caller_number,
                       engine_instance, started_at)
                   VALUES ($1, 'inbound', 'PJSIP/trunk-1', $2, '0812000111', $3, $4)""",
                cid,
                DID,
                INSTANCE,
                now - timedelta(minutes=3),
            )
            await pool.execute(
                """INSERT INTO queue_entries (entry_id, call_id, queue, kind, priority,
                       first_enqueued_at, enqueued_at) VALUES ($1, $2, 'support', 'caller', 0,
                       $3, $3)""",
                f"{cid}-q3",
                cid,
                now - timedelta(minutes=2),
            )
        tag = PlaceTag("held.1-q3", "support", "caller", 0, now - timedelta(minutes=2), now, "en")
        for cid in ("held.1", "plain.1"):
            fake_ari.channels[cid] = channel_json(cid, did=DID, state="Up")
        fake_ari.variables[("held.1", "SAMBUNG_PLACE")] = format_place(tag)
        fake_ari.bridges["sambung-queue-support"] = {
            "id": "sambung-queue-support",
            "technology": "holding_bridge",
            "bridge_type": "holding",
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": "sambung-queue-support",
            "channels": ["held.1", "plain.1"],
            "creationtime": "2026-12-29T03:00:00.000+0000",
        }

        async with engine_running(database, fake_ari.base_url, **queue_sections()) as run:
            await waiting(run, "held.1-q3")
            entry = run.engine.acd.service.entries["held.1-q3"]
            # Its place in line is its first enqueue, two minutes back on this loop's clock.
            waited = asyncio.get_running_loop().time() - entry.enqueued_at
            assert 115 < waited < 130
            assert entry.caller_number == "0812000111"  # who it is, from PostgreSQL

            async def orphan_hung_up() -> bool:
                return bool(fake_ari.requests_to("DELETE", r"/channels/plain\.1"))

            await until(orphan_hung_up, "plain.1 hung up", ORPHAN_GRACE_SECONDS + 3)
            assert not fake_ari.requests_to("DELETE", r"/channels/held\.1")
            assert fake_ari.variables[("held.1", "TIMEOUT(absolute)")] == "30"

            async def closed() -> bool:
                n = await pool.fetchval("SELECT count(*) FROM queue_entries WHERE outcome = 'lost'")
                return bool(n == 2)

            await until(closed, "the entries nobody took over closed as lost")
            await fake_ari.caller_hangup("held.1")
            await run.wait_closed(call_id="held.1", timeout=5)
        rows = await pool.fetch("SELECT entry_id, outcome, detail FROM queue_entries")
        assert sorted((r["entry_id"], r["outcome"]) for r in rows) == [
            ("gone.1-q3", "lost"),
            ("held.1-q3", "abandoned"),
            ("plain.1-q3", "lost"),
        ]
        calls = await pool.fetch("SELECT call_id, end_reason FROM calls ORDER BY call_id")
        assert [(r["call_id"], r["end_reason"]) for r in calls] == [
            ("gone.1", "engine_restart"),
            ("held.1", "caller_abandoned_queue"),
            ("plain.1", "engine_restart"),
        ]


async def test_given_on_stop_drain_then_waiting_callers_are_hung_up_as_before(
    fake_ari: FakeAri,
) -> None:
    async with engine_database() as database:
        async with engine_running(
            database, fake_ari.base_url, **queue_sections(on_stop="drain")
        ) as run:
            cid = await fake_ari.inbound_call("1700000000.71", did=DID)
            await run.wait_open(call_id=cid, timeout=5)
        assert fake_ari.requests_to("DELETE", rf"/channels/{cid}")
        entry = await database[1].fetchrow("SELECT outcome FROM queue_entries")
        assert entry is not None
        assert entry["outcome"] == "lost"
