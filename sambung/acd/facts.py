"""The ACD's facts (see engine/facts.py for how they are written: idempotent, in order)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sambung.engine.facts import Fact, register_facts


@dataclass(frozen=True, slots=True)
class AgentUpsertFact(Fact):
    sql = """INSERT INTO agents (agent_id, name, endpoint, team, skills, queues, updated_at)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
             ON CONFLICT (agent_id) DO UPDATE SET name = $2, endpoint = $3, team = $4,
                 skills = $5::jsonb, queues = $6, updated_at = $7"""
    agent_id: str
    name: str
    endpoint: str
    team: str
    skills_json: str
    queues: list[str]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AgentStateFact(Fact):
    sql = """INSERT INTO agent_states (agent_id, engine_instance, run_id, seq, at, state,
                 previous, reason, call_id, source)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"""
    agent_id: str
    engine_instance: str
    run_id: str
    seq: int
    at: datetime
    state: str
    previous: str
    reason: str
    call_id: str | None
    source: str


@dataclass(frozen=True, slots=True)
class QueueEnteredFact(Fact):
    sql = """INSERT INTO queue_entries (entry_id, call_id, queue, kind, priority,
                 first_enqueued_at, enqueued_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (entry_id) DO NOTHING"""
    entry_id: str
    call_id: str
    queue: str
    kind: str
    priority: int
    first_enqueued_at: datetime
    enqueued_at: datetime


@dataclass(frozen=True, slots=True)
class QueueLeftFact(Fact):
    sql = """UPDATE queue_entries SET ended_at = $2, outcome = $3, wait_seconds = $4,
                 short_abandon = $5, agent_id = $6, detail = $7
             WHERE entry_id = $1 AND ended_at IS NULL"""
    entry_id: str
    ended_at: datetime
    outcome: str
    wait_seconds: float
    short_abandon: bool
    agent_id: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class CallbackPendingFact(Fact):
    """A callback waits in its queue (asked for, held until the rules allow a dial, or after
    a failed attempt): what the next engine needs to put it back at its place."""

    sql = """INSERT INTO pending_callbacks (entry_id, callback_id, queue, priority,
                 first_enqueued_at, enqueued_at, caller_number, caller_name, did, language,
                 not_before, attempts, noted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (entry_id) DO UPDATE
                SET callback_id = $2, queue = $3, not_before = $11, attempts = $12,
                    noted_at = $13
              WHERE pending_callbacks.settled_at IS NULL"""
    entry_id: str
    callback_id: str
    queue: str
    priority: int
    first_enqueued_at: datetime
    enqueued_at: datetime
    caller_number: str
    caller_name: str
    did: str
    language: str
    not_before: datetime | None
    attempts: int
    noted_at: datetime


@dataclass(frozen=True, slots=True)
class CallbackSettledFact(Fact):
    """The callback left its queue (made, failed, refused): no engine carries it on."""

    sql = """UPDATE pending_callbacks SET settled_at = $2
             WHERE entry_id = $1 AND settled_at IS NULL"""
    entry_id: str
    settled_at: datetime


@dataclass(frozen=True, slots=True)
class OpenEntriesClosedFact(Fact):
    """At an engine's start: the queue entries its previous run left open, of calls it started
    and left open, are closed as ``lost`` (the engine lost them; the caller did not abandon),
    except the entries taken over (``keep_entry_ids``), which go on waiting. Recorded before
    ``OpenCallsClosedFact`` closes those calls: the open calls of the instance (an index)
    lead to their entries, so a start never scans the whole history."""

    sql = """UPDATE queue_entries q SET ended_at = $3, outcome = 'lost', detail = $4,
                 wait_seconds = GREATEST(0, EXTRACT(EPOCH FROM ($3 - q.enqueued_at)))
             FROM calls c
             WHERE c.call_id = q.call_id AND ($1::text IS NULL OR c.engine_instance = $1)
               AND c.ended_at IS NULL
               AND q.ended_at IS NULL AND NOT (q.entry_id = ANY($2::text[]))"""
    engine_instance: str | None  # None: every engine's (after a takeover, see engine/lease.py)
    keep_entry_ids: list[str]
    ended_at: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class LegStartedFact(Fact):
    sql = """INSERT INTO call_legs (leg_id, call_id, entry_id, kind, agent_id, endpoint,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (leg_id) DO NOTHING"""
    leg_id: str
    call_id: str
    entry_id: str | None
    kind: str
    agent_id: str | None
    endpoint: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LegAnsweredFact(Fact):
    sql = "UPDATE call_legs SET answered_at = $2 WHERE leg_id = $1 AND answered_at IS NULL"
    leg_id: str
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class LegEndedFact(Fact):
    sql = """UPDATE call_legs SET ended_at = $2, outcome = $3, hangup_cause = $4,
                 sip_code = $5, talk_seconds = $6, hold_seconds = $7
             WHERE leg_id = $1 AND ended_at IS NULL"""
    leg_id: str
    ended_at: datetime
    outcome: str
    hangup_cause: int | None
    sip_code: int | None
    talk_seconds: float | None
    hold_seconds: float | None


@dataclass(frozen=True, slots=True)
class DispositionFact(Fact):
    sql = """INSERT INTO dispositions (call_id, agent_id, code, note, at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (call_id, agent_id) DO UPDATE SET code = $3, note = $4, at = $5"""
    call_id: str
    agent_id: str
    code: str
    note: str
    at: datetime


register_facts(
    AgentUpsertFact,
    AgentStateFact,
    QueueEnteredFact,
    QueueLeftFact,
    CallbackPendingFact,
    CallbackSettledFact,
    OpenEntriesClosedFact,
    LegStartedFact,
    LegAnsweredFact,
    LegEndedFact,
    DispositionFact,
)
