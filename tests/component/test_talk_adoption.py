"""A caller talking to an agent outlives the engine: the whole engine against the fake ARI and a
real PostgreSQL. What a killed engine left (the caller and the agent's leg in the call's mixing
bridge, the talk written on the caller's channel) is carried on by the next engine: nobody is
hung up, the agent is on the call again, and the talk time counts from the original start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sambung.acd.agents import AgentState
from sambung.acd.place import PlaceTag, format_place, parse_place
from tests.component.test_adoption import DID, INSTANCE, place_of, queue_sections, until
from tests.fakes.fake_ari import FakeAri, channel_json
from tests.integration.harness import engine_database, engine_running

CALL, LEG = "talk.1", "leg-talk0000000000000001"


async def test_given_a_caller_talking_when_the_engine_crashed_then_the_talk_goes_on(
    fake_ari: FakeAri,
) -> None:
    now = datetime.now(UTC)
    began = now - timedelta(seconds=40)
    async with engine_database() as database:
        pool = database[1]
        # The rows the dead engine wrote: the call, its entry answered by siti, siti's leg.
        await pool.execute(
            """INSERT INTO calls (call_id, direction, channel_name, did, caller_number,
                   engine_instance, started_at, answered_at)
               VALUES ($1, 'inbound', 'PJSIP/trunk-1', $2, '0812000111', $3, $4, $4)""",
            CALL,
            DID,
            INSTANCE,
            now - timedelta(minutes=2),
        )
        await pool.execute(
            """INSERT INTO queue_entries (entry_id, call_id, queue, kind, priority,
                   first_enqueued_at, enqueued_at, ended_at, outcome, agent_id)
               VALUES ($1, $2, 'support', 'caller', 0, $3, $3, $4, 'answered', 'siti')""",
            f"{CALL}-q1",
            CALL,
            now - timedelta(seconds=90),
            began,
        )
        await pool.execute(
            """INSERT INTO call_legs (leg_id, call_id, entry_id, kind, agent_id, endpoint,
                   created_at, answered_at) VALUES ($1, $2, $3, 'agent', 'siti', 'agent1001',
                   $4, $4)""",
            LEG,
            CALL,
            f"{CALL}-q1",
            began,
        )
        tag = PlaceTag(
            f"{CALL}-q1",
            "support",
            "caller",
            0,
            now - timedelta(seconds=90),
            now - timedelta(seconds=90),
            "en",
            talk_agent="siti",
            talk_leg=LEG,
            talk_wall=began,
        )
        fake_ari.channels[CALL] = channel_json(CALL, did=DID, state="Up")
        fake_ari.channels[LEG] = channel_json(
            LEG, state="Up", name="PJSIP/agent1001-00000002", app_args=f"sambung,leg,{CALL}"
        )
        fake_ari.variables[(CALL, "SAMBUNG_PLACE")] = format_place(tag)
        fake_ari.bridges[f"sambung-call-{CALL}"] = {
            "id": f"sambung-call-{CALL}",
            "technology": "simple_bridge",
            "bridge_type": "mixing",
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": "",
            "channels": [CALL, LEG],
            "creationtime": "2026-12-29T03:00:00.000+0000",
        }

        async with engine_running(database, fake_ari.base_url, **queue_sections()) as run:
            agents = run.engine.acd.service.agents

            async def on_call() -> bool:
                siti = agents.get("siti")
                return siti.state is AgentState.ON_CALL and siti.call_id == CALL

            await until(on_call, "siti on the call again")
            # The talk is written again, one generation on.

            async def rewritten() -> bool:
                t = place_of(fake_ari, CALL)
                return t is not None and t.generation == 1

            await until(rewritten, "the talk's place rewritten")
            written = parse_place(fake_ari.variables[(CALL, "SAMBUNG_PLACE")])
            assert written is not None
            assert (written.talk_agent, written.talk_leg) == ("siti", LEG)
            assert written.talk_wall is not None
            assert abs((written.talk_wall - began).total_seconds()) < 0.001  # ms on the channel
            # Nobody was hung up as an orphan: neither the caller nor the agent.
            await until(lambda: _true(), "a moment", 0.1)
            assert not fake_ari.requests_to("DELETE", r"/channels/.*")
            adopted = run.engine.metrics.registry.get_sample_value(
                "sambung_calls_adopted_total", {"kind": "talk"}
            )
            assert adopted == 1
            # The agent hangs up: the talk ends, its time counted from the original start,
            # the caller is hung up, the agent wraps up.
            await fake_ari.caller_hangup(LEG)
            row = await run.wait_closed(call_id=CALL, timeout=5)
            assert row["end_reason"] == "agent_hung_up"

            async def wrapping() -> bool:
                return agents.get("siti").state is AgentState.WRAP_UP

            await until(wrapping, "siti wrapping up")

            async def leg_closed() -> float | None:
                v = await pool.fetchval(
                    "SELECT talk_seconds FROM call_legs WHERE leg_id = $1 AND ended_at IS NOT NULL",
                    LEG,
                )
                return None if v is None else float(v)

            talk = await until(leg_closed, "the leg's row closed")
            assert 39 < talk < 50, talk
        # The entry was answered by the engine before: it was not closed again as lost.
        entry = await pool.fetchrow("SELECT outcome FROM queue_entries")
        assert entry is not None
        assert entry["outcome"] == "answered"


async def _true() -> bool:
    return True
