"""The ACD's facts (see engine/facts.py for how they are written: idempotent, in order)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.facts import Fact, register_facts


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
    LegStartedFact,
    LegAnsweredFact,
    LegEndedFact,
    DispositionFact,
)
